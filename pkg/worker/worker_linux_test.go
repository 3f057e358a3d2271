package worker

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/all"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// brief is the part of an entry the tests assert.
type brief struct {
	Proto, Method, Path, Status string
	Src, Dst                    string // namespace/pod, or "" for a stranger
}

func briefOf(e entry.Entry) brief {
	name := func(ep entry.Endpoint) string {
		if ep.Pod == "" {
			return ""
		}
		return ep.Namespace + "/" + ep.Pod
	}
	return brief{e.Proto, e.Method, e.Path, e.Status, name(e.Src), name(e.Dst)}
}

func briefs(es []entry.Entry) []brief {
	out := make([]brief, 0, len(es))
	for _, e := range es {
		out = append(out, briefOf(e))
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

// redisPing talks RESP to a Redis server and closes the connection.
func redisPing(t *testing.T, env *testEnv, ns, addr string) {
	t.Helper()
	c, err := env.dial(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, cmd := range []string{"*1\r\n$4\r\nPING\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"} {
		io.WriteString(c, cmd)
		line, err := r.ReadString('\n')
		if err != nil || (line != "+PONG\r\n" && line != "+OK\r\n") {
			t.Fatalf("redis said %q: %v", line, err)
		}
	}
}

// TestWorkerEntries runs real servers (Go net/http, redis-server, dnsmasq)
// in three target pods and one other, drives them with real clients, and
// checks the worker's exact entries and their attribution.
func TestWorkerEntries(t *testing.T) {
	requireRoot(t, "redis-server", "dnsmasq", "dig")
	env := newEnv(t)
	web := env.pod("shop/web", "v1-cgroupfs")
	redis := env.pod("shop/redis", "v2-systemd")
	dns := env.pod("kube-system/dns", "v2-cgroupfs")
	other := env.pod("other/web", "v1-cgroupfs")

	web.httpServer()
	other.httpServer()
	redis.start("redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no")
	env.waitTCP(env.host, redis.ip+":6379")
	dns.start("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--pid-file=",
		"--bind-interfaces", "--listen-address="+dns.ip, "--port=53", "--user=root",
		"--host-record=web.shark.test,10.1.2.3")
	env.waitTCP(env.host, dns.ip+":53")

	w, out, stop := runWorker(t, Options{Node: "node-1", Name: "worker-1"}, web.target(), redis.target(), dns.target())
	d := waitFor(t, 3*time.Second, "attach 3 pods", func() bool { return w.Stats().Attached == 3 })
	t.Logf("attached 3 pods in %v", d)

	// From the host: HTTP keep-alive to web, and to the untargeted pod.
	hc := env.httpClient(env.host)
	for _, path := range []string{"/hello", "/hello", "/missing"} {
		resp, err := hc.Get("http://" + web.ip + ":8080" + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := hc.Post("http://"+web.ip+":8080/echo", "text/plain", strings.NewReader("ping"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for i := 0; i < 2; i++ {
		resp, err := hc.Get("http://" + other.ip + ":8080/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	hc.CloseIdleConnections()
	// Redis from the host, and from web (pod to pod: both ends targeted).
	redisPing(t, env, env.host, redis.ip+":6379")
	redisPing(t, env, web.ns, redis.ip+":6379")
	// Loopback inside web: seen once, though lo shows each packet twice.
	lc := env.httpClient(web.ns)
	if resp, err := lc.Get("http://127.0.0.1:8080/hello"); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	lc.CloseIdleConnections()
	// DNS over UDP and TCP with dig.
	for _, extra := range [][]string{nil, {"+tcp"}} {
		args := append([]string{"netns", "exec", env.host, "dig", "@" + dns.ip, "+tries=1", "+time=3", "web.shark.test", "A"}, extra...)
		if o, err := exec.Command("ip", args...).CombinedOutput(); err != nil || !strings.Contains(string(o), "10.1.2.3") {
			t.Fatalf("dig: %v\n%s", err, o)
		}
	}

	want := []brief{
		{"http", "GET", "/hello", "200", "", "shop/web"},
		{"http", "GET", "/hello", "200", "", "shop/web"},
		{"http", "GET", "/missing", "404", "", "shop/web"},
		{"http", "POST", "/echo", "201", "", "shop/web"},
		{"http", "GET", "/hello", "200", "shop/web", "shop/web"},
		{"dns", "A", "web.shark.test", "NOERROR", "", "kube-system/dns"},
		{"dns", "A", "web.shark.test", "NOERROR", "", "kube-system/dns"},
	}
	// Redis is a TCP summary until a Redis dissector is registered; then
	// each command is an entry (their status is the dissector's business).
	if all.Registry(dissect.DefaultOptions()).Lookup(entry.ProtoRedis) == nil {
		want = append(want, brief{"tcp", "", "", "fin", "", "shop/redis"}, brief{"tcp", "", "", "fin", "shop/web", "shop/redis"})
	} else {
		for _, src := range []string{"", "shop/web"} {
			want = append(want, brief{"redis", "PING", "", "*", src, "shop/redis"}, brief{"redis", "SET", "k", "*", src, "shop/redis"})
		}
	}
	sort.Slice(want, func(i, j int) bool { return fmt.Sprint(want[i]) < fmt.Sprint(want[j]) })
	waitFor(t, 10*time.Second, "entries", func() bool { return len(out.entries(t)) >= len(want) })
	time.Sleep(500 * time.Millisecond) // anything extra would show up now
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := out.entries(t)
	gotBriefs := briefs(got)
	for i := range gotBriefs {
		if gotBriefs[i].Proto == entry.ProtoRedis {
			gotBriefs[i].Status = "*"
		}
	}
	if diff := cmp.Diff(want, gotBriefs); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
		for _, e := range got {
			t.Logf("%+v", e)
		}
	}
	for _, e := range got {
		if e.Node != "node-1" || e.Worker != "worker-1" || e.Source != entry.SourceAFPacket || e.FlowID == "" {
			t.Errorf("entry %s: node %q worker %q source %q flow %q", e.ID, e.Node, e.Worker, e.Source, e.FlowID)
		}
		if e.Dst.Pod != "" && e.Dst.Node != "node-1" {
			t.Errorf("entry %s: dst node %q", e.ID, e.Dst.Node)
		}
		if e.Src.IP == other.ip || e.Dst.IP == other.ip {
			t.Errorf("traffic of an untargeted pod: %+v", e)
		}
		if e.Proto == "dns" && (e.DNS == nil || len(e.DNS.Answers) != 1 || e.DNS.Answers[0].Data != "10.1.2.3") {
			t.Errorf("dns entry %+v", e.DNS)
		}
	}
	st := w.Stats()
	if st.KernelDrops != 0 || st.DissectDrops != 0 || st.Packets == 0 || st.Entries["http"] != 5 || st.Entries["dns"] != 2 || st.Assemble.TCPFlows == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestWorkerLifecycle checks that pods that appear, restart into a new
// namespace and go away are attached and released within a second, with
// no goroutine or file descriptor left behind.
func TestWorkerLifecycle(t *testing.T) {
	requireRoot(t)
	env := newEnv(t)
	pod := env.pod("shop/late", "v2-systemd")
	path := env.netns("by-path") // a target given by netns path

	goroutines, fds := runtimeCounts()
	w, out, stop := runWorker(t, Options{}, pod.target(), Target{Netns: "/run/netns/" + path + "-later"})
	time.Sleep(300 * time.Millisecond)
	if n := w.Stats().Attached; n != 0 {
		t.Fatalf("attached %d before any pod process exists", n)
	}

	// The pod's first process starts: attached within a second.
	cmd := pod.httpServer()
	d := waitSince(t, pod.started, time.Second, "attach a new pod", func() bool { return w.Stats().Attached == 1 })
	t.Logf("attached %v after the pod's process started", d)
	first := w.Stats().Pods[0].Netns
	get(t, env, "http://"+pod.ip+":8080/hello")
	waitFor(t, 5*time.Second, "entry from the new pod", func() bool { return len(out.entries(t)) == 1 })

	// The pod restarts in a new namespace.
	cmd.Process.Kill()
	cmd.Wait()
	pod.attachNetns()
	cmd = pod.httpServer()
	d = waitSince(t, pod.started, time.Second, "follow a restarted pod", func() bool {
		st := w.Stats()
		return st.Attached == 1 && st.Pods[0].Netns != first
	})
	t.Logf("followed the restart %v after the new process started", d)
	get(t, env, "http://"+pod.ip+":8080/hello")
	waitFor(t, 5*time.Second, "entry after the restart", func() bool { return len(out.entries(t)) == 2 })

	// A namespace given by path appears, then goes away.
	created := time.Now()
	later := env.netns("by-path-later")
	if later != path+"-later" {
		t.Fatalf("namespace %q", later)
	}
	d = waitSince(t, created, time.Second, "attach a new netns path", func() bool { return w.Stats().Attached == 2 })
	t.Logf("netns path attached %v after ip netns add", d)
	deleted := time.Now()
	env.run("ip", "netns", "del", later)
	d = waitSince(t, deleted, time.Second, "release a deleted netns", func() bool { return w.Stats().Attached == 1 })
	t.Logf("netns path released %v after ip netns del", d)

	// The pod goes away: released within a second.
	killed := time.Now()
	killPod(t, pod)
	cmd.Wait() // the test's own pipe and pidfd go
	d = waitSince(t, killed, time.Second, "release a pod that went away", func() bool { return w.Stats().Attached == 0 })
	t.Logf("released %v after the pod's processes were killed", d)

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		g, f := runtimeCounts()
		if g <= goroutines && f <= fds {
			break
		}
		if time.Since(start) > 3*time.Second {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			fdl, _ := os.ReadDir("/proc/self/fd")
			var links []string
			for _, e := range fdl {
				l, _ := os.Readlink("/proc/self/fd/" + e.Name())
				links = append(links, l)
			}
			t.Fatalf("goroutines %d (were %d), fds %d (were %d): %v\n%s", g, goroutines, f, fds, links, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, env *testEnv, url string) {
	t.Helper()
	c := env.httpClient(env.host)
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// killPod kills every process in the pod's namespace and deletes it.
func killPod(t *testing.T, p *testPod) {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "pids", p.ns).Output()
	for _, f := range strings.Fields(string(out)) {
		var pid int
		fmt.Sscan(f, &pid)
		if proc, err := os.FindProcess(pid); err == nil {
			proc.Kill()
		}
	}
	exec.Command("ip", "netns", "del", p.ns).Run()
}

// runtimeCounts returns the goroutines of the test process and its open
// sockets and namespace files: what a worker opens per capture.
func runtimeCounts() (goroutines, fds int) {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if strings.HasPrefix(l, "socket:") || strings.HasPrefix(l, "net:") {
			fds++
		}
	}
	return runtime.NumGoroutine(), fds
}

// TestWorkerCountedBulk: bulk transfers of a protocol no parser claims are
// summarised in the capture threads (their payload never copied), and
// their summary entries still count every byte and data segment, and end
// as they did.
func TestWorkerCountedBulk(t *testing.T) {
	requireRoot(t)
	env := newEnv(t)
	bulk := env.pod("shop/bulk", "v2-systemd")
	bulk.bulkServer()
	// A ring of the default size: full-speed transfers on a busy machine
	// overflow the small ring of the other tests.
	opts := Options{Node: "node-1", Name: "worker-1"}
	opts.Capture.RingSize, opts.Capture.BlockSize = 32<<20, 1<<20
	w, out, stop := runWorker(t, opts, bulk.target())
	waitFor(t, 3*time.Second, "attach", func() bool { return w.Stats().Attached == 1 })

	const size = 8 << 20
	hello := fmt.Sprintf("%d\n", size)
	transfer := func() {
		c, err := env.dial(env.host, "tcp", bulk.ip+":9000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, hello); err != nil {
			t.Fatal(err)
		}
		// Read the start, then let the pipeline (slow under the race
		// detector) tell the capture that no parser claimed the flow:
		// flow control holds the rest at the server until then.
		const start = 256 << 10
		if n, err := io.CopyN(io.Discard, c, start); err != nil {
			t.Fatalf("read %d of %d bytes: %v", n, size, err)
		}
		waitFor(t, 5*time.Second, "the flow counted", func() bool { return w.counted.n.Load() > 0 })
		if n, err := io.CopyN(io.Discard, c, size-start); err != nil {
			t.Fatalf("read %d of %d bytes: %v", start+n, size, err)
		}
	}
	transfer()
	transfer()
	if !waitUntil(10*time.Second, func() bool { return len(out.entries(t)) >= 2 }) {
		stop()
		t.Fatalf("2 summary entries: not within 10s; got %+v; stats %+v", out.entries(t), w.Stats())
	}
	time.Sleep(300 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := out.entries(t)
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2: %+v", len(got), got)
	}
	// Ethernet-sized frames (offloads are off): at least size/MSS data
	// segments; a summary counted as one would give a few dozen.
	minSegs := int64(size / 1448)
	for _, e := range got {
		c := e.Conn
		if e.Proto != "tcp" || c == nil || c.ClientBytes != int64(len(hello)) || c.ServerBytes != size || c.End != "fin" {
			t.Errorf("entry %s %s: %+v", e.Proto, e.Status, c)
			continue
		}
		if c.ClientPackets != 1 || c.ServerPackets < minSegs || c.ServerPackets > 2*minSegs {
			t.Errorf("packets: client %d (want 1), server %d (want %d to %d)", c.ClientPackets, c.ServerPackets, minSegs, 2*minSegs)
		}
	}
	st := w.Stats()
	t.Logf("%d packets captured, %d summarised", st.Packets, st.Summarised)
	// Most of each transfer is summarised: all but its start and what
	// the windows held when the flow was found counted.
	if st.Summarised < uint64(minSegs/2) || st.KernelDrops != 0 || st.DissectDrops != 0 || st.Assemble.Gaps != 0 {
		t.Errorf("stats: %d summarised (want at least %d), %d kernel drops, %d dissect drops, %d gaps",
			st.Summarised, minSegs/2, st.KernelDrops, st.DissectDrops, st.Assemble.Gaps)
	}
}
