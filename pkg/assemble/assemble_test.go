package assemble

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// recorder is a Handler that keeps what it is given.
type recorder struct {
	flow   *Flow
	data   [2]bytes.Buffer // [0] from A
	gaps   [2]int
	dgrams []string
	ended  string
	ends   int
}

func (r *recorder) Data(fromA bool, b []byte, _ time.Time) { r.data[idx(fromA)].Write(b) }
func (r *recorder) Gap(fromA bool, n int)                  { r.gaps[idx(fromA)] += n }
func (r *recorder) Datagram(fromA bool, b []byte, _ time.Time) {
	r.dgrams = append(r.dgrams, fmt.Sprintf("%v:%s", fromA, b))
}
func (r *recorder) End(_ time.Time, reason string) { r.ended = reason; r.ends++ }

func idx(fromA bool) int {
	if fromA {
		return 0
	}
	return 1
}

type harness struct {
	t     *testing.T
	asm   *Assembler
	flows []*recorder
	now   time.Time
}

func newHarness(t *testing.T, opts Options) *harness {
	h := &harness{t: t, now: time.Unix(1700000000, 0)}
	h.asm = New(opts, func(f *Flow) Handler {
		r := &recorder{flow: f}
		h.flows = append(h.flows, r)
		return r
	})
	return h
}

var (
	client = netip.MustParseAddrPort("10.0.0.1:40000")
	server = netip.MustParseAddrPort("10.0.0.2:80")
)

// seg plays a TCP segment from src to dst.
func (h *harness) seg(src, dst netip.AddrPort, seq, ack uint32, flags uint8, payload string) {
	f := h.frame(src, dst, seq, ack, flags, payload)
	h.asm.Frame(&f)
}

// frame builds a TCP segment from src to dst, a millisecond after the last.
func (h *harness) frame(src, dst netip.AddrPort, seq, ack uint32, flags uint8, payload string) capture.Frame {
	h.now = h.now.Add(time.Millisecond)
	hdr := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(hdr[0:], src.Port())
	binary.BigEndian.PutUint16(hdr[2:], dst.Port())
	binary.BigEndian.PutUint32(hdr[4:], seq)
	binary.BigEndian.PutUint32(hdr[8:], ack)
	hdr[12] = 5 << 4
	hdr[13] = flags
	binary.BigEndian.PutUint16(hdr[14:], 65535)
	segment := append(hdr, payload...)
	return capture.Frame{
		Timestamp: h.now, WireLen: len(segment) + 34,
		Src: src.Addr(), Dst: dst.Addr(), Proto: capture.IPProtoTCP,
		SrcPort: src.Port(), DstPort: dst.Port(),
		Segment: segment, Payload: segment[20:], PayloadLen: len(payload),
		Seq: seq, Ack: ack, Flags: flags,
	}
}

const (
	syn    = capture.TCPSyn
	synack = capture.TCPSyn | capture.TCPAck
	ack    = capture.TCPAck
	psh    = capture.TCPAck | capture.TCPPsh
	fin    = capture.TCPAck | capture.TCPFin
	rst    = capture.TCPRst
)

// handshake opens a connection with ISNs 1000 (client) and 5000 (server).
func (h *harness) handshake() {
	h.seg(client, server, 1000, 0, syn, "")
	h.seg(server, client, 5000, 1001, synack, "")
	h.seg(client, server, 1001, 5001, ack, "")
}

func (h *harness) only() *recorder {
	h.t.Helper()
	if len(h.flows) != 1 {
		h.t.Fatalf("got %d flows, want 1", len(h.flows))
	}
	return h.flows[0]
}

func TestInOrderWithFIN(t *testing.T) {
	h := newHarness(t, Options{})
	h.handshake()
	h.seg(client, server, 1001, 5001, psh, "GET / HTTP/1.1\r\n\r\n")
	h.seg(server, client, 5001, 1019, psh, "HTTP/1.1 200 OK\r\n\r\n")
	h.seg(client, server, 1019, 5020, fin, "")
	h.seg(server, client, 5020, 1020, fin, "")
	r := h.only()
	if got, want := r.data[0].String(), "GET / HTTP/1.1\r\n\r\n"; got != want {
		t.Errorf("client bytes = %q, want %q", got, want)
	}
	if got, want := r.data[1].String(), "HTTP/1.1 200 OK\r\n\r\n"; got != want {
		t.Errorf("server bytes = %q, want %q", got, want)
	}
	if r.ended != EndFIN || r.ends != 1 {
		t.Errorf("ended %q %d times, want fin once", r.ended, r.ends)
	}
	if r.flow.Opener != OpenerA || r.flow.A != client {
		t.Errorf("flow = %+v, want opened by A = client", r.flow)
	}
}

