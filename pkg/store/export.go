package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// Query selects packets to export. Zero fields do not restrict.
type Query struct {
	// Pods names the interfaces (namespace/pod) to export.
	Pods []string
	// From and To bound packet times, inclusive.
	From, To time.Time
	// Flow selects the packets of one flow.
	Flow *Flow
	// Format is the output format; default pcapng.
	Format Format
}

// Flow identifies a flow the way an entry shows it: the dashboard's
// "download the pcap of this flow" passes the entry's flow_id, src and dst.
//
// The store finds the packet of the flow's two ends whose id, computed as
// pkg/assemble computes Flow.ID (see FlowID), equals ID: that is the flow's
// first packet. It exports from there to the flow's end: a new connection
// between the same ends (a SYN after both FINs or a RST), or silence longer
// than the assembler's idle timeouts (TCP 2 min, UDP 30 s). When ID is
// empty, or its first packet has already left the ring, it exports every
// packet between the two ends in [From, To].
type Flow struct {
	ID string
	// Transport is "tcp", "udp", or empty for either.
	Transport string
	// A and B are the two ends, in either order.
	A, B netip.AddrPort
}

// Idle timeouts of pkg/assemble's defaults: a flow silent this long ended.
const (
	tcpIdle = 2 * time.Minute
	udpIdle = 30 * time.Second
)

// ExportStats describe one export.
type ExportStats struct {
	Packets  uint64
	Bytes    uint64
	Segments int      // segment files read
	Pods     []string // interfaces written, in order
	// FlowFound says Flow.ID named a first packet still in the store.
	FlowFound bool
}

// ErrBadQuery wraps errors about a query.
var ErrBadQuery = errors.New("bad store query")

// Export writes the packets q selects to w, in capture order per segment.
// It reads a snapshot: packets written meanwhile may or may not be in it.
func (s *Store) Export(ctx context.Context, w io.Writer, q Query) (ExportStats, error) {
	var st ExportStats
	m, err := newMatcher(q)
	if err != nil {
		return st, err
	}
	out, err := NewWriter(w, q.Format)
	if err != nil {
		return st, fmt.Errorf("%w: %v", ErrBadQuery, err)
	}
	files, err := s.snapshot(q, m)
	if err != nil {
		return st, err
	}
	defer func() {
		for _, f := range files {
			f.f.Close()
		}
	}()
	st.Segments = len(files)
	e := &exporter{ctx: ctx, m: m, out: out, ids: map[ifaceKey]int{}, st: &st}
	if q.Flow != nil && m.flowID != 0 {
		start, err := e.findFlowStart(files)
		if err != nil {
			return st, err
		}
		m.start = start
		st.FlowFound = start >= 0
	}
	if err := e.scan(files, e.emit); err != nil {
		return st, err
	}
	if err := out.Flush(); err != nil {
		return st, err
	}
	return st, nil
}

// segFile is a segment opened for reading, up to size; ifaces are its
// interfaces in file order.
type segFile struct {
	f      *os.File
	size   int64
	ifaces []capture.Interface
}

// snapshot opens the segments that may hold matching packets. Open files
// stay readable after eviction removes them.
func (s *Store) snapshot(q Query, m *matcher) ([]segFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		if err := s.cur.w.Flush(); err != nil {
			s.fail(err)
		}
	}
	if s.opts.TTL > 0 {
		if oldest := s.opts.Now().Add(-s.opts.TTL); m.from.IsZero() || m.from.Before(oldest) {
			m.from = oldest
		}
	}
	var ids map[int]bool
	if len(q.Pods) > 0 {
		ids = map[int]bool{}
		for id, iface := range s.ifaces {
			if m.pods[iface.Name] {
				ids[id] = true
			}
		}
	}
	from, to := m.from, m.to
	if m.flowID != 0 {
		to = time.Time{} // the flow may run past To
	}
	all := s.segs
	if s.cur != nil {
		all = append(all[:len(all):len(all)], s.cur)
	}
	var files []segFile
	for _, seg := range all {
		if !seg.overlaps(from, to) || !seg.hasPod(ids) || (m.flow && !m.inBloom(seg.flows)) {
			continue
		}
		f, err := os.Open(seg.path)
		if err != nil {
			for _, o := range files {
				o.f.Close()
			}
			return nil, fmt.Errorf("store: %w", err)
		}
		ifaces := make([]capture.Interface, len(seg.order))
		for i, id := range seg.order {
			ifaces[i] = s.ifaces[id]
		}
		files = append(files, segFile{f: f, size: seg.size, ifaces: ifaces})
	}
	return files, nil
}

