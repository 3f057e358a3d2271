package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// Pcap exports answer the hub's pcap-request with the packets of the store
// as one pcapng stream, cut into binary chunks of at most wire.MaxPcapChunk
// bytes. The hub grants credit: the export sends a chunk only when it has
// one, so a slow client holds the export (and its open segment files), not
// memory. A follow export sends the stored packets up to the moment it
// began, then the packets captured from then on, in one section, until
// the hub cancels it.

const (
	// followSettle lets the packets captured just before a follow export
	// began reach the store before it is read.
	followSettle = 200 * time.Millisecond
	// followFlush is how often a follow export sends what it has, so that
	// `wireshark -k -i -` shows packets as they come.
	followFlush = 250 * time.Millisecond
	// followQueue bounds the live batches waiting for a follow export
	// (their bytes are bounded by HubOptions.FollowBuffer).
	followQueue = 256
)

var errNoStore = errors.New("this worker keeps no packets (--no-store)")

// pcapExport is one export in progress.
type pcapExport struct {
	c      *hubConn
	req    wire.PcapRequest
	ctx    context.Context // ends on pcap-cancel or with the connection
	cancel context.CancelFunc
	credit atomic.Int64
	more   chan struct{} // a credit arrived
	buf    []byte        // the chunk being filled

	packets, bytes uint64
}

// startExport starts answering a pcap-request.
func (c *hubConn) startExport(req wire.PcapRequest) {
	if req.ID == "" {
		c.l.opts.Logf("ignoring a pcap request without an id")
		return
	}
	ctx, cancel := context.WithCancel(c.ctx)
	x := &pcapExport{c: c, req: req, ctx: ctx, cancel: cancel, more: make(chan struct{}, 1)}
	x.credit.Store(int64(req.Credit))
	if len(req.ID) > wire.MaxIDLen {
		// Chunks could not carry the id: end the export at once.
		cancel()
		c.running.Go(func() { x.sendEnd(fmt.Errorf("export id of %d bytes, over %d", len(req.ID), wire.MaxIDLen)) })
		return
	}
	c.emu.Lock()
	if _, dup := c.exports[req.ID]; dup {
		c.emu.Unlock()
		cancel()
		c.l.opts.Logf("ignoring a second pcap request %q", req.ID)
		return
	}
	c.exports[req.ID] = x
	c.emu.Unlock()
	c.running.Go(x.run)
}

func (c *hubConn) export(id string) *pcapExport {
	c.emu.Lock()
	defer c.emu.Unlock()
	return c.exports[id]
}

// credit lets an export send more chunks.
func (c *hubConn) credit(cr wire.PcapCredit) {
	x := c.export(cr.ID)
	if x == nil || cr.Chunks <= 0 {
		return // ended already: credits in flight are expected
	}
	x.credit.Add(int64(cr.Chunks))
	select {
	case x.more <- struct{}{}:
	default:
	}
}

// cancelExport stops an export; it still ends with a pcap-end.
func (c *hubConn) cancelExport(id string) {
	if x := c.export(id); x != nil {
		x.cancel()
	}
}

// run exports, then ends the export with a pcap-end.
func (x *pcapExport) run() {
	defer func() {
		x.c.emu.Lock()
		delete(x.c.exports, x.req.ID)
		x.c.emu.Unlock()
	}()
	err := x.export()
	if err == nil {
		err = x.flushChunk()
	}
	x.sendEnd(err)
}

// sendEnd sends the pcap-end after the last chunk; an export the hub
// cancelled ends without an error.
func (x *pcapExport) sendEnd(err error) {
	defer x.cancel()
	end := wire.PcapEnd{ID: x.req.ID, Packets: x.packets, Bytes: x.bytes}
	if err != nil && x.ctx.Err() == nil {
		end.Error = err.Error()
	}
	b, merr := wire.Marshal(wire.TypePcapEnd, end)
	if merr != nil {
		return
	}
	x.c.sendPcap(x.c.ctx, pcapMsg{b: b})
}