func TestOutOfOrderRetransmitOverlap(t *testing.T) {
	h := newHarness(t, Options{})
	h.handshake()
	// Segments: "abcde" "fghij" "klmno", sent 3, 1, 1 (retransmit), 2 with
	// an overlapping copy of part of 2 and 3.
	h.seg(client, server, 1011, 5001, psh, "klmno")
	h.seg(client, server, 1001, 5001, psh, "abcde")
	h.seg(client, server, 1001, 5001, psh, "abcde")
	h.seg(client, server, 1008, 5001, psh, "hijkl")
	h.seg(client, server, 1006, 5001, psh, "fghij")
	h.asm.Close()
	r := h.only()
	if got, want := r.data[0].String(), "abcdefghijklmno"; got != want {
		t.Errorf("reassembled %q, want %q", got, want)
	}
	if r.gaps[0] != 0 {
		t.Errorf("gaps = %d, want 0", r.gaps[0])
	}
	if r.ended != EndEOF {
		t.Errorf("ended %q, want eof", r.ended)
	}
}

func TestRandomOrderReassembles(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var want strings.Builder
	type piece struct {
		seq  uint32
		data string
	}
	var pieces []piece
	seq := uint32(1001)
	for i := 0; i < 200; i++ {
		d := strings.Repeat(string(rune('a'+i%26)), 1+rng.Intn(50))
		pieces = append(pieces, piece{seq, d})
		want.WriteString(d)
		seq += uint32(len(d))
	}
	// Shuffle within windows of 8, as real reordering is local.
	for i := 0; i+8 <= len(pieces); i += 8 {
		rng.Shuffle(8, func(a, b int) { pieces[i+a], pieces[i+b] = pieces[i+b], pieces[i+a] })
	}
	h := newHarness(t, Options{})
	h.handshake()
	for _, p := range pieces {
		h.seg(client, server, p.seq, 5001, psh, p.data)
	}
	h.asm.Close()
	if got := h.only().data[0].String(); got != want.String() {
		t.Errorf("reassembled %d bytes, want %d; first diff at %d", len(got), want.Len(), firstDiff(got, want.String()))
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRST(t *testing.T) {
	h := newHarness(t, Options{})
	h.handshake()
	h.seg(client, server, 1001, 5001, psh, "hello")
	h.seg(server, client, 5001, 1006, rst, "")
	h.seg(client, server, 1006, 5001, rst, "")
	r := h.only()
	if r.ended != EndRST {
		t.Errorf("ended %q, want rst", r.ended)
	}
}

func TestMidStreamPickup(t *testing.T) {
	h := newHarness(t, Options{})
	// No handshake: the capture starts in the middle of the connection.
	h.seg(server, client, 9000, 3000, psh, "tail of a response")
	h.seg(client, server, 3000, 9018, psh, "GET /next HTTP/1.1\r\n\r\n")
	h.asm.Close()
	r := h.only()
	if r.flow.Opener != OpenerUnknown || r.flow.A != server {
		t.Errorf("flow = %+v, want unknown opener, A = first sender", r.flow)
	}
	if got := r.data[1].String(); got != "GET /next HTTP/1.1\r\n\r\n" {
		t.Errorf("client bytes = %q", got)
	}
	if got := r.data[0].String(); got != "tail of a response" {
		t.Errorf("server bytes = %q", got)
	}
}

func TestHoleIsReportedAsGapAfterWait(t *testing.T) {
	h := newHarness(t, Options{GapWait: time.Second})
	h.handshake()
	h.seg(client, server, 1001, 5001, psh, "aaaa")
	h.seg(client, server, 1105, 5001, psh, "after the hole") // 100 bytes lost
	h.now = h.now.Add(3 * time.Second)
	h.asm.Tick(h.now)
	r := h.only()
	if got := r.data[0].String(); got != "aaaaafter the hole" {
		t.Errorf("bytes = %q", got)
	}
	if r.gaps[0] != 100 {
		t.Errorf("gap = %d, want 100", r.gaps[0])
	}
	if st := h.asm.Stats(); st.Gaps != 1 || st.GapBytes != 100 {
		t.Errorf("stats = %+v, want 1 gap of 100 bytes", st)
	}
}

func TestPerConnectionCapSkipsAndCounts(t *testing.T) {
	h := newHarness(t, Options{MaxConnBufferBytes: 4 * pageSize})
	h.handshake()
	// The first segment never comes; 20 later ones pile up past the cap.
	seq := uint32(1001 + 1000)
	for i := 0; i < 20; i++ {
		h.seg(client, server, seq, 5001, psh, strings.Repeat("x", 1000))
		seq += 1000
	}
	if st := h.asm.Stats(); st.Gaps == 0 {
		t.Errorf("stats = %+v: want a gap once the cap is hit, without waiting", st)
	}
	if got := h.only().data[0].Len(); got == 0 {
		t.Errorf("no bytes delivered past the cap")
	}
}

func TestIdleTimeoutCloses(t *testing.T) {
	h := newHarness(t, Options{TCPIdle: 10 * time.Second})
	h.handshake()
	h.seg(client, server, 1001, 5001, psh, "ping")
	h.now = h.now.Add(time.Minute)
	h.asm.Tick(h.now)
	r := h.only()
	if r.ended != EndTimeout || r.ends != 1 {
		t.Errorf("ended %q %d times, want timeout once", r.ended, r.ends)
	}
	// A closed flow is not ended twice at Close.
	h.asm.Close()
	if r.ends != 1 {
		t.Errorf("ended %d times", r.ends)
	}
}

func TestMaxFlowsDropsAndCounts(t *testing.T) {
	h := newHarness(t, Options{MaxFlows: 3})
	for i := 0; i < 10; i++ {
		c := netip.AddrPortFrom(client.Addr(), uint16(40000+i))
		h.seg(c, server, 1000, 0, syn, "")
	}
	if len(h.flows) != 3 {
		t.Errorf("handlers = %d, want 3", len(h.flows))
	}
	if st := h.asm.Stats(); st.FlowsDropped != 7 || st.TCPFlows != 3 {
		t.Errorf("stats = %+v, want 3 flows, 7 dropped", st)
	}
}

type panicky struct{ recorder }

func (p *panicky) Data(bool, []byte, time.Time) { panic("boom") }

func TestHandlerPanicDropsFlowOnly(t *testing.T) {
	var ends int
	asm := New(Options{}, func(f *Flow) Handler {
		if f.A.Port() == 1 {
			return &panicky{}
		}
		r := &recorder{flow: f}
		return &endCounter{recorder: r, n: &ends}
	})
	h := &harness{t: t, asm: asm, now: time.Unix(1, 0)}
	bad := netip.MustParseAddrPort("10.0.0.9:1")
	h.seg(bad, server, 1, 0, psh, "x")
	h.seg(bad, server, 2, 0, psh, "y")
	h.seg(client, server, 1, 0, psh, "fine")
	asm.Close()
	if st := asm.Stats(); st.Panics != 1 {
		t.Errorf("panics = %d, want 1", st.Panics)
	}
	if ends != 1 {
		t.Errorf("healthy flows ended = %d, want 1", ends)
	}
}

type endCounter struct {
	*recorder
	n *int
}

func (e *endCounter) End(ts time.Time, r string) { *e.n++; e.recorder.End(ts, r) }

func TestUDPFlows(t *testing.T) {
	h := newHarness(t, Options{UDPIdle: 5 * time.Second})
	dns := netip.MustParseAddrPort("10.0.0.53:53")
	udp := func(src, dst netip.AddrPort, payload string) {
		h.now = h.now.Add(time.Millisecond)
		f := capture.Frame{Timestamp: h.now, Src: src.Addr(), Dst: dst.Addr(), Proto: capture.IPProtoUDP,
			SrcPort: src.Port(), DstPort: dst.Port(), Payload: []byte(payload)}
		h.asm.Frame(&f)
	}
	udp(client, dns, "q1")
	udp(dns, client, "r1")
	udp(client, dns, "q2")
	h.now = h.now.Add(time.Minute)
	h.asm.Tick(h.now)
	r := h.only()
	if diff := cmp.Diff([]string{"true:q1", "false:r1", "true:q2"}, r.dgrams); diff != "" {
		t.Errorf("datagrams (-want +got):\n%s", diff)
	}
	if r.ended != EndTimeout {
		t.Errorf("ended %q, want timeout", r.ended)
	}
}

func TestFlowIDStable(t *testing.T) {
	ts := time.Unix(1700000000, 123)
	a := flowID("tcp", client, server, ts)
	if a != flowID("tcp", client, server, ts) || len(a) != 16 {
		t.Fatalf("flow id %q not stable", a)
	}
	if a == flowID("tcp", server, client, ts) || a == flowID("tcp", client, server, ts.Add(1)) {
		t.Errorf("flow id does not depend on ends and time")
	}
}

func BenchmarkInOrder(b *testing.B) {
	h := newHarness(&testing.T{}, Options{})
	payload := strings.Repeat("x", 1400)
	h.handshake()
	seq := uint32(1001)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		h.seg(client, server, seq, 5001, psh, payload)
		seq += uint32(len(payload))
	}
}