// matcher holds a query's compiled predicates.
type matcher struct {
	pods     map[string]bool // nil: all
	from, to time.Time
	flow     bool
	proto    uint8 // 0: either
	a, b     netip.AddrPort
	keys     []uint64 // index keys of the flow, per possible transport
	flowID   uint64   // 0: no id given
	start    int64    // ordinal of the flow's first packet among its ends' packets; -1 none
}

func newMatcher(q Query) (*matcher, error) {
	m := &matcher{from: q.From, to: q.To, start: -1}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return nil, fmt.Errorf("%w: time range ends before it starts", ErrBadQuery)
	}
	if len(q.Pods) > 0 {
		m.pods = make(map[string]bool, len(q.Pods))
		for _, p := range q.Pods {
			m.pods[p] = true
		}
	}
	if q.Flow == nil {
		return m, nil
	}
	f := q.Flow
	if !f.A.IsValid() || !f.B.IsValid() {
		return nil, fmt.Errorf("%w: a flow needs both ends (ip:port)", ErrBadQuery)
	}
	switch f.Transport {
	case "tcp":
		m.proto = capture.IPProtoTCP
	case "udp":
		m.proto = capture.IPProtoUDP
	case "":
	default:
		return nil, fmt.Errorf("%w: transport %q (want tcp or udp)", ErrBadQuery, f.Transport)
	}
	if f.ID != "" {
		b, err := hex.DecodeString(f.ID)
		if err != nil || len(b) != 8 {
			return nil, fmt.Errorf("%w: flow id %q is not 16 hex digits", ErrBadQuery, f.ID)
		}
		m.flowID = binary.BigEndian.Uint64(b)
	}
	m.flow = true
	m.a, m.b = unmapEnd(f.A), unmapEnd(f.B)
	for _, proto := range []uint8{capture.IPProtoTCP, capture.IPProtoUDP} {
		if m.proto == 0 || m.proto == proto {
			m.keys = append(m.keys, tupleKey(proto, m.a.Addr(), m.a.Port(), m.b.Addr(), m.b.Port()))
		}
	}
	return m, nil
}

func (m *matcher) inBloom(b bloom) bool {
	for _, k := range m.keys {
		if b.has(k) {
			return true
		}
	}
	return false
}

func unmapEnd(e netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(e.Addr().Unmap(), e.Port())
}

// ends reports whether f travels between the flow's two ends.
func (m *matcher) ends(f *capture.Frame) bool {
	if m.proto != 0 && f.Proto != m.proto {
		return false
	}
	src, dst := netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort)
	return (src == m.a && dst == m.b) || (src == m.b && dst == m.a)
}

func (m *matcher) inTime(ts time.Time) bool {
	return (m.from.IsZero() || !ts.Before(m.from)) && (m.to.IsZero() || !ts.After(m.to))
}

// exporter streams matching packets into one writer.
type exporter struct {
	ctx context.Context
	m   *matcher
	out PacketWriter
	ids map[ifaceKey]int
	st  *ExportStats
	dec *capture.Decoder
	fr  capture.Frame

	// Flow state while emitting from the first packet on.
	ordinal int64
	end     flowEnd
	done    bool
}

// visit sees every packet of the files with its interface; decoded says
// fr holds its TCP/UDP frame.
type visit func(p *capture.Packet, iface capture.Interface, decoded bool) (stop bool, err error)

func (e *exporter) scan(files []segFile, fn visit) error {
	e.dec = capture.NewDecoder(capture.DecoderOptions{MaxFragmentBytes: -1})
	e.ordinal = 0
	var p capture.Packet
	for _, sf := range files {
		src, err := capture.NewReader(io.NewSectionReader(sf.f, 0, sf.size))
		if err != nil {
			return fmt.Errorf("store: reading %s: %w", sf.f.Name(), err)
		}
		for n := 0; ; n++ {
			if n%1024 == 0 && e.ctx.Err() != nil {
				return e.ctx.Err()
			}
			err := src.Next(&p)
			if err == io.EOF || errors.Is(err, capture.ErrTruncated) {
				break
			}
			if err != nil {
				return fmt.Errorf("store: reading %s: %w", sf.f.Name(), err)
			}
			if p.Interface < 0 || p.Interface >= len(sf.ifaces) {
				continue
			}
			decoded := e.m.flow && e.dec.Decode(&p, &e.fr)
			stop, err := fn(&p, sf.ifaces[p.Interface], decoded)
			if err != nil || stop {
				return err
			}
		}
	}
	return nil
}

