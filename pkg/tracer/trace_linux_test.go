package tracer

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/tracer/tracertest"
)

// collector reads a tracer's events on a goroutine until stopped.
type collector struct {
	tr   *Tracer
	mu   sync.Mutex
	evs  []Event
	stop chan struct{}
	done chan struct{}
}

func collect(tr *Tracer) *collector {
	c := &collector{tr: tr, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var ev Event
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			tr.SetDeadline(time.Now().Add(50 * time.Millisecond))
			if err := tr.Read(&ev); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				return
			}
			e := ev
			e.Data = bytes.Clone(ev.Data)
			c.mu.Lock()
			c.evs = append(c.evs, e)
			c.mu.Unlock()
		}
	}()
	return c
}

// events waits for the ring to drain a little, stops, and returns all.
func (c *collector) events() []Event {
	time.Sleep(300 * time.Millisecond)
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evs
}

// find returns the first event matching.
func find(evs []Event, match func(*Event) bool) *Event {
	for i := range evs {
		if match(&evs[i]) {
			return &evs[i]
		}
	}
	return nil
}

func dump(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  pid %d %s %s fd %d netns %d %v→%v %s %q\n", e.PID, e.Command(), e.Lib, e.FD, e.Netns, e.Local, e.Remote, e.Dir, trim(e.Data))
	}
	return b.String()
}

func trim(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

func run(t *testing.T, cmd *exec.Cmd) (pid int, out string) {
	t.Helper()
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid = cmd.Process.Pid
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, buf.String())
	}
	return pid, strings.TrimSpace(buf.String())
}

