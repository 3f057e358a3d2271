package assemble

import (
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"
)

type streamFactory struct{ a *Assembler }

// New is called by gopacket/reassembly for the first packet of a connection
// it does not know: one past the flow limit (the fast path takes the
// others), or one handed over by the fast path.
func (sf *streamFactory) New(nf, _ gopacket.Flow, t *layers.TCP, ac reassembly.AssemblerContext) reassembly.Stream {
	a := sf.a
	if s := a.seeding; s != nil {
		return s
	}
	src := netip.AddrPortFrom(addrOf(nf.Src()), uint16(t.SrcPort))
	dst := netip.AddrPortFrom(addrOf(nf.Dst()), uint16(t.DstPort))
	ci := ac.GetCaptureInfo()
	s := a.newStream(src, dst, t.SYN, t.ACK, ci.Timestamp, ci.InterfaceIndex)
	a.conns[s.key] = s
	a.lastConn = nil
	return s
}

// newStream starts tracking a connection from its first packet, or refuses
// it past MaxFlows (the stream then only absorbs its packets until idle).
func (a *Assembler) newStream(src, dst netip.AddrPort, syn, ack bool, ts time.Time, iface int) *tcpStream {
	if a.live >= a.opts.MaxFlows {
		a.stats.FlowsDropped++
		a.evictIfCrowded()
		return &tcpStream{a: a, key: flowKey{src, dst}, dropped: true}
	}
	a.live++
	a.stats.TCPFlows++
	f := a.newFlow("tcp", src, dst, ts, iface)
	switch {
	case syn && !ack:
		f.Opener = OpenerA
	case syn && ack:
		f.Opener = OpenerB
	}
	s := &tcpStream{a: a, key: flowKey{src, dst}, flow: f, live: true, last: ts}
	s.h = s.safeNew()
	s.counter, _ = s.h.(Counter)
	return s
}

// evictIfCrowded keeps refused connections from piling up in the stream
// pool (they stay there until idle): past twice the flow limit it closes
// every connection silent for a second.
func (a *Assembler) evictIfCrowded() {
	if a.stats.FlowsDropped%1024 == 0 {
		a.flushTCP(a.now.Add(-time.Second), a.now.Add(-time.Second))
	}
}

func addrOf(e gopacket.Endpoint) netip.Addr {
	a, _ := netip.AddrFromSlice(e.Raw())
	return a
}

// tcpStream adapts one connection to a Handler. A handler that panics is
// dropped with its flow, and counted; the capture goes on.
type tcpStream struct {
	a       *Assembler
	key     flowKey // its ends, A first
	flow    *Flow
	h       Handler
	dropped bool // refused past MaxFlows, or its handler panicked
	live    bool // counted in Assembler.live
	ended   bool
	rst     bool
	last    time.Time // last packet seen, either way

	// Counting: the handler gave up on the bytes (Counter), so the
	// assembler only counts them; see count.go.
	counter  Counter // the handler, if it is a Counter
	counting bool
	released bool    // gopacket/reassembly has dropped the connection
	closed   [2]bool // counting: FIN or RST seen from A, from B
	seqs     seqTrack

	// The in-order fast path (fast.go): while fast, the connection is not
	// in gopacket/reassembly, and halves hold its state.
	fast   bool
	halves [2]fastHalf // [0] from A
}

func (s *tcpStream) safeNew() (h Handler) {
	defer s.recover()
	return s.a.newHandler(s.flow)
}

func (s *tcpStream) recover() {
	if r := recover(); r != nil {
		s.a.stats.Panics++
		s.dropped = true
	}
}

func (s *tcpStream) Accept(t *layers.TCP, ci gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	if s.a.releasing == s {
		return s.acceptRelease(t, nextSeq, start)
	}
	if s.a.seeding == s {
		*start = true // a handover seed: state the fast path has seen already
		return true
	}
	s.accept(dir == reassembly.TCPDirClientToServer, t.Seq, len(t.Payload), t.SYN, t.RST, ci.Timestamp)
	// Pick up connections that were open before the capture started: the
	// first segment seen starts the stream.
	*start = true
	return true
}

// accept notes a segment of the connection, whatever becomes of it.
func (s *tcpStream) accept(fromA bool, seq uint32, n int, syn, rst bool, ts time.Time) {
	if rst {
		s.rst = true
	}
	if ts.After(s.last) {
		s.last = ts
	}
	s.seqs.observe(side(fromA), seq, n, syn)
}

func (s *tcpStream) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) {
	if s.dropped || s.h == nil || s.ended || s.counting || s.a.seeding == s {
		return
	}
	dir, _, _, skip := sg.Info()
	fromA := dir == reassembly.TCPDirClientToServer
	if skip > 0 {
		s.a.stats.Gaps++
		s.a.stats.GapBytes += uint64(skip)
		s.gap(fromA, skip)
	}
	n, _ := sg.Lengths()
	if n == 0 || s.dropped {
		return
	}
	s.data(fromA, sg.Fetch(n), sg.CaptureInfo(0).Timestamp)
}

func (s *tcpStream) data(fromA bool, b []byte, ts time.Time) {
	defer s.recover()
	s.h.Data(fromA, b, ts)
	if s.counter != nil && s.counter.Counting() {
		s.counting = true
		s.a.startCounting(s, s.counter)
	}
}

func (s *tcpStream) count(fromA bool, n, pkts int, ts time.Time) {
	defer s.recover()
	s.counter.Count(fromA, n, pkts, ts)
}

func (s *tcpStream) gap(fromA bool, n int) {
	defer s.recover()
	s.h.Gap(fromA, n)
}

// ReassemblyComplete is called once both directions are closed (FIN, RST,
// idle timeout or the end of the capture).
func (s *tcpStream) ReassemblyComplete(_ reassembly.AssemblerContext) bool {
	s.a.forget(s) // true below: gopacket/reassembly drops the connection
	if s.counting && !s.a.closing {
		// gopacket/reassembly closes the connection as idle, having
		// seen none of its counted packets: counting goes on.
		s.released = true
		return true
	}
	if s.counting {
		s.released = true
		s.a.endCounted(s)
		return true
	}
	s.complete()
	return true
}

// complete ends the flow once: both directions closed (FIN, RST), idle
// timeout or the end of the capture.
func (s *tcpStream) complete() {
	if s.live {
		s.live = false
		s.a.live--
	}
	if s.ended || s.dropped || s.h == nil {
		return
	}
	s.ended = true
	reason := EndFIN
	switch {
	case s.rst:
		reason = EndRST
	case s.a.closing:
		reason = EndEOF
	case s.a.now.Sub(s.last) >= s.a.opts.TCPIdle:
		reason = EndTimeout
	}
	s.end(reason)
}

func (s *tcpStream) end(reason string) {
	defer s.recover()
	s.h.End(s.a.now, reason)
}