// findFlowStart returns the ordinal, among the packets between the flow's
// ends, of the one whose flow id is the query's, or -1.
func (e *exporter) findFlowStart(files []segFile) (int64, error) {
	start := int64(-1)
	err := e.scan(files, func(p *capture.Packet, _ capture.Interface, decoded bool) (bool, error) {
		if !decoded || !e.m.ends(&e.fr) {
			return false, nil
		}
		if flowHash(&e.fr) == e.m.flowID {
			start = e.ordinal
			return true, nil
		}
		e.ordinal++
		return false, nil
	})
	return start, err
}

// emit writes p when the query selects it.
func (e *exporter) emit(p *capture.Packet, iface capture.Interface, decoded bool) (bool, error) {
	m := e.m
	if m.flow {
		if !decoded || !m.ends(&e.fr) {
			return false, nil
		}
		k := e.ordinal
		e.ordinal++
		if m.start >= 0 {
			if k < m.start {
				return false, nil
			}
			if k > m.start && e.end.ended(&e.fr) {
				return true, nil
			}
			e.end.see(&e.fr, k == m.start)
		} else if !m.inTime(p.Timestamp) {
			return false, nil
		}
	} else if !m.inTime(p.Timestamp) {
		return false, nil
	}
	if m.pods != nil && !m.pods[iface.Name] {
		return false, nil
	}
	return false, e.write(p, iface)
}

func (e *exporter) write(p *capture.Packet, iface capture.Interface) error {
	key := ifaceKey{iface.Name, iface.LinkType}
	id, ok := e.ids[key]
	if !ok {
		var err error
		if id, err = e.out.AddInterface(iface); err != nil {
			return err
		}
		e.ids[key] = id
		e.st.Pods = append(e.st.Pods, iface.Name)
	}
	if err := e.out.WritePacket(id, p); err != nil {
		return err
	}
	e.st.Packets++
	e.st.Bytes += uint64(len(p.Data))
	return nil
}

// flowEnd tracks a flow from its first packet to find where it ends.
type flowEnd struct {
	tcp  bool
	a    netip.AddrPort // sender of the first packet
	fin  [2]bool
	rst  bool
	last time.Time
}

func (f *flowEnd) see(fr *capture.Frame, first bool) {
	if first {
		*f = flowEnd{tcp: fr.Proto == capture.IPProtoTCP, a: netip.AddrPortFrom(fr.Src, fr.SrcPort)}
	}
	if fr.Timestamp.After(f.last) {
		f.last = fr.Timestamp
	}
	if !f.tcp {
		return
	}
	dir := 0
	if netip.AddrPortFrom(fr.Src, fr.SrcPort) != f.a {
		dir = 1
	}
	if fr.Flags&capture.TCPFin != 0 {
		f.fin[dir] = true
	}
	if fr.Flags&capture.TCPRst != 0 {
		f.rst = true
	}
}

// ended reports whether fr belongs to a later flow between the same ends.
func (f *flowEnd) ended(fr *capture.Frame) bool {
	idle := udpIdle
	if f.tcp {
		idle = tcpIdle
	}
	if fr.Timestamp.Sub(f.last) >= idle {
		return true
	}
	closed := f.rst || (f.fin[0] && f.fin[1])
	return f.tcp && closed && fr.Flags&capture.TCPSyn != 0 && fr.Flags&capture.TCPAck == 0
}

// FlowID returns the flow id pkg/assemble gives a flow whose first packet
// went from src to dst at ts: FNV-1a over the transport name, both ends in
// netip binary form, and the time in nanoseconds, as 16 hex digits.
func FlowID(transport string, src, dst netip.AddrPort, ts time.Time) string {
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], flowSum(transport, src, dst, ts))
	return hex.EncodeToString(sum[:])
}

func flowHash(f *capture.Frame) uint64 {
	transport := "udp"
	if f.Proto == capture.IPProtoTCP {
		transport = "tcp"
	}
	return flowSum(transport, netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort), f.Timestamp)
}

func flowSum(transport string, src, dst netip.AddrPort, ts time.Time) uint64 {
	var buf [64]byte
	b := append(buf[:0], transport...)
	b, _ = src.AppendBinary(b)
	b, _ = dst.AppendBinary(b)
	b = binary.BigEndian.AppendUint64(b, uint64(ts.UnixNano()))
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	return h
}
