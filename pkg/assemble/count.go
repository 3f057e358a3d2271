package assemble

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// Counter is implemented by a Handler that may stop wanting a TCP flow's
// bytes, when no parser claimed it: once Counting reports true (it is
// asked after every Data call), the assembler stops reassembling the flow
// and hands Count the size of each later packet's new payload instead. The
// flow still ends with End, as it would have: FIN or RST from both sides,
// idle timeout, or the end of the capture. Bulk transfers of unknown
// protocols then cost a map lookup per packet instead of reassembly.
type Counter interface {
	Counting() bool
	// Count adds n new payload bytes from one side, carried by pkts
	// segments.
	Count(fromA bool, n, pkts int, ts time.Time)
}

// TCP flags in capture.Frame.Flags.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagACK = 0x10
)

type flowKey struct{ src, dst netip.AddrPort }

// seqTrack follows the sequence numbers seen in each direction, so that a
// counted flow counts retransmitted bytes once and the bytes filling a hole
// when they come (one hole at a time is tracked; past that, counts are
// approximate).
type seqTrack struct {
	dirs [2]seqDir // [0] from A
}

type seqDir struct {
	seen    bool
	next    uint32 // the end of the bytes seen without a hole
	ooo     bool   // bytes past a hole: [oooFrom, oooTo)
	oooFrom uint32
	oooTo   uint32
}

// after reports whether sequence number a lies after b (RFC 1982).
func after(a, b uint32) bool { return int32(a-b) > 0 }

// observe records a segment of direction d and returns how many of its
// payload bytes are new.
func (t *seqTrack) observe(d int, seq uint32, n int, syn bool) int {
	if syn {
		seq++ // the SYN takes the first sequence number
	}
	s := &t.dirs[d]
	end := seq + uint32(n)
	switch {
	case !s.seen:
		s.seen, s.next = true, end
		return n
	case !after(end, s.next):
		return 0 // a retransmission
	case !after(seq, s.next):
		// In order: it extends the bytes seen, perhaps up to those past
		// the hole, which were counted already.
		fresh := int(end - s.next)
		s.next = end
		if s.ooo && !after(s.oooFrom, s.next) {
			if after(s.next, s.oooFrom) {
				fresh -= int(min(end, s.oooTo) - s.oooFrom)
			}
			if after(s.oooTo, s.next) {
				s.next = s.oooTo
			}
			s.ooo = false
		}
		return fresh
	case s.ooo && !after(seq, s.oooTo) && !after(s.oooFrom, seq):
		// Past the hole, extending what is there.
		fresh := 0
		if after(end, s.oooTo) {
			fresh = int(end - s.oooTo)
			s.oooTo = end
		}
		return fresh
	}
	// Past the hole, elsewhere: counted, and remembered as the bytes past it.
	s.ooo, s.oooFrom, s.oooTo = true, seq, end
	return n
}

// countFrame handles a frame of a flow that is only counted. It reports
// false when the frame is of no counted flow. Only the frame's TCP fields
// and the length of its payload are read: a caller told of the flow by
// OnCounted may hand frames whose payload bytes are not the packet's, or
// frames cut after their headers that stand for several segments (see
// payloadLen).
func (a *Assembler) countFrame(f *capture.Frame) bool {
	src := netip.AddrPortFrom(f.Src, f.SrcPort)
	dst := netip.AddrPortFrom(f.Dst, f.DstPort)
	fromA := true
	s := a.counting[flowKey{src, dst}]
	if s == nil {
		if s = a.counting[flowKey{dst, src}]; s == nil {
			return false
		}
		fromA = false
	}
	a.stats.TCPSegments++
	if f.Timestamp.After(s.last) {
		s.last = f.Timestamp
	}
	d := side(fromA)
	if n := s.seqs.observe(d, f.Seq, payloadLen(f), f.Flags&flagSYN != 0); n > 0 && !s.dropped {
		s.count(fromA, n, max(f.Segments, 1), f.Timestamp)
	}
	if f.Flags&flagRST != 0 {
		s.rst = true
		s.closed[d] = true
	}
	if f.Flags&flagFIN != 0 {
		s.closed[d] = true
	}
	if s.closed[0] && s.closed[1] {
		a.endCounted(s)
	}
	return true
}

