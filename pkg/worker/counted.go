package worker

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// countedFlows is the set of TCP flows the pipeline only counts: no parser
// claimed them (assemble.Counter), so their payload bytes are never read.
// The shards add and remove flows (pipeline.Options.OnCounted); capture
// threads look packets up, through a cache that gen invalidates.
type countedFlows struct {
	mu  sync.RWMutex
	m   map[capture.Pair]struct{}
	gen atomic.Uint64 // bumped on every change
	n   atomic.Int64  // flows in m: with none, packets need no parsing
}

// set adds (on) or removes a flow.
func (c *countedFlows) set(a, b netip.AddrPort, on bool) {
	k := capture.PairOf(a, b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok == on {
		return
	}
	if on {
		if c.m == nil {
			c.m = make(map[capture.Pair]struct{})
		}
		c.m[k] = struct{}{}
	} else {
		delete(c.m, k)
	}
	c.n.Store(int64(len(c.m)))
	c.gen.Add(1)
}

func (c *countedFlows) has(k capture.Pair) bool {
	c.mu.RLock()
	_, ok := c.m[k]
	c.mu.RUnlock()
	return ok
}

// Bounds of a summarizer.
const (
	maxSummaryHeader = 60 + 60 // IPv4 with options and TCP with options
	maxSummaryCache  = 4096    // flows whose lookup a capture thread caches
	maxSummaries     = 256     // flows summarised at once per capture thread
)

// summarizer hands the in-order segments of counted flows to dissection as
// summaries: one packet, cut after its headers, whose IP length is the sum
// of their payloads (capture.Packet.Segments says how many). A bulk
// transfer of an unknown protocol then costs a capture thread a header
// parse and a lookup per packet, and the pipeline one packet per batch,
// instead of a copy of every packet and its trip through the pipeline.
// SYN, FIN and RST segments, fragments and segments out of order end the
// summary of their flow and go on whole, so that the assembler sees every
// flow's segments in order. One per capture thread; not safe for
// concurrent use.
type summarizer struct {
	flows *countedFlows
	gen   uint64
	cache map[capture.Pair]bool // lookups made since gen
	open  map[capture.Pair]*summary
	order []*summary // open summaries, oldest first
	free  []*summary
	// last is the flow of the previous packet: a bulk transfer's packets
	// come in runs, which then skip the map lookups.
	last struct {
		valid   bool
		gen     uint64
		key     capture.Pair
		counted bool
		sum     *summary // its open summary, if known
	}
}

func newSummarizer(flows *countedFlows) *summarizer {
	return &summarizer{flows: flows, cache: make(map[capture.Pair]bool), open: make(map[capture.Pair]*summary)}
}

// summary is one flow's open summaries, one per direction.
type summary struct {
	key  capture.Pair
	dirs [2]sumDir // [0]: from key.Lo
}

// sumDir is the in-order segments of one direction since the summary
// opened.
type sumDir struct {
	active bool
	hdr    [maxSummaryHeader]byte // the first segment's IP and TCP headers
	hlen   int
	ipLen  int // the IP header's length (IPv4), or 0 for IPv6
	seq    uint32
	n      int // payload bytes
	segs   int // segments with payload
	ts     time.Time
}

// tcpHeaders is what summarising needs of a packet.
type tcpHeaders struct {
	src, dst netip.AddrPort
	seq      uint32
	flags    uint8
	hlen     int // IP and TCP headers
	ipLen    int // IPv4 header length; 0 for IPv6
	payload  int // payload bytes by the IP header
}

// parseTCP reads the headers of a raw IP packet; ok is false for anything
// not summarised: not TCP, fragments, IPv6 extension headers, headers the
// capture cut, lengths that do not add up.
func parseTCP(b []byte) (h tcpHeaders, ok bool) {
	if len(b) < 20 {
		return h, false
	}
	var tcp []byte
	var total int
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) << 2
		total = int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || b[9] != capture.IPProtoTCP || binary.BigEndian.Uint16(b[6:])&0x3fff != 0 || len(b) < ihl {
			return h, false
		}
		h.src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:16])), 0)
		h.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[16:20])), 0)
		h.ipLen = ihl
		tcp = b[ihl:]
	case 6:
		if len(b) < 40 || b[6] != capture.IPProtoTCP {
			return h, false
		}
		total = 40 + int(binary.BigEndian.Uint16(b[4:]))
		h.src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), 0)
		h.dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), 0)
		tcp = b[40:]
	default:
		return h, false
	}
	if len(tcp) < 20 {
		return h, false
	}
	off := int(tcp[12]>>4) << 2
	h.hlen = len(b) - len(tcp) + off
	if off < 20 || off > len(tcp) || h.hlen > maxSummaryHeader || total < h.hlen {
		return h, false
	}
	h.src = netip.AddrPortFrom(h.src.Addr(), binary.BigEndian.Uint16(tcp))
	h.dst = netip.AddrPortFrom(h.dst.Addr(), binary.BigEndian.Uint16(tcp[2:]))
	h.seq = binary.BigEndian.Uint32(tcp[4:])
	h.flags = tcp[13]
	h.payload = total - h.hlen
	return h, true
}

