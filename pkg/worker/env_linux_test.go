package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// The root tests build a small node: a "host" namespace holding a bridge
// (like a node's cni0) and one namespace per pod, each with a veth whose
// peer is on the bridge. Pod processes are moved into cgroups named the way
// the kubelet names them, so the worker finds them through /proc exactly
// as on a node. Clients run in the host namespace.

const (
	envHTTP = "SHARK_WORKER_TEST_HTTP" // the test binary serves HTTP on this address
	envBulk = "SHARK_WORKER_TEST_BULK" // the test binary serves bulkServe on this address
	subnet  = "10.201.0."
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(envHTTP); addr != "" {
		serveHTTP(addr)
		return
	}
	if addr := os.Getenv(envBulk); addr != "" {
		serveBulk(addr)
		return
	}
	os.Exit(m.Run())
}

// serveHTTP is the pods' Go net/http server.
func serveHTTP(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello\n") })
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, 256<<10)) })
	fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, mux))
	os.Exit(1)
}

var envSeq atomic.Int32

type testEnv struct {
	t      *testing.T
	prefix string
	host   string // the namespace of the bridge and the clients
	pods   int
	v1, v2 string // cgroup roots: a v1 hierarchy (pids) and the v2 one
}

func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, cgroups and AF_PACKET sockets")
	}
	if testing.Short() {
		t.Skip("starts servers in network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps)", tool)
		}
	}
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{t: t, prefix: fmt.Sprintf("wk%d-%d", os.Getpid()%10000, envSeq.Add(1))}
	e.host = e.netns("host")
	e.run("ip", "-n", e.host, "link", "add", "br0", "type", "bridge")
	e.run("ip", "-n", e.host, "addr", "add", subnet+"1/24", "dev", "br0")
	e.run("ip", "-n", e.host, "link", "set", "br0", "up")
	e.offloadsOff(e.host, "br0")
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		e.v2 = "/sys/fs/cgroup"
	} else if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		e.v2 = "/sys/fs/cgroup/unified"
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err == nil {
		e.v1 = "/sys/fs/cgroup/pids"
	}
	return e
}

