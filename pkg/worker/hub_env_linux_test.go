package worker

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// TestHubLinkNode is the worker of a session on a node: a real hub
// in-process, a real worker with its store and its hub link, pods in
// network namespaces and cgroups as the kubelet makes them. The targets
// come from the hub (the CLI posts them), curl in a client pod calls the
// target pod's server, and a subscriber of the hub sees the exchanges with
// both ends named; the hub's pcap export holds them too.
func TestHubLinkNode(t *testing.T) {
	requireRoot(t, "curl")
	env := newEnv(t)
	style := "v2-cgroupfs"
	if env.v2 == "" {
		style = "v1-cgroupfs"
	}
	web := env.pod("shop/web", style)
	client := env.pod("shop/client", style)
	web.httpServer()

	h := startTestHub(t, hub.Options{})
	st := newTestStore(t)
	link, _ := newTestLink(t, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, func(o *HubOptions) { o.Store = st })
	w, out, _ := runWorker(t, Options{Node: "node-1", Name: "worker-1", Render: link.Render, Sinks: []Sink{st, link}})
	runLink(t, link, w)
	waitConnected(t, link, 1)

	postTargets(t, h, wire.Targets{
		Targets: []wire.Target{
			{UID: web.uid, Namespace: "shop", Name: "web", IPs: []string{web.ip}, Node: "node-1"},
			{UID: client.uid, Namespace: "shop", Name: "client", Node: "node-2"}, // another node's
		},
		IPMap: wire.IPMap{
			web.ip:    {Pod: "web", Namespace: "shop", Workload: "web"},
			client.ip: {Pod: "client", Namespace: "shop", Workload: "client"},
		},
	})
	waitFor(t, 5*time.Second, "the target pod attached", func() bool { return w.Stats().Attached == 1 })
	if ts := w.Targets(); len(ts) != 1 || ts[0].UID != normalizeUID(web.uid) {
		t.Fatalf("targets %+v, want the web pod only", ts)
	}

	const expr = `src.pod == "client" && dst.pod == "web" && path == "/hello"`
	sub, err := h.Subscribe(context.Background(), expr)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitFilter(t, link, expr)

	const calls = 5
	for i := range calls {
		cmd := exec.Command("ip", "netns", "exec", client.ns, "curl", "-sS", "--max-time", "5", "http://"+web.ip+":8080/hello")
		b, err := cmd.CombinedOutput()
		if err != nil || string(b) != "hello\n" {
			t.Fatalf("curl %d: %v: %s", i, err, b)
		}
	}
	es := receive(t, sub, calls, 500*time.Millisecond)
	for _, e := range es {
		if e.Proto != "http" || e.Method != "GET" || e.Status != "200" || e.Source != "af_packet" ||
			e.Src.Pod != "client" || e.Src.Workload != "client" || e.Dst.Pod != "web" || e.Dst.Namespace != "shop" ||
			e.Node != "node-1" || e.Worker != "worker-1" {
			t.Errorf("entry %s %s %s %s src %+v dst %+v node %q worker %q", e.Proto, e.Method, e.Path, e.Status, e.Src, e.Dst, e.Node, e.Worker)
		}
	}
	if out.b.Len() != 0 {
		t.Errorf("the worker wrote output in hub mode: %.200s", out.b.String())
	}

	// The worker's stats reach subscribers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ss wire.SessionStats
	for len(ss.Workers) == 0 || ss.Workers[0].Entries < calls {
		if err := sub.Expect(ctx, wire.TypeStats, &ss); err != nil {
			t.Fatalf("stats %+v: %v", ss, err)
		}
	}
	if ws := ss.Workers[0]; ws.Sources != 1 || ws.Targets != 1 || ws.Packets == 0 || ws.Worker != "worker-1" {
		t.Errorf("worker stats %+v", ws)
	}

	// The hub's pcap export of the pod holds the requests.
	waitFor(t, 5*time.Second, "the store", func() bool { return st.Stats().Packets >= calls*8 })
	time.Sleep(100 * time.Millisecond)
	resp, err := h.Do(context.Background(), http.MethodGet, wire.PathPcap, url.Values{"pods": {"shop/web"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %v", resp.Status, err)
	}
	if n := tsharkRequests(t, data); n != calls {
		t.Errorf("tshark finds %d HTTP requests in the export, want %d", n, calls)
	}
}

// tsharkRequests counts the HTTP requests tshark finds in a capture.
func tsharkRequests(t *testing.T, data []byte) int {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("needs tshark (make deps)")
	}
	f := filepath.Join(t.TempDir(), "export.pcapng")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", f, "-Y", "http.request", "-T", "fields", "-e", "http.request.uri")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	n := 0
	for _, line := range strings.Fields(string(b)) {
		if line == "/hello" {
			n++
		}
	}
	return n
}