// TestTraceOpenSSL: curl and Python (OpenSSL 3) against nginx in a test
// namespace yield their exact plaintext, attributed to the right process,
// namespace and socket; a second, untraced namespace yields nothing.
func TestTraceOpenSSL(t *testing.T) {
	tracertest.Require(t, "nginx", "curl", "python3")
	tr := requireTracer(t)
	ns := tracertest.NewNetns(t)
	other := tracertest.NewNetns(t)
	tracertest.StartNginx(t, ns, 1)
	tracertest.StartNginx(t, other, 1)
	if err := tr.SetNetns([]uint64{ns.Ino}); err != nil {
		t.Fatal(err)
	}
	attached, err := tr.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(attached, func(p string) bool { return strings.Contains(filepath.Base(p), "libssl") }) {
		t.Fatalf("Scan attached %q, want libssl", attached)
	}
	c := collect(tr)
	curlPID, out := run(t, ns.Command("curl", "-sk", "--http1.1", "https://127.0.0.1:8443/hello"))
	if out != "hello" {
		t.Fatalf("curl: %q", out)
	}
	pyPID, out := run(t, ns.Command("python3", "-c", tracertest.PythonGet, "127.0.0.1", "8443", "/missing"))
	if out != "HTTP/1.1 404 Not Found" {
		t.Fatalf("python: %q", out)
	}
	if _, out := run(t, other.Command("curl", "-sk", "--http1.1", "https://127.0.0.1:8443/untraced")); out == "" {
		t.Fatal("curl in the other namespace got nothing")
	}
	evs := c.events()
	server := netip.MustParseAddrPort("127.0.0.1:8443")

	curlReq := find(evs, func(e *Event) bool { return e.PID == uint32(curlPID) && e.Dir == Sent })
	if curlReq == nil {
		t.Fatalf("no request from curl (pid %d):\n%s", curlPID, dump(evs))
	}
	if !bytes.HasPrefix(curlReq.Data, []byte("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n")) {
		t.Errorf("curl sent %q", curlReq.Data)
	}
	checkEvent(t, curlReq, "curl", ns.Ino, server)
	if e := find(evs, func(e *Event) bool { return e.PID == uint32(curlPID) && e.Dir == Received }); e == nil ||
		!bytes.HasPrefix(e.Data, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(e.Data, []byte("\r\n\r\nhello\n")) {
		t.Errorf("curl's response event: %+v", e)
	}
	// nginx's worker reads the same request on the other end.
	srv := find(evs, func(e *Event) bool {
		return e.Command() == "nginx" && e.Dir == Received && e.Remote == curlReq.Local
	})
	if srv == nil || !bytes.Equal(srv.Data, curlReq.Data) || srv.Local != server || srv.Netns != uint32(ns.Ino) {
		t.Errorf("nginx's view of curl's request: %+v", srv)
	}

	pyReq := find(evs, func(e *Event) bool { return e.PID == uint32(pyPID) && e.Dir == Sent })
	if pyReq == nil || !bytes.HasPrefix(pyReq.Data, []byte("GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: python-ssl\r\n")) {
		t.Fatalf("python's request: %+v\n%s", pyReq, dump(evs))
	}
	checkEvent(t, pyReq, "python3", ns.Ino, server)
	if e := find(evs, func(e *Event) bool { return e.PID == uint32(pyPID) && e.Dir == Received }); e == nil ||
		!bytes.HasPrefix(e.Data, []byte("HTTP/1.1 404 Not Found\r\n")) {
		t.Errorf("python's response event: %+v", e)
	}

	if e := find(evs, func(e *Event) bool { return e.Netns != uint32(ns.Ino) }); e != nil {
		t.Errorf("event from an untraced namespace: %+v", e)
	}
	if st := tr.Stats(); st.Events < 6 || st.RingFull != 0 || st.DecodeErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func checkEvent(t *testing.T, e *Event, comm string, netns uint64, server netip.AddrPort) {
	t.Helper()
	if e.Command() != comm || e.Netns != uint32(netns) || e.FD < 0 || e.Remote != server ||
		!e.Local.Addr().IsLoopback() || e.Local.Port() == server.Port() || e.TID == 0 || e.Len != uint32(len(e.Data)) {
		t.Errorf("event of %s: pid %d tid %d comm %q fd %d netns %d (want %d) %v→%v len %d/%d",
			comm, e.PID, e.TID, e.Command(), e.FD, e.Netns, netns, e.Local, e.Remote, len(e.Data), e.Len)
	}
}

// TestTraceGo: a Go HTTPS client and server (built here with the installed
// Go, register ABI) yield their plaintext over HTTP/1.1 and HTTP/2 from
// the crypto/tls probes at function entry and at every RET.
func TestTraceGo(t *testing.T) {
	tracertest.Require(t)
	tr := requireTracer(t)
	bin := tracertest.GoTLS(t)
	t.Logf("gotls built with %s", tracertest.GoVersion())
	ns := tracertest.NewNetns(t)
	cert, key := tracertest.Cert(t)
	srvCmd := ns.Start(t, bin, "-mode", "server", "-addr", "127.0.0.1:9443", "-cert", cert, "-key", key)
	ns.WaitListen(t, srvCmd.Process.Pid, 9443)
	if err := tr.SetNetns([]uint64{ns.Ino}); err != nil {
		t.Fatal(err)
	}
	attached, err := tr.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(attached, func(p string) bool { return filepath.Base(p) == "gotls" }) {
		t.Fatalf("Scan attached %q, want gotls", attached)
	}
	c := collect(tr)
	h1PID, out := run(t, ns.Command(bin, "-mode", "client", "-url", "https://127.0.0.1:9443", "-paths", "/hello"))
	if out != "HTTP/1.1 200 /hello" {
		t.Fatalf("h1 client: %q", out)
	}
	h2PID, out := run(t, ns.Command(bin, "-mode", "client", "-h2", "-url", "https://127.0.0.1:9443", "-paths", "/hello"))
	if out != "HTTP/2.0 200 /hello" {
		t.Fatalf("h2 client: %q", out)
	}
	evs := c.events()
	server := netip.MustParseAddrPort("127.0.0.1:9443")

	h1 := find(evs, func(e *Event) bool { return e.PID == uint32(h1PID) && e.Dir == Sent })
	if h1 == nil || !bytes.HasPrefix(h1.Data, []byte("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:9443\r\n")) || h1.Lib != GoTLS {
		t.Fatalf("HTTP/1.1 request of the Go client: %+v\n%s", h1, dump(evs))
	}
	checkEvent(t, h1, "gotls", ns.Ino, server)
	if e := find(evs, func(e *Event) bool { return e.PID == uint32(h1PID) && e.Dir == Received }); e == nil ||
		!bytes.HasPrefix(e.Data, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.Contains(e.Data, []byte("hello over HTTP/1.1\n")) {
		t.Errorf("HTTP/1.1 response of the Go client: %+v", e)
	}
	if e := find(evs, func(e *Event) bool {
		return e.PID == uint32(srvCmd.Process.Pid) && e.Dir == Received && e.Remote == h1.Local
	}); e == nil || !bytes.Equal(e.Data, h1.Data) {
		t.Errorf("the Go server's view of the request: %+v", e)
	}

	h2 := find(evs, func(e *Event) bool { return e.PID == uint32(h2PID) && e.Dir == Sent })
	if h2 == nil || !bytes.HasPrefix(h2.Data, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) {
		t.Fatalf("HTTP/2 preface of the Go client: %+v\n%s", h2, dump(evs))
	}
	checkEvent(t, h2, "gotls", ns.Ino, server)
}

// TestUnprivileged: without the privileges, New fails with one reason and
// ErrUnavailable, and nothing else happens.
func TestUnprivileged(t *testing.T) {
	if os.Getenv("SHARK_TRACER_UNPRIVILEGED") == "1" {
		_, err := New(Options{})
		fmt.Printf("ERR=%v\nUNAVAILABLE=%v\n", err, errors.Is(err, ErrUnavailable))
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to an unprivileged user")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Copy the test binary where the unprivileged user can run it.
	dir, err := os.MkdirTemp("", "shark-tracer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "tracer.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^TestUnprivileged$")
	cmd.Env = append(os.Environ(), "SHARK_TRACER_UNPRIVILEGED=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), "UNAVAILABLE=true") || !strings.Contains(string(out), "ERR=no permission to load BPF programs") {
		t.Fatalf("unprivileged New (%v):\n%s", err, out)
	}
	t.Logf("unprivileged: %s", strings.SplitN(string(out), "\n", 2)[0])
}
