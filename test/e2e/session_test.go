//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// TestSessions runs kubectl shark tap, pcap, ui and clean against the real
// cluster, with real pods talking, and checks what users complain about
// elsewhere: leftovers, broken port-forwards, missing names, open ports.
func TestSessions(t *testing.T) {
	e := setupSharkEnv(t)
	t.Run("PreflightErrorsCreateNothing", e.testPreflight)
	t.Run("TapLive", e.testTapLive)
	t.Run("PcapMatchesTap", e.testPcapMatchesTap)
	t.Run("UIReconnects", e.testUI)
	t.Run("KilledCLILeavesNothing", e.testKilled)
}

func (e *sharkEnv) testPreflight(t *testing.T) {
	restricted := e.ns + "-restricted"
	e.c.kubectl(t, "create", "namespace", restricted)
	e.c.kubectl(t, "label", "namespace", restricted, "pod-security.kubernetes.io/enforce=restricted")
	t.Cleanup(func() { e.c.run(t, 0, "kubectl", "delete", "namespace", restricted, "--wait=false") })
	limited := e.limitedKubeconfig(t)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"invalid regex", []string{"tap", "-n", e.ns, "web("}, "invalid pod query"},
		{"invalid filter", []string{"tap", "-n", e.ns, "--filter", "proto =="}, "filter"},
		{"unknown namespace", []string{"tap", "-n", "no-such-ns-e2e"}, `namespace "no-such-ns-e2e" not found`},
		{"no cluster", []string{"tap", "-n", e.ns, "--server", "https://127.0.0.1:1"}, "cannot reach the cluster"},
		{"missing RBAC", []string{"tap", "-n", e.ns, "--kubeconfig", limited}, "create"},
		{"restricted Pod Security", []string{"tap", "-n", e.ns, "--shark-namespace", restricted}, "restricted"},
		{"no matching pods", []string{"tap", "-n", e.ns, "nothing-matches", "--exit-if-empty"}, "no pod matches"},
		{"image cannot be pulled", []string{"tap", "-n", e.ns, "web", "--image", "localhost/shark/absent:0", "--image-pull-policy", "IfNotPresent"}, "absent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			before := e.labelledObjects(t, "")
			_, stderr, code := e.run(t, 2*time.Minute, tt.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.HasPrefix(last, "error: ") || !strings.Contains(last, tt.want) {
				t.Errorf("exit %d, last line %q; want exit 1 and one error line with %q; stderr:\n%s", code, last, tt.want, stderr)
			}
			if tt.name == "image cannot be pulled" && time.Since(start) > 45*time.Second {
				t.Errorf("the pull failure took %s to report, want within 30s (+ cleanup)", time.Since(start))
			}
			if left := e.newLabelled(t, before); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
	t.Run("dry run", func(t *testing.T) {
		before := e.labelledObjects(t, "")
		_, stderr, code := e.run(t, time.Minute, "tap", "-n", e.ns, "web", "--dry-run")
		if code != 0 || !strings.Contains(stderr, e.ns+"/web-1 on "+e.node(2)) {
			t.Errorf("exit %d, stderr:\n%s\nwant the matching pod web-1 listed", code, stderr)
		}
		if left := e.newLabelled(t, before); len(left) > 0 {
			t.Errorf("--dry-run created %v", left)
		}
	})
	t.Run("no schedulable node", func(t *testing.T) {
		nodes := []string{e.node(1)}
		if e.nodes > 1 {
			nodes = append(nodes, e.node(2))
		}
		for _, n := range nodes {
			e.c.kubectl(t, "cordon", n)
		}
		defer func() {
			for _, n := range nodes {
				e.c.kubectl(t, "uncordon", n)
			}
		}()
		before := e.labelledObjects(t, "")
		_, stderr, code := e.run(t, time.Minute, "tap", "-n", e.ns)
		if code != 1 || !strings.Contains(stderr, "no schedulable") && !strings.Contains(stderr, "none of the") {
			t.Errorf("exit %d, stderr:\n%s\nwant the nodes refused", code, stderr)
		}
		if left := e.newLabelled(t, before); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// limitedKubeconfig is a user who may read pods in the test namespace and
// nothing else.
func (e *sharkEnv) limitedKubeconfig(t *testing.T) string {
	t.Helper()
	k := func(args ...string) string { return e.c.kubectl(t, append([]string{"-n", e.ns}, args...)...) }
	k("create", "serviceaccount", "viewer")
	k("create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods,namespaces")
	k("create", "rolebinding", "viewer", "--role=pod-reader", "--serviceaccount="+e.ns+":viewer")
	token := strings.TrimSpace(k("create", "token", "viewer"))
	server := strings.TrimSpace(e.c.kubectl(t, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"))
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: %q}}]
current-context: c
`, server, token, e.ns)
	p := filepath.Join(t.TempDir(), "limited.kubeconfig")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readEntries collects the NDJSON entries a tap prints, checking each line.
func readEntries(t *testing.T, p *proc, until func([]entry.Entry) bool, timeout time.Duration) []entry.Entry {
	t.Helper()
	var got []entry.Entry
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-p.stdout:
			if !ok {
				t.Fatalf("the plugin ended; stderr:\n%s", p.Stderr())
			}
			var e entry.Entry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not an entry: %v: %q", err, line)
			}
			if e.V != entry.Version || e.Proto == "" || e.TS.IsZero() {
				t.Fatalf("entry without v/proto/ts: %q", line)
			}
			got = append(got, e)
			if until(got) {
				return got
			}
		case <-deadline:
			t.Fatalf("after %s, %d entries, condition not met; stderr:\n%s", timeout, len(got), p.Stderr())
		}
	}
}

func hasEntry(es []entry.Entry, fn func(entry.Entry) bool) bool {
	for _, e := range es {
		if fn(e) {
			return true
		}
	}
	return false
}

func (e *sharkEnv) testTapLive(t *testing.T) {
	start := time.Now()
	p := e.start(t, "tap", "-n", e.ns, "web", "-o", "json")
	m := p.waitStderr(t, sessionLine, 30*time.Second)
	id, sessNS := m[1], m[2]
	t.Logf("session %s", id)
	steady := func(pod string) func(entry.Entry) bool {
		return func(x entry.Entry) bool {
			return x.Proto == "http" && x.Path == "/steady" && x.Status == "200" &&
				x.Dst.Pod == pod && x.Dst.Namespace == e.ns && x.Src.Pod == "client" && x.Src.Namespace == e.ns
		}
	}
	readEntries(t, p, func(es []entry.Entry) bool { return hasEntry(es, steady("web-1")) }, 60*time.Second)
	t.Logf("first entry with both pods named %.1fs after the command started", time.Since(start).Seconds())

	t.Run("security", func(t *testing.T) { e.checkSecurity(t, sessNS, id) })

	// A pod created after the start is tapped.
	e.apply(t, e.webPod("web-2", e.node(1)))
	e.c.kubectl(t, "-n", e.ns, "wait", "--for=condition=Ready", "pod/web-2", "--timeout=120s")
	ready := time.Now()
	ip := e.podIP(t, "web-2")
	gen := exec.Command("sh", "-c", fmt.Sprintf("for i in $(seq 60); do %s -n %s exec client -- /toolbox get http://%s:8080/new >/dev/null 2>&1; sleep 0.5; done",
		filepath.Join(e.c.root, "hack", "cluster")+" kubectl", e.ns, ip))
	gen.Start()
	defer gen.Process.Kill()
	readEntries(t, p, func(es []entry.Entry) bool {
		return hasEntry(es, func(x entry.Entry) bool { return x.Path == "/new" && x.Dst.Pod == "web-2" })
	}, 60*time.Second)
	t.Logf("new pod web-2 tapped: first entry %.1fs after it was Ready", time.Since(ready).Seconds())

	if code := p.interrupt(t, 45*time.Second); code != 0 {
		t.Errorf("Ctrl-C: exit %d, want 0; stderr:\n%s", code, p.Stderr())
	}
	took := e.waitNoLabelled(t, id, 30*time.Second)
	t.Logf("Ctrl-C: every labelled object gone %.1fs after the plugin exited", took.Seconds())
	e.c.kubectl(t, "-n", e.ns, "delete", "pod", "web-2", "--wait=false")
}

// checkSecurity looks at a running session from the outside.
func (e *sharkEnv) checkSecurity(t *testing.T, ns, id string) {
	pods := e.c.kubectl(t, "-n", ns, "get", "pods", "-l", "app.kubernetes.io/component=worker", "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct {
				AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
				Volumes                      []struct {
					Name      string
					Projected any `json:"projected"`
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(pods), &list); err != nil || len(list.Items) == 0 {
		t.Fatalf("worker pods: %v %s", err, pods)
	}
	for _, w := range list.Items {
		if w.Spec.AutomountServiceAccountToken == nil || *w.Spec.AutomountServiceAccountToken {
			t.Errorf("worker %s mounts a service-account token", w.Metadata.Name)
		}
		for _, v := range w.Spec.Volumes {
			if v.Projected != nil {
				t.Errorf("worker %s has projected volume %s (a token?)", w.Metadata.Name, v.Name)
			}
		}
	}
	// Workers share the node's network: nothing of ours may listen there.
	ss, err := exec.Command("ss", "-Hltnup").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	for _, l := range strings.Split(string(ss), "\n") {
		if strings.Contains(l, "shark-agent") {
			t.Errorf("a shark process listens on the node: %s", l)
		}
	}
	hubIP := strings.TrimSpace(e.c.kubectl(t, "-n", ns, "get", "pod", "shark-hub", "-o", "jsonpath={.status.podIP}"))
	// The hub API without the token.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + net.JoinHostPort(hubIP, "8899") + "/v1/targets")
	if err != nil {
		t.Fatalf("GET the hub: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("hub without a token: HTTP %d, want 401", resp.StatusCode)
	}
	// A worker that trusts another CA refuses the hub.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	other := hubtest.NewPKI(t)
	_, err = hubtest.DialWorker(ctx, net.JoinHostPort(hubIP, "8443"), other.CACert, "x", wire.Hello{Node: "n", Worker: "w"})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("worker with the wrong CA: %v, want a certificate error", err)
	}
}

func (e *sharkEnv) testPcapMatchesTap(t *testing.T) {
	p := e.start(t, "tap", "-n", e.ns, "web-1", "-o", "json", "--filter", `path == "/counted"`)
	m := p.waitStderr(t, sessionLine, 30*time.Second)
	id := m[1]
	p.waitStderr(t, regexp.MustCompile(`worker on \S+ is capturing`), 60*time.Second)
	time.Sleep(2 * time.Second) // the worker attaches within 1 s of the targets
	const n = 40
	ip := e.podIP(t, "web-1")
	e.c.kubectl(t, "-n", e.ns, "exec", "client", "--", "/toolbox", "get", "-count", strconv.Itoa(n), "-every", "20ms", "http://"+ip+":8080/counted")
	tapped := readEntries(t, p, func(es []entry.Entry) bool { return len(es) >= n }, 30*time.Second)
	time.Sleep(2 * time.Second) // more would be a bug
	for len(p.stdout) > 0 {
		tapped = append(tapped, readEntries(t, p, func([]entry.Entry) bool { return true }, time.Second)...)
	}

	out := filepath.Join(t.TempDir(), "stored.pcapng")
	_, stderr, code := e.run(t, 2*time.Minute, "pcap", "--session", id, "--since", "5m", "-w", out)
	if code != 0 {
		t.Fatalf("pcap --session: exit %d: %s", code, stderr)
	}
	// Retransmitted segments are frames of their own: count requests once.
	requests := tsharkCount(t, out, `http.request && http.request.uri == "/counted" && !tcp.analysis.retransmission`)
	if requests != len(tapped) || requests != n {
		keep := filepath.Join(os.TempDir(), "shark-e2e-"+id+".pcapng")
		exec.Command("cp", out, keep).Run()
		t.Errorf("pcap has %d requests to /counted, tap showed %d, the client made %d (capture kept in %s)", requests, len(tapped), n, keep)
	}
	ifaces, _ := exec.Command("tshark", "-r", out, "-T", "fields", "-e", "frame.interface_name").Output()
	if !strings.Contains(string(ifaces), e.ns+"/web-1") {
		t.Errorf("pcap interfaces %q, want %s/web-1", firstLines(string(ifaces), 3), e.ns)
	}

	// Live, into a pipe, as into Wireshark: -c stops it.
	cmd := exec.Command("sh", "-c", fmt.Sprintf("%s | tshark -r - -T fields -e frame.interface_name",
		strings.Join(quoteAll(append([]string{e.plugin}, e.sharkArgs("pcap", "--session", id, "-c", "20")...)), " ")))
	live, err := cmd.Output()
	if err != nil {
		t.Fatalf("pcap | tshark: %v", err)
	}
	if got := strings.Count(string(live), "\n"); got != 20 {
		t.Errorf("pcap -c 20 | tshark read %d packets", got)
	}
	if code := p.interrupt(t, 45*time.Second); code != 0 {
		t.Errorf("tap exit %d", code)
	}
	e.waitNoLabelled(t, id, 30*time.Second)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return out
}

func firstLines(s string, n int) string {
	ls := strings.SplitN(s, "\n", n+1)
	return strings.Join(ls[:min(n, len(ls))], "\n")
}

func tsharkCount(t *testing.T, file, filter string) int {
	t.Helper()
	cmd := exec.Command("tshark", "-r", file, "-Y", filter, "-T", "fields", "-e", "frame.number")
	var stderr strings.Builder
	cmd.Stderr = &stderr // tshark warns there when run as root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	return len(strings.Fields(string(out)))
}

// apiProxy forwards TCP to the API server and can cut every connection, as
// a flaky network or an API server restart does to a port-forward.
type apiProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newAPIProxy(t *testing.T, target string) *apiProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { defer u.Close(); defer c.Close(); copyConn(u, c) }()
			go func() { defer u.Close(); defer c.Close(); copyConn(c, u) }()
		}
	}()
	return p
}

func copyConn(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *apiProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return n
}

func (e *sharkEnv) testUI(t *testing.T) {
	server := strings.TrimSpace(e.c.kubectl(t, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"))
	host := strings.TrimPrefix(server, "https://")
	apiIP, _, _ := net.SplitHostPort(host)
	proxy := newAPIProxy(t, host)
	args := e.sharkArgs("ui", "-n", e.ns, "web", "--no-browser", "--port", "0")
	args = append(args, "--server", "https://"+proxy.ln.Addr().String(), "--tls-server-name", apiIP)
	p := e.startRaw(t, args...)
	var url string
	select {
	case line := <-p.stdout:
		url = strings.TrimPrefix(line, "Dashboard: ")
	case <-time.After(90 * time.Second):
		t.Fatalf("no dashboard address; stderr:\n%s", p.Stderr())
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.Contains(url, "token=") {
		t.Fatalf("dashboard address %q", url)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 3 * time.Second}
	page := func() (int, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := page(); err != nil || code != http.StatusOK {
		t.Fatalf("dashboard: %d %v", code, err)
	}
	base := url[:strings.Index(url, "/?")]
	healthy := func() bool {
		resp, err := client.Get(base + "/v1/targets")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK // the cookie carries the token
	}
	if !healthy() {
		t.Fatal("the API through the forward with the cookie does not answer 200")
	}
	for round := 1; round <= 2; round++ {
		if n := proxy.cut(); n == 0 {
			t.Fatal("no connection to cut: the forward does not go through the proxy")
		}
		cut := time.Now()
		for !healthy() {
			if time.Since(cut) > 10*time.Second {
				t.Fatalf("round %d: the dashboard did not come back within 10s", round)
			}
			time.Sleep(100 * time.Millisecond)
		}
		back := time.Since(cut)
		t.Logf("round %d: the dashboard answered again %.2fs after the forward was cut", round, back.Seconds())
		if back > 3*time.Second {
			t.Errorf("round %d: back after %s, want within 3s", round, back)
		}
	}
	if code := p.interrupt(t, 45*time.Second); code != 0 {
		t.Errorf("ui exit %d; stderr:\n%s", code, p.Stderr())
	}
	id := sessionLine.FindStringSubmatch(p.Stderr())
	if id == nil {
		t.Fatalf("no session line in:\n%s", p.Stderr())
	}
	e.waitNoLabelled(t, id[1], 30*time.Second)
}

func (e *sharkEnv) testKilled(t *testing.T) {
	const idle = 10 * time.Second
	p := e.start(t, "tap", "-n", e.ns, "web", "--idle-timeout", idle.String())
	id := p.waitStderr(t, sessionLine, 30*time.Second)[1]
	p.waitStderr(t, regexp.MustCompile(`worker on \S+ is capturing`), 60*time.Second)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	took := e.waitNoLabelled(t, id, idle+30*time.Second)
	t.Logf("SIGKILL: everything gone %.1fs after the kill (idle timeout %s)", took.Seconds(), idle)

	// A session left on purpose (a long idle timeout) is removed by clean.
	p = e.start(t, "tap", "-n", e.ns, "web", "--idle-timeout", "10m")
	id = p.waitStderr(t, sessionLine, 30*time.Second)[1]
	p.waitStderr(t, regexp.MustCompile(`worker on \S+ is capturing`), 60*time.Second)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	if left := e.labelledObjects(t, id); len(left) == 0 {
		t.Fatal("the killed session left nothing to clean: the test proves nothing")
	}
	e.cleanAll(t)
	if left := e.labelledObjects(t, id); len(left) > 0 {
		t.Errorf("after clean --all --wait: %v", left)
	}
}