// payloadLen is the length on the wire of f's payload: a frame the capture
// cut counts whole (PayloadLen), so a live capture may hand a counted
// flow's segments as their headers alone, several in order as one.
func payloadLen(f *capture.Frame) int {
	return max(len(f.Payload), f.PayloadLen)
}

func side(fromA bool) int {
	if fromA {
		return 0
	}
	return 1
}

// startCounting takes s out of reassembly: its later packets are counted.
func (a *Assembler) startCounting(s *tcpStream, c Counter) {
	s.counter = c
	a.counting[flowKey{s.flow.A, s.flow.B}] = s
	if a.counted != nil {
		a.counted(s.flow.A, s.flow.B, true)
	}
}

// endCounted ends a counted flow and makes gopacket/reassembly drop its
// connection, which has seen none of the flow's later packets.
func (a *Assembler) endCounted(s *tcpStream) {
	delete(a.counting, flowKey{s.flow.A, s.flow.B})
	if a.counted != nil {
		a.counted(s.flow.A, s.flow.B, false)
	}
	s.complete()
	if !s.released {
		a.release(s)
	}
}

// release closes both halves of s's connection in gopacket/reassembly with
// an empty RST each way, at the sequence number it expects (Accept sets it).
func (a *Assembler) release(s *tcpStream) {
	if s.fast {
		a.fastRelease(s)
		return
	}
	a.releasing = s
	defer func() { a.releasing = nil }()
	ends := [2]netip.AddrPort{s.flow.A, s.flow.B}
	for d := range 2 {
		if s.released {
			// The first RST closed the connection (its other half had
			// closed before counting began): a second one would open a
			// new connection on the same ports.
			return
		}
		// Accept puts the RST at the expected sequence number.
		a.inject(ends[d], ends[1-d], 0, flagRST, a.now, &a.ctx)
	}
}

// inject hands gopacket/reassembly an empty segment from one end to the
// other, made up rather than captured: release's RSTs and handover's
// seeds. The header is decoded, not filled in, so that the flow key comes
// from the raw ports as for a captured segment.
func (a *Assembler) inject(from, to netip.AddrPort, seq uint32, flags uint8, ts time.Time, ctx *assemblerContext) {
	var hdr [20]byte
	binary.BigEndian.PutUint16(hdr[0:], from.Port())
	binary.BigEndian.PutUint16(hdr[2:], to.Port())
	binary.BigEndian.PutUint32(hdr[4:], seq)
	hdr[12] = 5 << 4
	hdr[13] = flags
	if a.seg.DecodeFromBytes(hdr[:], gopacket.NilDecodeFeedback) != nil {
		return // cannot happen: the header is well formed
	}
	ctx.ci.Timestamp = ts
	a.tcp.AssembleWithContext(netFlow(from.Addr(), to.Addr()), &a.seg, ctx)
}

// acceptRelease is Accept for the RSTs of release: they land exactly at
// nextSeq, so that the receiver-side checks take them.
func (s *tcpStream) acceptRelease(t *layers.TCP, nextSeq reassembly.Sequence, start *bool) bool {
	if nextSeq >= 0 {
		t.Seq = uint32(nextSeq)
	}
	*start = true
	return true
}

// expireCounted ends the counted flows silent since before.
func (a *Assembler) expireCounted(before time.Time) {
	for _, s := range a.counting {
		if s.last.Before(before) {
			a.endCounted(s)
		}
	}
}

// closeCounted ends every counted flow: the capture is over.
func (a *Assembler) closeCounted() {
	for _, s := range a.counting {
		a.endCounted(s)
	}
}