func (e *testEnv) run(args ...string) {
	e.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		e.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netns creates a namespace with lo up, removed at cleanup.
func (e *testEnv) netns(name string) string {
	e.t.Helper()
	ns := e.prefix + "-" + name
	exec.Command("ip", "netns", "del", ns).Run()
	e.run("ip", "netns", "add", ns)
	e.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	e.run("ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// testPod is a pod: a namespace on the bridge, a UID and a cgroup style.
type testPod struct {
	env   *testEnv
	name  string // namespace/pod
	ns    string
	ip    string
	uid   string
	style string // "v1-cgroupfs", "v2-systemd", "v2-cgroupfs"
	seq   int
	// started is when the last process started was moved into the pod.
	started time.Time
}

// pod makes a pod namespace with an address on the bridge's subnet.
func (e *testEnv) pod(name, style string) *testPod {
	e.t.Helper()
	e.pods++
	p := &testPod{env: e, name: name, style: style, seq: e.pods,
		ip:  fmt.Sprintf("%s%d", subnet, 10+e.pods),
		uid: fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", os.Getpid(), envSeq.Load(), e.pods, e.pods, time.Now().UnixNano()&0xffffffffffff),
	}
	p.attachNetns()
	return p
}

// attachNetns gives the pod a (new) namespace on the bridge, as a pod
// sandbox restart does.
func (p *testPod) attachNetns() {
	e := p.env
	p.ns = e.netns(fmt.Sprintf("p%d-%d", p.seq, time.Now().UnixNano()%100000))
	host, peer := fmt.Sprintf("vh%d", p.seq), "eth0"
	exec.Command("ip", "-n", e.host, "link", "del", host).Run()
	e.run("ip", "-n", e.host, "link", "add", host, "type", "veth", "peer", "name", peer, "netns", p.ns)
	e.run("ip", "-n", e.host, "link", "set", host, "master", "br0", "up")
	e.run("ip", "-n", p.ns, "addr", "add", p.ip+"/24", "dev", peer)
	e.run("ip", "-n", p.ns, "link", "set", peer, "up")
	e.offloadsOff(p.ns, peer)
	e.offloadsOff(e.host, host)
	for i := 0; ; i++ {
		out, _ := exec.Command("ip", "-n", p.ns, "-o", "link", "show", peer).Output()
		if strings.Contains(string(out), "state UP") {
			break
		}
		if i == 300 {
			e.t.Fatalf("%s did not come up: %s", peer, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// offloadsOff makes a device send and receive Ethernet-sized frames, as a
// real NIC does, rather than 64 KB segmentation-offload aggregates.
func (e *testEnv) offloadsOff(ns, dev string) {
	exec.Command("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off").Run()
}

func (p *testPod) target() Target {
	ns, name, _ := strings.Cut(p.name, "/")
	return Target{UID: p.uid, Namespace: ns, Name: name}
}

// cgroup creates the pod's container cgroup the way the kubelet and the
// runtime name it, and returns its directory.
func (p *testPod) cgroup() string {
	e := p.env
	e.t.Helper()
	under := strings.ReplaceAll(p.uid, "-", "_")
	var root string
	var parts []string
	switch p.style {
	case "v1-cgroupfs":
		root, parts = e.v1, []string{"kubepods", "besteffort", "pod" + p.uid, fmt.Sprintf("ctr%d", time.Now().UnixNano())}
	case "v2-systemd":
		root, parts = e.v2, []string{"kubepods.slice", "kubepods-besteffort.slice", "kubepods-besteffort-pod" + under + ".slice", fmt.Sprintf("cri-containerd-%d.scope", time.Now().UnixNano())}
	case "v2-cgroupfs":
		root, parts = e.v2, []string{"kubepods", "pod" + p.uid, fmt.Sprintf("ctr%d", time.Now().UnixNano())}
	}
	if root == "" {
		e.t.Skipf("no cgroup hierarchy for style %s on this machine", p.style)
	}
	dir := root
	for _, part := range parts {
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			e.t.Fatal(err)
		}
		d := dir
		e.t.Cleanup(func() { removeCgroup(d) })
	}
	return dir
}

// removeCgroup removes a cgroup once its processes are gone.
func removeCgroup(dir string) {
	for i := 0; i < 50; i++ {
		if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start runs a process in the pod: in its namespace and cgroup.
func (p *testPod) start(args ...string) *exec.Cmd {
	e := p.env
	e.t.Helper()
	return p.startEnv(nil, args...)
}

func (p *testPod) startEnv(env []string, args ...string) *exec.Cmd {
	e := p.env
	e.t.Helper()
	cg := p.cgroup()
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.ns}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	// ip netns exec execs the command: the PID is the server's.
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644); err != nil {
		cmd.Process.Kill()
		e.t.Fatalf("moving %d into %s: %v", cmd.Process.Pid, cg, err)
	}
	p.started = time.Now()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if e.t.Failed() && stderr.Len() > 0 {
			e.t.Logf("%s: %s", strings.Join(args, " "), stderr.String())
		}
	})
	return cmd
}

// httpServer starts the Go net/http server in the pod on port 8080.
func (p *testPod) httpServer() *exec.Cmd {
	cmd := p.startEnv([]string{envHTTP + "=0.0.0.0:8080"}, os.Args[0], "-test.run=^$")
	p.env.waitTCP(p.env.host, p.ip+":8080")
	return cmd
}

func (e *testEnv) waitTCP(ns, addr string) {
	e.t.Helper()
	for i := 0; i < 200; i++ {
		c, err := e.dial(ns, "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("nothing listens on %s", addr)
}

// dial connects from inside a namespace.
func (e *testEnv) dial(ns, network, addr string) (net.Conn, error) {
	h, err := afpacket.OpenNetns("/run/netns/" + ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var c net.Conn
	err = h.Do(func() (err error) {
		c, err = net.DialTimeout(network, addr, 2*time.Second)
		return err
	})
	return c, err
}

// httpClient sends requests from a namespace over keep-alive connections.
func (e *testEnv) httpClient(ns string) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
				return e.dial(ns, network, addr)
			},
			MaxIdleConnsPerHost: 1,
		},
	}
}

// syncBuffer collects the worker's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) entries(t *testing.T) []entry.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []entry.Entry
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e entry.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("bad output line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// runWorker starts a worker; stop cancels it and returns Run's error.
func runWorker(t *testing.T, opts Options, targets ...Target) (w *Worker, out *syncBuffer, stop func() error) {
	t.Helper()
	out = &syncBuffer{}
	opts.Out = out
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	if opts.ScanInterval == 0 {
		opts.ScanInterval = 100 * time.Millisecond
	}
	if opts.Capture.RingSize == 0 {
		opts.Capture.RingSize, opts.Capture.BlockSize = 4<<20, 256<<10
		opts.Capture.BlockTimeout = 10 * time.Millisecond
	}
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetTargets(targets); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = fmt.Errorf("Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return w, out, stop
}

// waitFor polls cond every 10ms up to limit and returns how long it took.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return waitSince(t, time.Now(), limit, what, cond)
}

// waitUntil polls cond every 10ms up to limit and reports whether it held.
func waitUntil(limit time.Duration, cond func() bool) bool {
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > limit {
			return false
		}
	}
	return true
}

// waitSince is waitFor for an event that happened at start.
func waitSince(t *testing.T, start time.Time, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// serveBulk is a server of no known protocol: each connection sends a
// decimal byte count and a newline, gets that many bytes of noise, and
// closes when the client does.
func serveBulk(addr string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			var n int64
			if _, err := fmt.Fscanf(c, "%d\n", &n); err != nil {
				return
			}
			noise := make([]byte, 64<<10)
			for i := range noise {
				noise[i] = byte(i*7919>>3) ^ byte(i)
			}
			for n > 0 {
				k := min(n, int64(len(noise)))
				if _, err := c.Write(noise[:k]); err != nil {
					return
				}
				n -= k
			}
			io.Copy(io.Discard, c)
		}()
	}
}

// bulkServer starts serveBulk in the pod on port 9000.
func (p *testPod) bulkServer() *exec.Cmd {
	cmd := p.startEnv([]string{envBulk + "=0.0.0.0:9000"}, os.Args[0], "-test.run=^$")
	p.env.waitTCP(p.env.host, p.ip+":9000")
	return cmd
}