func (c *hubConn) sendPcap(ctx context.Context, m pcapMsg) error {
	select {
	case c.pcapQ <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// export writes the requested packets into x.
func (x *pcapExport) export() error {
	q, err := queryOf(x.req)
	if err != nil {
		return err
	}
	st := x.c.l.opts.Store
	if x.req.Follow {
		return x.follow(q)
	}
	if st == nil {
		return errNoStore
	}
	es, err := st.Export(x.ctx, x, q)
	x.packets, x.bytes = es.Packets, es.Bytes
	return err
}

// queryOf converts a request to a store query.
func queryOf(req wire.PcapRequest) (store.Query, error) {
	q := store.Query{Pods: req.Pods, From: req.From, To: req.To}
	if f := req.Flow; f != nil {
		sf := &store.Flow{ID: f.ID, Transport: f.Transport}
		for _, end := range []struct {
			s  string
			ap *netip.AddrPort
		}{{f.A, &sf.A}, {f.B, &sf.B}} {
			if end.s == "" {
				continue
			}
			ap, err := netip.ParseAddrPort(end.s)
			if err != nil {
				return q, fmt.Errorf("bad flow end %q: want ip:port", end.s)
			}
			*end.ap = ap
		}
		q.Flow = sf
	}
	return q, nil
}

// Write implements io.Writer: it fills chunks and sends each full one.
func (x *pcapExport) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if x.buf == nil {
			x.buf = make([]byte, 0, wire.MaxPcapChunk)
		}
		k := min(wire.MaxPcapChunk-len(x.buf), len(p))
		x.buf = append(x.buf, p[:k]...)
		p = p[k:]
		if len(x.buf) == wire.MaxPcapChunk {
			if err := x.flushChunk(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flushChunk sends the chunk being filled, once there is credit for it.
func (x *pcapExport) flushChunk() error {
	if len(x.buf) == 0 {
		return nil
	}
	for x.credit.Load() <= 0 {
		select {
		case <-x.more:
		case <-x.ctx.Done():
			return x.ctx.Err()
		}
	}
	x.credit.Add(-1)
	msg := wire.AppendPcapChunk(make([]byte, 0, 2+len(x.req.ID)+len(x.buf)), x.req.ID, x.buf)
	x.buf = x.buf[:0]
	return x.c.sendPcap(x.ctx, pcapMsg{binary: true, b: msg})
}

// follow sends the stored packets up to now, then live ones until the
// export is cancelled (or passes q.To).
func (x *pcapExport) follow(q store.Query) error {
	l := x.c.l
	tap, err := newFollowTap(q, time.Now(), l.opts.FollowBuffer)
	if err != nil {
		return err
	}
	l.addTap(tap)
	defer l.removeTap(tap)
	out, err := newLiveWriter(x)
	if err != nil {
		return err
	}
	if st := l.opts.Store; st != nil {
		if !sleepCtx(x.ctx, followSettle) {
			return x.ctx.Err()
		}
		if err := x.snapshot(st, q, tap.after, out); err != nil {
			return err
		}
	}
	if !q.To.IsZero() && !q.To.After(tap.after) {
		return out.ng.Flush()
	}
	err = x.live(tap, q.To, out)
	if n := tap.dropped.Load(); n > 0 {
		l.opts.Logf("pcap export %s: %d live packets dropped, the hub took them too slowly", x.req.ID, n)
	}
	return err
}

// liveWriter is the one pcapng section of a follow export.
type liveWriter struct {
	x   *pcapExport
	ng  *store.NgWriter
	ids map[capture.Interface]int
}

func newLiveWriter(x *pcapExport) (*liveWriter, error) {
	ng, err := store.NewNgWriter(x)
	if err != nil {
		return nil, err
	}
	return &liveWriter{x: x, ng: ng, ids: map[capture.Interface]int{}}, nil
}

func (w *liveWriter) write(iface capture.Interface, p *capture.Packet) error {
	id, ok := w.ids[iface]
	if !ok {
		var err error
		if id, err = w.ng.AddInterface(iface); err != nil {
			return err
		}
		w.ids[iface] = id
	}
	if err := w.ng.WritePacket(id, p); err != nil {
		return err
	}
	w.x.packets++
	w.x.bytes += uint64(len(p.Data))
	return nil
}

// snapshot copies the stored packets up to cut into the live section: the
// store writes a section of its own, which is read back here, so that the
// stream stays one section, and so that a flow, which the store follows
// past any time bound, stops at cut where the live packets take over.
func (x *pcapExport) snapshot(st PcapExporter, q store.Query, cut time.Time, out *liveWriter) error {
	if q.To.IsZero() || q.To.After(cut) {
		q.To = cut
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := st.Export(x.ctx, pw, q)
		pw.CloseWithError(err)
		done <- err
	}()
	err := copyUpTo(pr, cut, out)
	pr.CloseWithError(errors.New("export ended")) // unblocks the store if the copy failed
	if serr := <-done; err == nil {
		err = serr
	}
	return err
}

func copyUpTo(r io.Reader, cut time.Time, out *liveWriter) error {
	src, err := capture.NewReader(r)
	if err != nil {
		return err
	}
	var p capture.Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		ifaces := src.Interfaces()
		if p.Timestamp.After(cut) || p.Interface < 0 || p.Interface >= len(ifaces) {
			continue
		}
		if err := out.write(ifaces[p.Interface], &p); err != nil {
			return err
		}
	}
}

// live writes the tapped packets as they come, and sends them at least
// every followFlush.
func (x *pcapExport) live(tap *followTap, to time.Time, out *liveWriter) error {
	t := time.NewTicker(followFlush)
	defer t.Stop()
	for {
		select {
		case <-x.ctx.Done():
			return nil
		case lb := <-tap.ch:
			err := lb.writeTo(out)
			tap.held.Add(-int64(len(lb.data)))
			if err != nil {
				return err
			}
		case now := <-t.C:
			if err := out.ng.Flush(); err != nil {
				return err
			}
			if err := x.flushChunk(); err != nil {
				return err
			}
			if !to.IsZero() && now.After(to) {
				return nil
			}
		}
	}
}

// followTap selects the live packets of a follow export. offer runs on the
// worker's sink goroutine and never waits: what does not fit is dropped.
type followTap struct {
	pods  map[string]bool // nil: every pod
	flow  *store.Flow
	after time.Time // packets at or before it are the snapshot's
	limit int64

	dec *capture.Decoder // used by offer only
	fr  capture.Frame

	ch      chan *liveBatch
	held    atomic.Int64 // bytes queued
	dropped atomic.Uint64
}

func newFollowTap(q store.Query, after time.Time, limit int) (*followTap, error) {
	t := &followTap{flow: q.Flow, after: after, limit: int64(limit), ch: make(chan *liveBatch, followQueue)}
	if !q.From.IsZero() && q.From.After(after) {
		t.after = q.From.Add(-1)
	}
	if len(q.Pods) > 0 {
		t.pods = map[string]bool{}
		for _, p := range q.Pods {
			t.pods[p] = true
		}
	}
	if f := t.flow; f != nil {
		if !f.A.IsValid() || !f.B.IsValid() {
			return nil, errors.New("a flow needs both ends (ip:port)")
		}
		t.dec = capture.NewDecoder(capture.DecoderOptions{MaxFragmentBytes: -1})
	}
	return t, nil
}

// liveBatch holds copies of tapped packets of one interface.
type liveBatch struct {
	iface capture.Interface
	data  []byte
	pkts  []capture.Packet
}

func (b *liveBatch) writeTo(out *liveWriter) error {
	for i := range b.pkts {
		if err := out.write(b.iface, &b.pkts[i]); err != nil {
			return err
		}
	}
	return nil
}

// offer copies the packets the export wants.
func (t *followTap) offer(iface capture.Interface, pkts []capture.Packet) {
	if t.pods != nil && !t.pods[iface.Name] {
		return
	}
	var pick []int
	size := 0
	for i := range pkts {
		p := &pkts[i]
		if !p.Timestamp.After(t.after) || !t.inFlow(p) {
			continue
		}
		pick = append(pick, i)
		size += len(p.Data)
	}
	if len(pick) == 0 {
		return
	}
	if t.held.Add(int64(size)) > t.limit {
		t.held.Add(-int64(size))
		t.dropped.Add(uint64(len(pick)))
		return
	}
	b := &liveBatch{iface: iface, data: make([]byte, 0, size), pkts: make([]capture.Packet, 0, len(pick))}
	for _, i := range pick {
		p := pkts[i]
		off := len(b.data)
		b.data = append(b.data, p.Data...)
		p.Data = b.data[off:len(b.data):len(b.data)]
		b.pkts = append(b.pkts, p)
	}
	select {
	case t.ch <- b:
	default:
		t.held.Add(-int64(size))
		t.dropped.Add(uint64(len(pick)))
	}
}

// inFlow reports whether p travels between the flow's two ends.
func (t *followTap) inFlow(p *capture.Packet) bool {
	f := t.flow
	if f == nil {
		return true
	}
	if !t.dec.Decode(p, &t.fr) {
		return false
	}
	fr := &t.fr
	switch f.Transport {
	case "tcp":
		if fr.Proto != capture.IPProtoTCP {
			return false
		}
	case "udp":
		if fr.Proto != capture.IPProtoUDP {
			return false
		}
	}
	src := netip.AddrPortFrom(fr.Src.Unmap(), fr.SrcPort)
	dst := netip.AddrPortFrom(fr.Dst.Unmap(), fr.DstPort)
	a := netip.AddrPortFrom(f.A.Addr().Unmap(), f.A.Port())
	b := netip.AddrPortFrom(f.B.Addr().Unmap(), f.B.Port())
	return (src == a && dst == b) || (src == b && dst == a)
}

// AddInterface implements Sink: follow exports name live packets by their
// interface.
func (l *HubLink) AddInterface(iface capture.Interface) int {
	l.imu.Lock()
	defer l.imu.Unlock()
	for i, f := range l.ifaces {
		if f == iface {
			return i
		}
	}
	l.ifaces = append(l.ifaces, iface)
	return len(l.ifaces) - 1
}

// Write implements Sink: it hands packets to the follow exports in
// progress, and costs one atomic load when there is none.
func (l *HubLink) Write(id int, pkts []capture.Packet) {
	taps := *l.taps.Load()
	if len(taps) == 0 {
		return
	}
	l.imu.Lock()
	if id < 0 || id >= len(l.ifaces) {
		l.imu.Unlock()
		return
	}
	iface := l.ifaces[id]
	l.imu.Unlock()
	for _, t := range taps {
		t.offer(iface, pkts)
	}
}

func (l *HubLink) addTap(t *followTap) {
	l.imu.Lock()
	defer l.imu.Unlock()
	next := append(append([]*followTap(nil), *l.taps.Load()...), t)
	l.taps.Store(&next)
}

func (l *HubLink) removeTap(t *followTap) {
	l.imu.Lock()
	defer l.imu.Unlock()
	var next []*followTap
	for _, o := range *l.taps.Load() {
		if o != t {
			next = append(next, o)
		}
	}
	l.taps.Store(&next)
}
