package assemble

import (
	"math"
	"net/netip"
	"time"
	"unsafe"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// The in-order fast path. Almost every segment of a healthy connection
// arrives exactly where its direction expects it, with nothing buffered:
// gopacket/reassembly then only hands it on, at the cost of its connection
// lookup, bookkeeping and scatter-gather. A new connection therefore starts
// here, outside gopacket/reassembly, and replays what gopacket/reassembly
// would do for such segments (the first segment of a direction, in-order
// data, retransmissions and overlaps of what came, FIN, RST, segments on a
// closed half, idle close). The first segment that lies ahead of where its
// direction expects it (a hole: data to queue) hands the connection over: it is seeded into gopacket/reassembly at the
// sequence numbers it expects, which then owns it to its end. Observable
// behaviour (data, gaps, ends and their reasons and times, counting, flow
// limits, stats) is the same as with gopacket/reassembly alone; the
// differential tests and FuzzFastPathMatchesReassembly hold it to that.

// fastHalf is one direction of a connection on the fast path: what
// gopacket/reassembly's halfconnection would hold with nothing queued.
type fastHalf struct {
	started bool   // a segment set the expected sequence number
	closed  bool   // FIN or RST delivered, or closed as idle
	next    uint32 // the expected sequence number, once started
}

// lookup finds the connection of f, either way, and whether f is from A.
// The connection of the previous segment is tried first: segments come in
// runs of one connection (a response of many segments), and a map lookup
// is most of a fast-path segment's cost.
func (a *Assembler) lookup(src, dst netip.AddrPort) (*tcpStream, bool) {
	if s := a.lastConn; s != nil {
		if s.key.src == src && s.key.dst == dst {
			return s, true
		}
		if s.key.src == dst && s.key.dst == src {
			return s, false
		}
	}
	if s := a.conns[flowKey{src, dst}]; s != nil {
		a.lastConn = s
		return s, true
	}
	if s := a.conns[flowKey{dst, src}]; s != nil {
		a.lastConn = s
		return s, false
	}
	return nil, false
}

// forget drops s from the connection table once it is over (gopacket's
// StreamPool drops its connection at the same point).
func (a *Assembler) forget(s *tcpStream) {
	if a.lastConn == s {
		a.lastConn = nil
	}
	if a.conns[s.key] == s {
		delete(a.conns, s.key)
	}
}

// tcpPayload returns the payload of seg as gopacket's TCP decoder finds
// it, and false where the decoder fails (a segment it rejects is ignored
// altogether). It is not always the frame's Payload: a frame copied
// without its payload (see OnCounted) keeps only the length of that.
func tcpPayload(seg []byte) ([]byte, bool) {
	if len(seg) < 20 {
		return nil, false
	}
	off := int(seg[12]>>4) * 4
	if off < 20 || off > len(seg) {
		return nil, false
	}
	return seg[off:], true
}

// framePayload returns f's TCP payload as tcpPayload finds it in
// f.Segment, without reading the header again when it can: on a shard,
// that read was the first touch of the packet, a cache miss on every pure
// ACK. Frames come from capture.Decoder, which set f.Payload to the
// segment's tail past a valid header: an empty one, or one that is still
// that tail, is the answer. (A frame copied without its payload, see
// OnCounted, has neither.)
func framePayload(f *capture.Frame) ([]byte, bool) {
	seg, p := f.Segment, f.Payload
	switch {
	case len(seg) < 20:
		return nil, false
	case len(p) == 0:
		return p, true
	case len(p) <= len(seg)-20 && unsafe.SliceData(p) == unsafe.SliceData(seg[len(seg)-len(p):]):
		return p, true
	}
	return tcpPayload(seg)
}

// fastSegment handles a segment of s, a fast-path connection, and reports
// true; it reports false, having changed nothing, when the segment needs
// gopacket/reassembly (the caller hands s over): one that lies ahead of the
// expected sequence number, which it would queue. It follows
// reassembly.(*Assembler).AssembleWithContext for a connection with nothing
// queued.
func (a *Assembler) fastSegment(s *tcpStream, fromA bool, f *capture.Frame, payload []byte) bool {
	h := &s.halves[side(fromA)]
	syn, fin, rst := f.Flags&flagSYN != 0, f.Flags&flagFIN != 0, f.Flags&flagRST != 0
	diff := 0
	if h.started && !h.closed && !syn {
		if diff = seqDiff(h.next, f.Seq); diff > 0 {
			return false
		}
	}
	s.accept(fromA, f.Seq, len(payload), syn, rst, f.Timestamp)
	if h.closed || (syn && h.started) {
		return true // a closed half, or a SYN on a synchronised one: ignored
	}
	seq := f.Seq
	switch {
	case !h.started && syn:
		seq++ // the SYN takes the first sequence number
	case diff < 0:
		// A retransmission or an overlap. The receiver drops an RST, or a
		// FIN, that lies before what it has: it does not end the stream.
		if rst || (fin && seqDiff(h.next, seq+uint32(len(payload))) < 0) {
			return true
		}
		payload = payload[min(-diff, len(payload)):]
		seq = h.next
	}
	h.started = true
	h.next = seq + uint32(len(payload))
	s.fastData(fromA, payload, f.Timestamp)
	if fin {
		h.next++
	}
	if fin || rst {
		a.fastClose(s, h)
	}
	return true
}

// seqDiff is reassembly.Sequence.Difference: how far b lies after a,
// unwrapping one of them when they straddle the wrap of the sequence space.
func seqDiff(a, b uint32) int {
	const quarter = math.MaxUint32 / 4
	x, y := int64(a), int64(b)
	switch {
	case a > math.MaxUint32-quarter && b < quarter:
		y += 1 << 32
	case b > math.MaxUint32-quarter && a < quarter:
		x += 1 << 32
	}
	return int(y - x)
}

// fastData is ReassembledSG for a segment delivered in order, nothing
// skipped.
func (s *tcpStream) fastData(fromA bool, b []byte, ts time.Time) {
	if s.dropped || s.h == nil || s.ended || s.counting || len(b) == 0 {
		return
	}
	s.data(fromA, b, ts)
}

// fastClose closes one half; the connection completes once both are.
func (a *Assembler) fastClose(s *tcpStream, h *fastHalf) {
	h.closed = true
	if s.halves[0].closed && s.halves[1].closed {
		s.ReassemblyComplete(nil)
	}
}

// fastFlush closes the fast-path connections silent since before tc, as
// FlushWithOptions closes idle ones (nothing is queued to flush).
func (a *Assembler) fastFlush(tc time.Time) {
	for _, s := range a.conns {
		if s.fast && s.last.Before(tc) {
			a.fastCloseAll(s)
		}
	}
}

// fastCloseAll closes both halves of s (idle, or the end of the capture).
func (a *Assembler) fastCloseAll(s *tcpStream) {
	for d := range s.halves {
		if h := &s.halves[d]; !h.closed {
			a.fastClose(s, h)
		}
	}
}

// fastRelease drops a counted fast-path connection, as release drops one
// from gopacket/reassembly.
func (a *Assembler) fastRelease(s *tcpStream) {
	s.halves[0].closed, s.halves[1].closed = true, true
	s.released = true
	a.forget(s)
	// release stamps the shared context with the time of its RSTs, which
	// queued data of other connections then reports: do the same.
	a.ctx.ci.Timestamp = a.now
}

// handover moves s into gopacket/reassembly at the state the fast path
// left it in: each started direction is seeded with an empty segment at
// its expected sequence number (an RST if it is closed), A's first so that
// it is gopacket's client-to-server direction, at the connection's last
// packet time. Accept and ReassembledSG let the seeds through unseen, and
// the stream factory returns s itself for them.
func (a *Assembler) handover(s *tcpStream) {
	s.fast = false
	a.seeding = s
	defer func() { a.seeding = nil }()
	ends := [2]netip.AddrPort{s.flow.A, s.flow.B}
	for d, h := range s.halves {
		if !h.started {
			continue
		}
		var flags uint8
		if h.closed {
			flags = flagRST
		}
		a.inject(ends[d], ends[1-d], h.next, flags, s.last, &a.seedCtx)
	}
}