// counted reports whether k is a counted flow, through the cache.
func (s *summarizer) counted(k capture.Pair) bool {
	if g := s.flows.gen.Load(); g != s.gen {
		s.gen = g
		clear(s.cache)
	}
	on, ok := s.cache[k]
	if !ok {
		if len(s.cache) >= maxSummaryCache {
			clear(s.cache)
		}
		on = s.flows.has(k)
		s.cache[k] = on
	}
	return on
}

// emitFunc queues one summary packet for dissection.
type emitFunc func(p *capture.Packet)

// take reports whether p was summarised: its bytes are then not needed for
// dissection. A packet it does not take goes to dissection whole, after
// the summaries of its flow, which take emits first.
func (s *summarizer) take(p *capture.Packet, emit emitFunc) bool {
	if s.flows.n.Load() == 0 && len(s.order) == 0 {
		return false
	}
	h, ok := parseTCP(p.Data)
	if !ok {
		return false
	}
	k, on := s.lookup(h.src, h.dst)
	if !on {
		return false
	}
	sum := s.last.sum
	if sum == nil {
		sum = s.open[k]
		s.last.sum = sum
	}
	if h.flags&(capture.TCPSyn|capture.TCPFin|capture.TCPRst) != 0 {
		if sum != nil {
			s.close(sum, emit)
		}
		if h.flags&capture.TCPSyn != 0 {
			// A new connection on the ports of a counted one: its bytes
			// are needed to detect its protocol. The shard removes the
			// old flow again when it ends, to no effect.
			s.flows.set(h.src, h.dst, false)
		}
		return false
	}
	if sum == nil {
		if len(s.order) >= maxSummaries {
			s.close(s.order[0], emit)
		}
		sum = s.get(k)
	}
	d := &sum.dirs[0]
	if h.src != k.Lo {
		d = &sum.dirs[1]
	}
	if d.active && (h.seq != d.seq+uint32(d.n) || d.hlen+d.n+h.payload > 0xffff) {
		s.emitDir(d, emit) // out of order, or the IP length is full
	}
	if !d.active {
		d.active = true
		d.hlen, d.ipLen = copy(d.hdr[:], p.Data[:h.hlen]), h.ipLen
		d.seq, d.n, d.segs = h.seq, 0, 0
	}
	d.n += h.payload
	if h.payload > 0 {
		d.segs++
	}
	d.ts = p.Timestamp
	return true
}

func (s *summarizer) get(k capture.Pair) *summary {
	var sum *summary
	if n := len(s.free); n > 0 {
		sum, s.free = s.free[n-1], s.free[:n-1]
	} else {
		sum = new(summary)
	}
	sum.key = k
	s.open[k] = sum
	s.order = append(s.order, sum)
	s.last.sum = sum
	return sum
}

// lookup returns the flow of a packet from src to dst and whether it is
// counted, from the last packet's when it is the same flow.
func (s *summarizer) lookup(src, dst netip.AddrPort) (capture.Pair, bool) {
	l := &s.last
	g := s.flows.gen.Load()
	if l.valid && l.gen == g && (src == l.key.Lo && dst == l.key.Hi || src == l.key.Hi && dst == l.key.Lo) {
		return l.key, l.counted
	}
	k := capture.PairOf(src, dst)
	on := s.counted(k)
	l.valid, l.gen, l.key, l.counted, l.sum = true, g, k, on, nil
	return k, on
}

// close emits sum's directions and forgets it.
func (s *summarizer) close(sum *summary, emit emitFunc) {
	s.retire(sum, emit)
	for i, o := range s.order {
		if o == sum {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// flush emits every open summary, oldest first: the batch they belong to
// is about to be queued.
func (s *summarizer) flush(emit emitFunc) {
	for _, sum := range s.order {
		s.retire(sum, emit)
	}
	clear(s.order)
	s.order = s.order[:0]
}

// retire emits sum's directions and frees it; the caller takes it out of
// order.
func (s *summarizer) retire(sum *summary, emit emitFunc) {
	s.last.sum = nil
	for i := range sum.dirs {
		s.emitDir(&sum.dirs[i], emit)
	}
	delete(s.open, sum.key)
	s.free = append(s.free, sum)
}

// emitDir emits d as one packet: its first segment's headers, with the IP
// length of all its payload.
func (s *summarizer) emitDir(d *sumDir, emit emitFunc) {
	if !d.active {
		return
	}
	d.active = false
	hdr := d.hdr[:d.hlen]
	if d.ipLen > 0 {
		binary.BigEndian.PutUint16(hdr[2:], uint16(d.hlen+d.n))
	} else {
		binary.BigEndian.PutUint16(hdr[4:], uint16(d.hlen-40+d.n))
	}
	p := capture.Packet{
		Timestamp: d.ts,
		Length:    d.hlen + d.n,
		LinkType:  capture.LinkRaw,
		Data:      hdr,
		Segments:  d.segs,
	}
	emit(&p)
}
