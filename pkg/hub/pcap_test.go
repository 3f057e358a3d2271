package hub_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// udpPacket is a raw IPv4/UDP packet (checksums left zero, which is valid
// for UDP over IPv4).
func udpPacket(src, dst string, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	return b
}

// pktSpec is one packet of a worker's export: its pod and time offset.
type pktSpec struct {
	pod string
	at  time.Duration
}

// workerPcap is a pcapng stream as a worker exports it: one interface per
// pod, named namespace/pod, packets in time order.
func workerPcap(t *testing.T, base time.Time, pkts []pktSpec) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := store.NewNgWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for i, p := range pkts {
		id, ok := ids[p.pod]
		if !ok {
			if id, err = w.AddInterface(capture.Interface{Name: p.pod, LinkType: capture.LinkRaw, SnapLen: 65535}); err != nil {
				t.Fatal(err)
			}
			ids[p.pod] = id
		}
		data := udpPacket("10.0.0.1", "10.0.0.2", 5000, 53, []byte(p.pod+" #"+string(rune('a'+i))))
		if err := w.WritePacket(id, &capture.Packet{Timestamp: base.Add(p.at), Length: len(data), LinkType: capture.LinkRaw, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readPcap reads a capture: each packet's interface name and time.
type readPkt struct {
	Iface string
	At    time.Duration
}

func readPcap(t *testing.T, data []byte, base time.Time) []readPkt {
	t.Helper()
	src, err := capture.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out []readPkt
	for {
		var p capture.Packet
		err := src.Next(&p)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, readPkt{src.Interfaces()[p.Interface].Name, p.Timestamp.Sub(base)})
	}
}

// answerPcap makes w answer the next pcap request with data, and returns
// the request it got.
func answerPcap(ctx context.Context, w *hubtest.Worker, data []byte) <-chan wire.PcapRequest {
	got := make(chan wire.PcapRequest, 1)
	go func() {
		var req wire.PcapRequest
		if err := w.Expect(ctx, wire.TypePcapRequest, &req); err != nil {
			close(got)
			return
		}
		got <- req
		w.SendPcap(ctx, req, data, 700) // small chunks: the credit runs out
	}()
	return got
}

func getPcap(ctx context.Context, t *testing.T, h *hubtest.Hub, q url.Values) (*http.Response, []byte) {
	t.Helper()
	resp, err := h.Do(ctx, http.MethodGet, wire.PathPcap, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestPcapMerge checks that GET /v1/pcap merges the workers' exports into
// one pcapng stream in time order, one interface per pod, that tshark
// reads.
func TestPcapMerge(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	wa := dialWorker(ctx, t, h, "n1", "wa")
	wb := dialWorker(ctx, t, h, "n2", "wb")

	// Interleaved in time across workers, and across the pods of one.
	var specA, specB []pktSpec
	for i := range 200 {
		at := time.Duration(i) * time.Millisecond
		switch i % 4 {
		case 0:
			specA = append(specA, pktSpec{"shop/front-1", at})
		case 1:
			specB = append(specB, pktSpec{"shop/cart-1", at})
		case 2:
			specA = append(specA, pktSpec{"shop/front-2", at})
		case 3:
			specB = append(specB, pktSpec{"shop/cart-1", at})
		}
	}
	reqA := answerPcap(ctx, wa, workerPcap(t, base, specA))
	reqB := answerPcap(ctx, wb, workerPcap(t, base, specB))
	before := time.Now()
	resp, body := getPcap(ctx, t, h, url.Values{"since": {"5m"}, "pods": {"shop/front-1,shop/front-2,shop/cart-1"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-pcapng" {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.Trailer.Get("X-Shark-Packets") != "200" || resp.Trailer.Get("X-Shark-Errors") != "" {
		t.Errorf("trailers %v", resp.Trailer)
	}
	for _, ch := range []<-chan wire.PcapRequest{reqA, reqB} {
		req := <-ch
		from := before.Add(-5 * time.Minute)
		if req.From.Before(from.Add(-time.Second)) || req.From.After(from.Add(time.Second)) || req.Credit <= 0 || len(req.Pods) != 3 {
			t.Errorf("request %+v, want from about %v, 3 pods, a credit", req, from)
		}
	}

	got := readPcap(t, body, base)
	var want []readPkt
	for i := range 200 {
		pod := []string{"shop/front-1", "shop/cart-1", "shop/front-2", "shop/cart-1"}[i%4]
		want = append(want, readPkt{pod, time.Duration(i) * time.Millisecond})
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("merged packets (-want +got):\n%s", d)
	}

	// tshark reads it and sees the pods as interfaces.
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed")
	}
	file := filepath.Join(t.TempDir(), "merged.pcapng")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, "tshark", "-r", file, "-T", "fields", "-e", "frame.interface_name", "-e", "udp.dstport").Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var names []string
	for i, l := range lines {
		if l != want[i].Iface+"\t53" {
			t.Fatalf("tshark line %d: %q, want %q", i, l, want[i].Iface+"\t53")
		}
		names = append(names, strings.Split(l, "\t")[0])
	}
	slices.Sort(names)
	if got := slices.Compact(names); len(lines) != 200 || !cmp.Equal(got, []string{"shop/cart-1", "shop/front-1", "shop/front-2"}) {
		t.Errorf("tshark read %d packets on %v", len(lines), got)
	}
}

// TestPcapPartialFailure checks that a worker's error, a stalled worker
// and a worker that leaves end only their part, and are reported in the
// trailer.
func TestPcapPartialFailure(t *testing.T) {
	ctx := testCtx(t)
	opts := hub.NewOptions()
	opts.PcapStallTimeout = 300 * time.Millisecond
	h := hubtest.Start(t, opts)
	base := time.Now().Truncate(time.Millisecond)
	good := dialWorker(ctx, t, h, "n1", "good")
	failing := dialWorker(ctx, t, h, "n2", "failing")
	stalled := dialWorker(ctx, t, h, "n3", "stalled")
	leaving, err := h.DialWorker(ctx, wire.Hello{Node: "n4", Worker: "leaving"})
	if err != nil {
		t.Fatal(err)
	}

	garbage := dialWorker(ctx, t, h, "n5", "garbage")

	answerPcap(ctx, good, workerPcap(t, base, []pktSpec{{"a/x", 0}, {"a/x", time.Millisecond}}))
	answerPcap(ctx, garbage, []byte("this is not a capture file"))
	go func() {
		var req wire.PcapRequest
		if failing.Expect(ctx, wire.TypePcapRequest, &req) == nil {
			failing.Send(wire.TypePcapEnd, wire.PcapEnd{ID: req.ID, Error: "store closed"})
		}
	}()
	stalledReq := make(chan wire.PcapRequest, 1)
	go func() {
		var req wire.PcapRequest
		if stalled.Expect(ctx, wire.TypePcapRequest, &req) == nil {
			stalledReq <- req
		}
	}()
	go func() {
		if leaving.Expect(ctx, wire.TypePcapRequest, nil) == nil {
			leaving.Close()
		}
	}()
	resp, body := getPcap(ctx, t, h, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
	}
	if got := readPcap(t, body, base); len(got) != 2 {
		t.Errorf("got %v, want the good worker's two packets", got)
	}
	errs := resp.Trailer.Get("X-Shark-Errors")
	if n := strings.Count(errs, "worker "); n != 4 {
		t.Errorf("X-Shark-Errors %q names %d workers, want 4", errs, n)
	}
	for _, want := range []string{"worker failing: store closed", "worker stalled: sent nothing for 300ms", "worker leaving: disconnected", "worker garbage: not a pcap or pcapng capture"} {
		if !strings.Contains(errs, want) {
			t.Errorf("X-Shark-Errors %q does not say %q", errs, want)
		}
	}
	// The stalled worker was told to stop.
	req := <-stalledReq
	var cancel wire.PcapCancel
	if err := stalled.Expect(ctx, wire.TypePcapCancel, &cancel); err != nil || cancel.ID != req.ID {
		t.Errorf("stalled worker: cancel %+v, %v; want id %s", cancel, err, req.ID)
	}
}

// TestPcapFollow checks that a follow export streams packets as they come
// and that the worker is told to stop when the client leaves.
func TestPcapFollow(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	base := time.Now().Truncate(time.Millisecond)
	w := dialWorker(ctx, t, h, "n1", "w1")
	rctx, stop := context.WithCancel(ctx)
	resp, err := h.Do(rctx, http.MethodGet, wire.PathPcap, url.Values{"follow": {"1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var req wire.PcapRequest
	if err := w.Expect(ctx, wire.TypePcapRequest, &req); err != nil {
		t.Fatal(err)
	}
	if !req.Follow {
		t.Errorf("request %+v, want follow", req)
	}
	// Two packets and no end: the client sees them while the export goes on.
	data := workerPcap(t, base, []pktSpec{{"a/x", 0}, {"a/x", time.Millisecond}})
	if err := w.SendRaw(websocket.BinaryMessage, wire.AppendPcapChunk(nil, req.ID, data)); err != nil {
		t.Fatal(err)
	}
	src, err := capture.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		var p capture.Packet
		if err := src.Next(&p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	stop()
	resp.Body.Close()
	var cancel wire.PcapCancel
	if err := w.Expect(ctx, wire.TypePcapCancel, &cancel); err != nil || cancel.ID != req.ID {
		t.Errorf("cancel %+v, %v", cancel, err)
	}
}

// TestPcapLive checks that a live export asks for packets from now on,
// following, and nothing stored before.
func TestPcapLive(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	w := dialWorker(ctx, t, h, "n1", "w1")
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	before := time.Now()
	resp, err := h.Do(rctx, http.MethodGet, wire.PathPcap, url.Values{"live": {"true"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var req wire.PcapRequest
	if err := w.Expect(ctx, wire.TypePcapRequest, &req); err != nil {
		t.Fatal(err)
	}
	if !req.Follow || req.From.Before(before) || req.From.After(time.Now()) {
		t.Errorf("live request %+v, want follow from a time after %v", req, before)
	}
}

// TestPcapFollowJoins checks that a follow export takes the workers that
// connect after it started: a new node's, which sends what it has, and one
// that reconnected, which sends only what came after the packets already
// written from it.
func TestPcapFollowJoins(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	w1, err := h.DialWorker(ctx, wire.Hello{Node: "n1", Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	resp, err := h.Do(rctx, http.MethodGet, wire.PathPcap, url.Values{"follow": {"1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var req1 wire.PcapRequest
	if err := w1.Expect(ctx, wire.TypePcapRequest, &req1); err != nil {
		t.Fatal(err)
	}
	send := func(w *hubtest.Worker, id string, pkts []pktSpec) {
		t.Helper()
		if err := w.SendRaw(websocket.BinaryMessage, wire.AppendPcapChunk(nil, id, workerPcap(t, base, pkts))); err != nil {
			t.Fatal(err)
		}
	}
	send(w1, req1.ID, []pktSpec{{"a/x", 0}})
	src, err := capture.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		var p capture.Packet
		if err := src.Next(&p); err != nil {
			t.Fatal(err)
		}
		return src.Interfaces()[p.Interface].Name
	}
	if got := read(); got != "a/x" {
		t.Fatalf("first packet on %q, want a/x", got)
	}

	// A worker on a new node joins with the export's own request.
	w2 := dialWorker(ctx, t, h, "n2", "w2")
	var req2 wire.PcapRequest
	if err := w2.Expect(ctx, wire.TypePcapRequest, &req2); err != nil {
		t.Fatal(err)
	}
	if req2.ID != req1.ID || !req2.Follow || !req2.From.IsZero() {
		t.Errorf("new worker's request %+v, want that of the export (%+v)", req2, req1)
	}
	send(w2, req2.ID, []pktSpec{{"b/y", time.Millisecond}})
	if got := read(); got != "b/y" {
		t.Fatalf("new worker's packet on %q, want b/y", got)
	}

	// w1 reconnects: it is asked for what came after its last packet.
	w1.Close()
	w1, err = h.DialWorker(ctx, wire.Hello{Node: "n1", Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Close()
	var again wire.PcapRequest
	if err := w1.Expect(ctx, wire.TypePcapRequest, &again); err != nil {
		t.Fatal(err)
	}
	if want := base.Add(time.Nanosecond); again.ID != req1.ID || !again.From.Equal(want) {
		t.Errorf("reconnected worker's request %+v, want from %v", again, want)
	}
	send(w1, again.ID, []pktSpec{{"a/x", 2 * time.Millisecond}})
	if got := read(); got != "a/x" {
		t.Fatalf("reconnected worker's packet on %q, want a/x", got)
	}
}

// TestPcapWorkersByPod checks that an export of known pods asks only the
// workers of their nodes.
func TestPcapWorkersByPod(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	wa := dialWorker(ctx, t, h, "n1", "wa")
	wb := dialWorker(ctx, t, h, "n2", "wb")
	targets := wire.Targets{Targets: []wire.Target{{UID: "u1", Namespace: "shop", Name: "cart-1", Node: "n2"}}}
	if code, body := do(ctx, t, h, http.MethodPost, wire.PathTargets, targets); code != http.StatusOK {
		t.Fatalf("targets: %d %s", code, body)
	}
	empty := workerPcap(t, time.Now(), nil)
	reqB := answerPcap(ctx, wb, empty)
	resp, body := getPcap(ctx, t, h, url.Values{"pods": {"shop/cart-1"}})
	if resp.StatusCode != http.StatusOK || len(readPcap(t, body, time.Now())) != 0 {
		t.Fatalf("HTTP %d, %d bytes", resp.StatusCode, len(body))
	}
	if req := <-reqB; !cmp.Equal(req.Pods, []string{"shop/cart-1"}) {
		t.Errorf("worker on n2 got %+v", req)
	}
	// The next request worker a sees is the one for every pod.
	reqA := answerPcap(ctx, wa, empty)
	answerPcap(ctx, wb, empty)
	if resp, body := getPcap(ctx, t, h, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d %s", resp.StatusCode, body)
	}
	if req := <-reqA; len(req.Pods) != 0 {
		t.Errorf("worker on n1 first got %+v, want the request for every pod", req)
	}
}

func TestPcapBadRequests(t *testing.T) {
	ctx := testCtx(t)
	opts := hub.NewOptions()
	opts.MaxPcapExports = 1
	h := hubtest.Start(t, opts)
	if resp, body := getPcap(ctx, t, h, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no worker: HTTP %d %s, want 503", resp.StatusCode, body)
	}
	for _, q := range []url.Values{
		{"since": {"yesterday"}},
		{"since": {"-5m"}},
		{"from": {"12:00"}},
		{"pods": {"cart-1"}},
		{"pods": {"shop/cart/1"}},
		{"follow": {"maybe"}},
		{"live": {"maybe"}},
		{"live": {"true"}, "since": {"5m"}},
		{"flow": {"x"}, "a": {"10.0.0.1"}},
		{"a": {"10.0.0.1:1"}},
		{"flow": {"x"}, "transport": {"sctp"}},
	} {
		if resp, body := getPcap(ctx, t, h, q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%v: HTTP %d %s, want 400", q, resp.StatusCode, body)
		}
	}
	// One export at a time: a second one is refused while the first runs.
	w := dialWorker(ctx, t, h, "n1", "w1")
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	resp, err := h.Do(rctx, http.MethodGet, wire.PathPcap, url.Values{"follow": {"true"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := w.Expect(ctx, wire.TypePcapRequest, nil); err != nil {
		t.Fatal(err)
	}
	if resp, body := getPcap(ctx, t, h, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("second export: HTTP %d %s, want 429", resp.StatusCode, body)
	}
}
