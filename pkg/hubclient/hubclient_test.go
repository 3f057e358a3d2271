package hubclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// recorder is a Handler that hands what it hears to channels.
type recorder struct {
	entries      chan entry.Entry
	mu           sync.Mutex
	disconnects  int
	reconnects   []time.Duration
	reconnected  chan struct{}
	droppedTotal uint64
}

func newRecorder() *recorder {
	return &recorder{entries: make(chan entry.Entry, 1024), reconnected: make(chan struct{}, 16)}
}

func (r *recorder) Entry(e *entry.Entry) { r.entries <- *e }
func (r *recorder) Dropped(n uint64) {
	r.mu.Lock()
	r.droppedTotal += n
	r.mu.Unlock()
}
func (r *recorder) Stats(wire.SessionStats) {}
func (r *recorder) Disconnected(error) {
	r.mu.Lock()
	r.disconnects++
	r.mu.Unlock()
}
func (r *recorder) Reconnected(d time.Duration) {
	r.mu.Lock()
	r.reconnects = append(r.reconnects, d)
	r.mu.Unlock()
	r.reconnected <- struct{}{}
}

// killableDialer dials addr and can break every connection it made, as a
// dropped port-forward does.
type killableDialer struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func (d *killableDialer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", d.addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

func (d *killableDialer) killAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

func startHub(t *testing.T) (*hubtest.Hub, *hubtest.Worker) {
	t.Helper()
	h := hubtest.Start(t, hub.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := h.DialWorker(ctx, wire.Hello{Node: "node-a", Worker: "shark-worker-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return h, w
}

func httpEntry(path string, port int) entry.Entry {
	return entry.Entry{
		V: entry.Version, Proto: "http", Method: "GET", Path: path, Status: "200",
		Src: entry.Endpoint{IP: "10.0.0.1", Port: 40000},
		Dst: entry.Endpoint{IP: "10.0.0.2", Port: port},
	}
}

func nextEntry(t *testing.T, r *recorder) entry.Entry {
	t.Helper()
	select {
	case e := <-r.entries:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no entry within 10s")
		return entry.Entry{}
	}
}

func TestSubscribeFiltersTargetsAndReconnects(t *testing.T) {
	h, w := startHub(t)
	d := &killableDialer{addr: h.APIAddr}
	c := New("shark-hub", h.PKI.Token, d.dial)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	targets := wire.Targets{
		Targets: []wire.Target{{UID: "u1", Namespace: "demo", Name: "front-1", Node: "node-a", IPs: []string{"10.0.0.2"}}},
		IPMap:   wire.IPMap{"10.0.0.2": {Pod: "front-1", Namespace: "demo"}},
	}
	if err := c.PostTargets(ctx, targets); err != nil {
		t.Fatal(err)
	}
	var got wire.Targets
	for len(got.Targets) == 0 { // the first targets message is the empty set on connect
		if err := w.Expect(ctx, wire.TypeTargets, &got); err != nil {
			t.Fatal(err)
		}
	}
	if len(got.Targets) != 1 || got.Targets[0].Name != "front-1" {
		t.Fatalf("worker got targets %+v", got)
	}

	r := newRecorder()
	errc := make(chan error, 1)
	go func() { errc <- c.Subscribe(ctx, "dst.port == 80", r) }()
	if err := w.WaitFilter(ctx, "dst.port == 80"); err != nil {
		t.Fatal(err)
	}
	if err := w.SendEntries([]entry.Entry{httpEntry("/skip", 8080), httpEntry("/a", 80)}); err != nil {
		t.Fatal(err)
	}
	if e := nextEntry(t, r); e.Path != "/a" || e.Dst.Pod != "front-1" {
		t.Fatalf("got entry %s dst pod %q, want /a to front-1 (the hub enriches)", e.Path, e.Dst.Pod)
	}

	// A broken connection: the subscription comes back on its own.
	d.killAll()
	select {
	case <-r.reconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnect within 5s")
	}
	if err := w.WaitFilter(ctx, "dst.port == 80"); err != nil {
		t.Fatal(err)
	}
	if err := w.SendEntries([]entry.Entry{httpEntry("/b", 80)}); err != nil {
		t.Fatal(err)
	}
	if e := nextEntry(t, r); e.Path != "/b" {
		t.Fatalf("after reconnect got %s, want /b", e.Path)
	}
	r.mu.Lock()
	if r.disconnects != 1 || len(r.reconnects) != 1 || r.reconnects[0] > 3*time.Second {
		t.Errorf("disconnects %d, reconnects %v: want one of each, back within 3s", r.disconnects, r.reconnects)
	}
	r.mu.Unlock()

	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe returned %v, want context.Canceled", err)
	}
}

func TestFatalErrors(t *testing.T) {
	h, _ := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	bad := New(h.APIAddr, "not-the-token", nil)
	if err := bad.Subscribe(ctx, "", newRecorder()); !IsUnauthorized(err) {
		t.Errorf("Subscribe with a wrong token: %v, want 401", err)
	}
	if err := bad.Heartbeat(ctx); !IsUnauthorized(err) {
		t.Errorf("Heartbeat with a wrong token: %v, want 401", err)
	}
	good := New(h.APIAddr, h.PKI.Token, nil)
	if err := good.Subscribe(ctx, "proto ==", newRecorder()); !errors.Is(err, ErrFilter) {
		t.Errorf("Subscribe with a bad filter: %v, want ErrFilter", err)
	}
	if err := good.Heartbeat(ctx); err != nil {
		t.Errorf("Heartbeat: %v", err)
	}
}

func TestPcap(t *testing.T) {
	h, w := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := New(h.APIAddr, h.PKI.Token, nil)
	body := make(chan []byte, 1)
	errc := make(chan error, 1)
	go func() {
		rc, err := c.Pcap(ctx, PcapQuery{Since: 5 * time.Minute, Pods: []string{"demo/front-1"}})
		if err != nil {
			errc <- err
			return
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		errc <- err
		body <- b
	}()
	var req wire.PcapRequest
	if err := w.Expect(ctx, wire.TypePcapRequest, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.Pods) != 1 || req.Pods[0] != "demo/front-1" || req.From.IsZero() {
		t.Fatalf("worker got request %+v", req)
	}
	pcapng := minimalPcapng()
	if err := w.SendPcap(ctx, req, pcapng, 16); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if b := <-body; !bytes.HasPrefix(b, pcapng[:4]) || len(b) < len(pcapng) {
		t.Errorf("got %d bytes starting %x, want the worker's pcapng section", len(b), b[:min(8, len(b))])
	}
}

// minimalPcapng is a section header, one interface, no packets.
func minimalPcapng() []byte {
	return []byte{
		0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0,
		1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 0, 20, 0, 0, 0,
	}
}
