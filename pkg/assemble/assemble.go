// Package assemble turns decoded frames into flows: in-order TCP byte streams
// (on gopacket/reassembly) and UDP datagram flows, each handed to a Handler.
//
// An Assembler is one shard and is not safe for concurrent use: the pipeline
// runs one per core and routes every packet of a flow to the same shard by a
// symmetric hash. Time is packet time (the capture's timestamps), so offline
// runs are deterministic and timeouts behave the same live and from a file.
// Memory is bounded: out-of-order bytes per connection and per shard, and the
// number of flows; past a bound, data is skipped (a Gap) or the flow is
// dropped, and both are counted.
package assemble

import (
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// Handler receives the traffic of one flow. fromA says which side sent the
// bytes: A is the sender of the first packet the capture saw.
type Handler interface {
	// Data delivers the next in-order bytes of a TCP direction.
	Data(fromA bool, data []byte, ts time.Time)
	// Gap reports n bytes of a TCP direction that were never seen.
	Gap(fromA bool, n int)
	// Datagram delivers one UDP payload.
	Datagram(fromA bool, data []byte, ts time.Time)
	// End closes the flow: reason is one of the End* constants.
	End(ts time.Time, reason string)
}

// Reasons a flow ends.
const (
	EndFIN     = "fin"
	EndRST     = "rst"
	EndTimeout = "timeout"
	EndEOF     = "eof" // the capture ended first
)

// Opener tells which side opened a TCP connection, when the capture saw it.
type Opener uint8

const (
	OpenerUnknown Opener = iota // started before the capture
	OpenerA
	OpenerB
)

// Flow describes one flow for its Handler.
type Flow struct {
	Transport string // "tcp" or "udp"
	A, B      netip.AddrPort
	Opener    Opener
	// ID is stable for the same traffic: a hash of both ends and the first
	// packet's time.
	ID    string
	First time.Time
	// Interface is the capture interface of the flow's first packet: in
	// the worker, the pod network namespace it was captured in.
	Interface int
}

// NewHandler builds the Handler of a new flow.
type NewHandler func(f *Flow) Handler

// Options bound the assembler. Zero values take the defaults.
type Options struct {
	MaxConnBufferBytes  int           // out-of-order bytes buffered per connection
	MaxTotalBufferBytes int           // out-of-order bytes buffered per shard
	MaxFlows            int           // live flows per shard; new ones past it are dropped
	TCPIdle             time.Duration // a connection silent this long is closed
	UDPIdle             time.Duration // a UDP flow silent this long is closed
	GapWait             time.Duration // how long out-of-order data waits for a hole to fill
}

// pageSize is gopacket/reassembly's page payload size.
const pageSize = 1900

// WithDefaults fills in the zero fields.
func (o Options) WithDefaults() Options {
	if o.MaxConnBufferBytes <= 0 {
		o.MaxConnBufferBytes = 1 << 20
	}
	if o.MaxTotalBufferBytes <= 0 {
		o.MaxTotalBufferBytes = 32 << 20
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = 65536
	}
	if o.TCPIdle <= 0 {
		o.TCPIdle = 2 * time.Minute
	}
	if o.UDPIdle <= 0 {
		o.UDPIdle = 30 * time.Second
	}
	if o.GapWait <= 0 {
		o.GapWait = 2 * time.Second
	}
	return o
}

// Stats count what one shard saw and what it had to give up.
type Stats struct {
	TCPSegments  uint64
	UDPDatagrams uint64
	TCPFlows     uint64
	UDPFlows     uint64
	FlowsDropped uint64 // flows refused past MaxFlows
	Gaps         uint64 // holes in TCP streams (loss, or a buffer cap hit)
	GapBytes     uint64
	Panics       uint64 // handler panics: the flow was dropped
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.TCPSegments += o.TCPSegments
	s.UDPDatagrams += o.UDPDatagrams
	s.TCPFlows += o.TCPFlows
	s.UDPFlows += o.UDPFlows
	s.FlowsDropped += o.FlowsDropped
	s.Gaps += o.Gaps
	s.GapBytes += o.GapBytes
	s.Panics += o.Panics
}

// Assembler is one shard of flow tracking.
type Assembler struct {
	opts       Options
	newHandler NewHandler
	tcp        *reassembly.Assembler
	udp        map[udpKey]*udpFlow
	live       int // live TCP flows
	now        time.Time
	nextFlush  time.Time // a second after the last flush
	closing    bool      // Close is flushing: flows end with EndEOF
	stats      Stats

	counting  map[flowKey]*tcpStream // TCP flows only counted, by their A→B ends
	releasing *tcpStream             // the stream release is closing in gopacket/reassembly
	seeding   *tcpStream             // the stream handover is moving into gopacket/reassembly
	conns     map[flowKey]*tcpStream // TCP connections, fast or in gopacket/reassembly, by their A→B ends
	lastConn  *tcpStream             // the connection lookup found last, if still in conns
	noFast    bool                   // tests: every connection goes through gopacket/reassembly
	counted   func(a, b netip.AddrPort, on bool)

	// Reused per packet so the hot path does not allocate.
	seg     layers.TCP
	ctx     assemblerContext
	seedCtx assemblerContext // handover's, so that ctx keeps the packet's
}

// New returns an Assembler that builds a Handler for every new flow.
func New(opts Options, newHandler NewHandler) *Assembler {
	a := &Assembler{
		opts:       opts.WithDefaults(),
		newHandler: newHandler,
		udp:        make(map[udpKey]*udpFlow),
		counting:   make(map[flowKey]*tcpStream),
		conns:      make(map[flowKey]*tcpStream),
	}
	pool := reassembly.NewStreamPool(&streamFactory{a: a})
	a.tcp = reassembly.NewAssembler(pool)
	a.tcp.MaxBufferedPagesPerConnection = a.opts.MaxConnBufferBytes/pageSize + 1
	a.tcp.MaxBufferedPagesTotal = a.opts.MaxTotalBufferBytes/pageSize + 1
	return a
}

// OnCounted sets f to be told when a TCP flow starts (on) and stops being
// only counted (see Counter), with its ends: a caller that copies frames
// for the assembler may then copy only the headers of that flow's
// packets, whose payload bytes are no longer read. Call it before Frame.
func (a *Assembler) OnCounted(f func(a, b netip.AddrPort, on bool)) { a.counted = f }

// Stats returns the shard's counters.
func (a *Assembler) Stats() Stats { return a.stats }

// Frame processes one decoded frame.
func (a *Assembler) Frame(f *capture.Frame) {
	if f.Timestamp.After(a.now) {
		a.now = f.Timestamp
		// Timeouts apply before the packet: a connection idle past its
		// timeout is closed before a new one on the same ports begins.
		a.flush()
	}
	switch f.Proto {
	case capture.IPProtoTCP:
		a.frameTCP(f)
	case capture.IPProtoUDP:
		a.frameUDP(f)
	}
}

func (a *Assembler) frameTCP(f *capture.Frame) {
	if len(a.counting) > 0 && a.countFrame(f) {
		return
	}
	payload, ok := framePayload(f)
	if !ok {
		return
	}
	src := netip.AddrPortFrom(f.Src, f.SrcPort)
	dst := netip.AddrPortFrom(f.Dst, f.DstPort)
	s, fromA := a.lookup(src, dst)
	if s == nil && !a.noFast && a.live < a.opts.MaxFlows {
		s, fromA = a.newStream(src, dst, f.Flags&flagSYN != 0, f.Flags&flagACK != 0, f.Timestamp, f.Interface), true
		s.fast = true
		a.conns[s.key] = s
		a.lastConn = nil
	}
	// gopacket/reassembly reads the capture info of queued data through
	// this context when it delivers it, so the context must hold the
	// latest packet's, whichever path takes the packet.
	a.ctx.ci = gopacket.CaptureInfo{Timestamp: f.Timestamp, CaptureLength: f.WireLen, Length: f.WireLen, InterfaceIndex: f.Interface}
	if s != nil && s.fast {
		if a.fastSegment(s, fromA, f, payload) {
			a.stats.TCPSegments++
			return
		}
		a.handover(s)
	}
	if err := a.seg.DecodeFromBytes(f.Segment, gopacket.NilDecodeFeedback); err != nil {
		return
	}
	a.stats.TCPSegments++
	a.tcp.AssembleWithContext(netFlow(f.Src, f.Dst), &a.seg, &a.ctx)
}

// Tick closes idle flows and flushes data stuck behind holes, as of now (a
// packet time, or the wall clock when live). Call it about once a second.
func (a *Assembler) Tick(now time.Time) {
	if now.After(a.now) {
		a.now = now
	}
	a.flush()
}

// flush runs the timeouts at most once a second (of packet time).
func (a *Assembler) flush() {
	// Before rather than Sub: this runs for almost every packet, and Sub
	// guards against overflow at some cost.
	if a.now.Before(a.nextFlush) {
		return
	}
	a.nextFlush = a.now.Add(time.Second)
	a.flushTCP(a.now.Add(-a.opts.GapWait), a.now.Add(-a.opts.TCPIdle))
	a.expireCounted(a.now.Add(-a.opts.TCPIdle))
	a.expireUDP(a.now.Add(-a.opts.UDPIdle))
}

// flushTCP flushes data older than t past its holes and closes the
// connections silent since before tc.
func (a *Assembler) flushTCP(t, tc time.Time) {
	a.tcp.FlushWithOptions(reassembly.FlushOptions{T: t, TC: tc})
	a.fastFlush(tc)
}

// Close ends every flow: the capture is over.
func (a *Assembler) Close() {
	a.closing = true
	a.tcp.FlushAll()
	for _, s := range a.conns {
		if s.fast {
			a.fastCloseAll(s)
		}
	}
	a.closeCounted()
	for k, u := range a.udp {
		u.end(a, a.now, EndEOF)
		delete(a.udp, k)
	}
}

func (a *Assembler) newFlow(transport string, src, dst netip.AddrPort, ts time.Time, iface int) *Flow {
	return &Flow{
		Transport: transport,
		A:         src,
		B:         dst,
		ID:        flowID(transport, src, dst, ts),
		First:     ts,
		Interface: iface,
	}
}

// flowID hashes both ends and the first packet's time, so that the same
// capture always yields the same ids.
func flowID(transport string, src, dst netip.AddrPort, ts time.Time) string {
	h := fnv.New64a()
	h.Write([]byte(transport))
	b, _ := src.MarshalBinary()
	h.Write(b)
	b, _ = dst.MarshalBinary()
	h.Write(b)
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(ts.UnixNano()))
	h.Write(t[:])
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], h.Sum64())
	return hex.EncodeToString(sum[:])
}

func netFlow(src, dst netip.Addr) gopacket.Flow {
	if src.Is4() && dst.Is4() {
		s, d := src.As4(), dst.As4()
		return gopacket.NewFlow(layers.EndpointIPv4, s[:], d[:])
	}
	s, d := src.As16(), dst.As16()
	return gopacket.NewFlow(layers.EndpointIPv6, s[:], d[:])
}

type assemblerContext struct{ ci gopacket.CaptureInfo }

func (c *assemblerContext) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }
