package hub

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// pcapWindow is the credit of each worker in an export: the chunks it may
// have in flight. It bounds an export's memory in the hub to about
// (pcapWindow+1) * wire.MaxPcapChunk plus one capture reader buffer
// (1 MiB) per worker.
const pcapWindow = 4

// followFlush is how often a follow export flushes to the client, so that
// `wireshark -k -i -` shows packets as they come.
const followFlush = 250 * time.Millisecond

// errDisconnected ends the exports of a worker that left.
var errDisconnected = errors.New("disconnected")

// exportPart is one worker's share of an export. The worker's read pump
// delivers its chunks; the merge reads them through a partReader.
type exportPart struct {
	id     string
	w      *workerConn
	items  chan []byte
	credit atomic.Int64

	endOnce sync.Once
	ended   chan struct{} // closed by finish
	end     wire.PcapEnd  // set before ended is closed
	err     error         // likewise: why the part ended early
}

func newExportPart(id string, w *workerConn) *exportPart {
	p := &exportPart{id: id, w: w, items: make(chan []byte, pcapWindow), ended: make(chan struct{})}
	p.credit.Store(pcapWindow)
	return p
}

// finish ends the part once: with the worker's PcapEnd, or an error.
func (p *exportPart) finish(end wire.PcapEnd, err error) {
	p.endOnce.Do(func() {
		p.end, p.err = end, err
		if err == nil && end.Error != "" {
			p.err = errors.New(end.Error)
		}
		close(p.ended)
	})
}

// handleChunk routes a binary pcap chunk to its export.
func (w *workerConn) handleChunk(msg []byte) error {
	id, data, err := wire.ParsePcapChunk(msg)
	if err != nil {
		return err
	}
	w.mu.Lock()
	p := w.exports[id]
	w.mu.Unlock()
	if p == nil {
		return nil // cancelled or finished: chunks in flight are expected
	}
	if p.credit.Add(-1) < 0 {
		w.dropExport(p, errors.New("sent chunks over its credit"))
		return errors.New("pcap chunk over credit")
	}
	select {
	case p.items <- append([]byte(nil), data...):
	default: // cannot happen within the credit; never block the read pump
		w.dropExport(p, errors.New("overran its export queue"))
	}
	return nil
}

// endExport delivers a worker's PcapEnd.
func (w *workerConn) endExport(end wire.PcapEnd) {
	w.mu.Lock()
	p := w.exports[end.ID]
	delete(w.exports, end.ID)
	w.mu.Unlock()
	if p != nil {
		p.finish(end, nil)
	}
}

// dropExport ends a part early and tells the worker to stop.
func (w *workerConn) dropExport(p *exportPart, err error) {
	w.mu.Lock()
	_, ok := w.exports[p.id]
	delete(w.exports, p.id)
	w.mu.Unlock()
	p.finish(wire.PcapEnd{ID: p.id}, err)
	if ok {
		w.sendEnvelope(wire.TypePcapCancel, wire.PcapCancel{ID: p.id})
	}
}

// addExport registers p; false when the worker has left.
func (w *workerConn) addExport(p *exportPart) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gone {
		return false
	}
	w.exports[p.id] = p
	return true
}

// endExports fails every export in flight (the worker left), and refuses
// new ones.
func (w *workerConn) endExports(err error) {
	w.mu.Lock()
	parts := w.exports
	w.exports = map[string]*exportPart{}
	w.gone = true
	w.mu.Unlock()
	for _, p := range parts {
		p.finish(wire.PcapEnd{ID: p.id}, err)
	}
}

// partReader reads a part's chunks as one stream, and gives the worker a
// credit back for each chunk it takes.
type partReader struct {
	ctx   context.Context
	p     *exportPart
	cur   []byte
	stall time.Duration // 0: wait forever (follow)
	timer *time.Timer
	bytes int64
	err   error
}

func (r *partReader) Read(b []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	n := copy(b, r.cur)
	r.cur = r.cur[n:]
	r.bytes += int64(n)
	return n, nil
}

// next waits for the part's next chunk, its end, or a reason to give up.
func (r *partReader) next() error {
	var stall <-chan time.Time
	if r.stall > 0 {
		if r.timer == nil {
			r.timer = time.NewTimer(r.stall)
		} else {
			r.timer.Reset(r.stall)
		}
		stall = r.timer.C
	}
	select {
	case c := <-r.p.items:
		r.take(c)
		return nil
	default:
	}
	select {
	case c := <-r.p.items:
		r.take(c)
		return nil
	case <-r.p.ended:
		// Chunks delivered before the end are still queued.
		select {
		case c := <-r.p.items:
			r.take(c)
			return nil
		default:
		}
		if r.p.err != nil {
			return r.p.err
		}
		return io.EOF
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-stall:
		err := fmt.Errorf("sent nothing for %v", r.stall)
		r.p.w.dropExport(r.p, err)
		return err
	}
}

func (r *partReader) take(c []byte) {
	r.cur = c
	r.p.credit.Add(1)
	r.p.w.sendEnvelope(wire.TypePcapCredit, wire.PcapCredit{ID: r.p.id, Chunks: 1})
}

// export is one GET /v1/pcap in progress.
type export struct {
	h       *server
	ctx     context.Context
	cancel  context.CancelFunc // on a write error: the client is gone
	req     wire.PcapRequest
	parts   []*exportPart
	out     *store.NgWriter
	flush   func() error
	ifaces  map[ifaceKey]int
	packets uint64
	errs    []string

	// A follow export takes the workers that connect after it started (a
	// new node's, or one that reconnected): the registry queues them.
	joinMu  sync.Mutex
	joining []*workerConn
	joined  chan struct{} // signals joining
	started time.Time
	last    map[string]time.Time // per worker name: newest packet written
}

type ifaceKey struct {
	name string
	link capture.LinkType
}

// servePcap answers GET /v1/pcap?since=5m&pods=ns/a,ns/b&flow=ID&a=..&b=..
// (or live=1: from now on, following)
// with one pcapng stream merged from the workers: one section, one
// interface per pod (named namespace/pod), packets in time order (in
// arrival order with follow=1).
func (h *server) servePcap(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	req, err := parsePcapQuery(r, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case h.pcapSlots <- struct{}{}:
		defer func() { <-h.pcapSlots }()
	default:
		http.Error(w, "too many pcap exports in progress", http.StatusTooManyRequests)
		return
	}
	var workers []*workerConn
	h.do(func(reg *registry) { workers = reg.workersFor(req.Pods) })
	if len(workers) == 0 {
		http.Error(w, "no worker is connected", http.StatusServiceUnavailable)
		return
	}
	req.ID = h.newID("pcap")
	req.Credit = pcapWindow
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ex := &export{h: h, ctx: ctx, cancel: cancel, req: req, ifaces: map[ifaceKey]int{},
		joined: make(chan struct{}, 1), started: time.Now(), last: map[string]time.Time{}}
	if req.Follow {
		// Registered with the same look at the workers as the one that
		// chose them: none is missed, none asked twice.
		h.do(func(reg *registry) {
			workers = reg.workersFor(req.Pods)
			reg.follows[ex] = struct{}{}
		})
		defer h.do(func(reg *registry) { delete(reg.follows, ex) })
	}
	ex.start(workers)
	defer ex.stop()

	hdr := w.Header()
	hdr.Set("Content-Type", "application/x-pcapng")
	hdr.Set("Content-Disposition", `attachment; filename="shark-`+sanitizeName(h.opts.SessionID)+`.pcapng"`)
	hdr.Set("Trailer", "X-Shark-Packets, X-Shark-Errors")
	rc := http.NewResponseController(w)
	ex.flush = rc.Flush
	if ex.out, err = store.NewNgWriter(w); err != nil {
		return
	}
	h.metrics.pcapExports.Inc()
	if req.Follow {
		ex.follow()
	} else {
		ex.merge()
	}
	if err := ex.out.Flush(); err != nil {
		ex.fail(err)
	}
	hdr.Set("X-Shark-Packets", strconv.FormatUint(ex.packets, 10))
	hdr.Set("X-Shark-Errors", strings.Join(ex.errs, "; "))
	h.metrics.pcapPackets.Add(float64(ex.packets))
	h.log.Info("pcap export", "id", req.ID, "workers", len(workers), "packets", ex.packets, "errors", len(ex.errs))
}

func sanitizeName(s string) string {
	if s == "" {
		return "session"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// parsePcapQuery reads the export's parameters.
func parsePcapQuery(r *http.Request, now time.Time) (wire.PcapRequest, error) {
	var req wire.PcapRequest
	q := r.URL.Query()
	if s := q.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return req, fmt.Errorf("bad since %q: want a duration such as 5m", s)
		}
		req.From = now.Add(-d)
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &req.From}, {"to", &req.To}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return req, fmt.Errorf("bad %s %q: want an RFC 3339 time", p.name, s)
			}
			*p.t = t
		}
	}
	if s := q.Get("pods"); s != "" {
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			ns, name, ok := strings.Cut(p, "/")
			if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
				return req, fmt.Errorf("bad pod %q: want namespace/name", p)
			}
			req.Pods = append(req.Pods, p)
		}
	}
	flow, err := parseFlow(q.Get("flow"), q.Get("transport"), q.Get("a"), q.Get("b"))
	if err != nil {
		return req, err
	}
	req.Flow = flow
	if s := q.Get("follow"); s != "" {
		if req.Follow, err = strconv.ParseBool(s); err != nil {
			return req, fmt.Errorf("bad follow %q: want true or false", s)
		}
	}
	if s := q.Get("live"); s != "" {
		live, err := strconv.ParseBool(s)
		switch {
		case err != nil:
			return req, fmt.Errorf("bad live %q: want true or false", s)
		case live && !req.From.IsZero():
			return req, errors.New("live takes no since or from: it starts now")
		case live:
			// Packets from now on: nothing a running session stored.
			req.From, req.Follow = now, true
		}
	}
	return req, nil
}

func parseFlow(id, transport, a, b string) (*wire.PcapFlow, error) {
	if id == "" && a == "" && b == "" {
		return nil, nil
	}
	switch transport {
	case "", "tcp", "udp":
	default:
		return nil, fmt.Errorf("bad transport %q: want tcp or udp", transport)
	}
	for _, end := range []string{a, b} {
		if end == "" {
			continue
		}
		if _, err := netip.ParseAddrPort(end); err != nil {
			return nil, fmt.Errorf("bad flow end %q: want ip:port", end)
		}
	}
	if id == "" && (a == "" || b == "") {
		return nil, errors.New("a flow without an id needs both ends, a and b")
	}
	return &wire.PcapFlow{ID: id, Transport: transport, A: a, B: b}, nil
}

// start registers a part on each worker, then asks it for its packets.
func (ex *export) start(workers []*workerConn) {
	for _, w := range workers {
		ex.startPart(w, ex.req)
	}
}

func (ex *export) startPart(w *workerConn, req wire.PcapRequest) *exportPart {
	p := newExportPart(ex.req.ID, w)
	ex.parts = append(ex.parts, p)
	if !w.addExport(p) {
		p.finish(wire.PcapEnd{ID: p.id}, errDisconnected)
		return p
	}
	w.sendEnvelope(wire.TypePcapRequest, req)
	return p
}

// join queues a worker that connected after the export started. It runs
// in the registry loop, so it never blocks.
func (ex *export) join(w *workerConn) {
	ex.joinMu.Lock()
	ex.joining = append(ex.joining, w)
	ex.joinMu.Unlock()
	select {
	case ex.joined <- struct{}{}:
	default:
	}
}

// startJoined asks the queued workers for their packets. A worker seen
// before (it reconnected) sends what came after the newest packet already
// written from it, or after the export started, so nothing comes twice; a
// new one sends what the request asked for.
func (ex *export) startJoined(mu *sync.Mutex) []*exportPart {
	ex.joinMu.Lock()
	ws := ex.joining
	ex.joining = nil
	ex.joinMu.Unlock()
	var parts []*exportPart
	for _, w := range ws {
		req := ex.req
		mu.Lock()
		last, seen := ex.last[w.name]
		mu.Unlock()
		if !seen && ex.seen(w.name) {
			last, seen = ex.started, true
		}
		if seen && last.After(req.From) {
			req.From = last.Add(time.Nanosecond)
		}
		parts = append(parts, ex.startPart(w, req))
	}
	return parts
}

// seen reports whether a part of this export asked worker name before.
func (ex *export) seen(name string) bool {
	for _, p := range ex.parts {
		if p.w.name == name {
			return true
		}
	}
	return false
}

// stop cancels the parts still running.
func (ex *export) stop() { ex.stopParts() }

// stopParts cancels the parts still running.
func (ex *export) stopParts() {
	for _, p := range ex.parts {
		select {
		case <-p.ended:
		default:
			p.w.dropExport(p, errors.New("export ended"))
		}
	}
}

func (ex *export) fail(err error) {
	if len(ex.errs) < 16 {
		ex.errs = append(ex.errs, err.Error())
	}
	ex.h.log.Warn("pcap export", "id", ex.req.ID, "err", err)
}

// source is one worker's stream in the merge.
type source struct {
	r    *partReader
	src  capture.Source
	ids  []int // the source's interface index → output interface id
	pkt  capture.Packet
	name string
}

// open starts reading a part; a part that ended without a byte is empty,
// not an error.
func (ex *export) open(p *exportPart) (*source, error) {
	r := &partReader{ctx: ex.ctx, p: p}
	if !ex.req.Follow {
		r.stall = ex.h.opts.PcapStallTimeout
	}
	src, err := capture.NewReader(r)
	if err != nil {
		if r.bytes == 0 && errors.Is(r.err, io.EOF) {
			return nil, nil
		}
		if r.err != nil && !errors.Is(r.err, io.EOF) {
			err = r.err // the part's own error, not what the reader made of it
		}
		return nil, fmt.Errorf("worker %s: %w", p.w.name, err)
	}
	return &source{r: r, src: src, name: p.w.name}, nil
}

// next reads the source's next packet: false at its end (or on an error,
// which is recorded).
func (ex *export) next(s *source) bool {
	err := s.src.Next(&s.pkt)
	if err == nil {
		return true
	}
	if !errors.Is(err, io.EOF) && ex.ctx.Err() == nil {
		if s.r.err != nil && !errors.Is(s.r.err, io.EOF) {
			err = s.r.err // the part's own error, not what the reader made of it
		}
		ex.fail(fmt.Errorf("worker %s: %w", s.name, err))
	}
	return false
}

// write writes s's current packet, declaring its interface on first use.
// Interfaces of the same name and link type (a pod seen by two workers)
// share one output interface.
func (ex *export) write(s *source) error {
	i := s.pkt.Interface
	for len(s.ids) <= i {
		s.ids = append(s.ids, -1)
	}
	if s.ids[i] < 0 {
		ifaces := s.src.Interfaces()
		if i >= len(ifaces) {
			return fmt.Errorf("worker %s: packet of undeclared interface %d", s.name, i)
		}
		in := ifaces[i]
		k := ifaceKey{in.Name, in.LinkType}
		id, ok := ex.ifaces[k]
		if !ok {
			var err error
			if id, err = ex.out.AddInterface(in); err != nil {
				return err
			}
			ex.ifaces[k] = id
		}
		s.ids[i] = id
	}
	ex.packets++
	if ex.req.Follow && s.pkt.Timestamp.After(ex.last[s.name]) {
		ex.last[s.name] = s.pkt.Timestamp
	}
	return ex.out.WritePacket(s.ids[i], &s.pkt)
}

// merge writes the parts' packets in time order: a k-way merge over each
// source's next packet. Packets alias their source's buffer, which stays
// valid until that source's next read: nothing is copied.
func (ex *export) merge() {
	var hs sourceHeap
	for _, p := range ex.parts {
		s, err := ex.open(p)
		if err != nil {
			ex.fail(err)
			continue
		}
		if s != nil && ex.next(s) {
			hs = append(hs, s)
		}
	}
	heap.Init(&hs)
	for len(hs) > 0 {
		s := hs[0]
		if err := ex.write(s); err != nil {
			ex.fail(err)
			return
		}
		if ex.next(s) {
			heap.Fix(&hs, 0)
		} else {
			heap.Pop(&hs)
		}
	}
}

// follow writes the parts' packets as they come, one goroutine per part,
// and flushes the stream regularly. Workers that connect meanwhile join
// in. It ends when the client leaves, or, for an export bounded in time,
// once every part has ended.
func (ex *export) follow() {
	var mu sync.Mutex // guards ex.out, ex.last and ex.fail
	var wg sync.WaitGroup
	stop := make(chan struct{})
	ended := make(chan struct{}, 64)
	bad := func(err error) {
		mu.Lock()
		ex.fail(err)
		mu.Unlock()
	}
	run := func(p *exportPart) {
		wg.Go(func() {
			defer func() { ended <- struct{}{} }()
			s, err := ex.open(p)
			if err != nil {
				bad(err)
				return
			}
			if s == nil {
				return
			}
			for ex.next(s) {
				mu.Lock()
				err := ex.write(s)
				mu.Unlock()
				if err != nil {
					ex.cancel() // the client left: stop every part
					return
				}
			}
		})
	}
	for _, p := range ex.parts {
		run(p)
	}
	running := len(ex.parts)
	flusher := make(chan struct{})
	go func() {
		defer close(flusher)
		t := time.NewTicker(followFlush)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				if ex.out.Flush() == nil {
					ex.flush()
				}
				mu.Unlock()
			}
		}
	}()
	bounded := !ex.req.To.IsZero()
	for running > 0 || !bounded {
		select {
		case <-ex.ctx.Done():
			ex.stopParts()
			bounded, running = true, 0 // wait for the parts below
		case <-ex.joined:
			for _, p := range ex.startJoined(&mu) {
				run(p)
				running++
			}
		case <-ended:
			running--
		}
	}
	go func() {
		for range ended { // parts still ending after the client left
		}
	}()
	wg.Wait()
	close(ended)
	close(stop)
	<-flusher
}

// sourceHeap orders sources by their current packet's time.
type sourceHeap []*source

func (s sourceHeap) Len() int           { return len(s) }
func (s sourceHeap) Less(i, j int) bool { return s[i].pkt.Timestamp.Before(s[j].pkt.Timestamp) }
func (s sourceHeap) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *sourceHeap) Push(x any)        { *s = append(*s, x.(*source)) }
func (s *sourceHeap) Pop() any {
	old := *s
	x := old[len(old)-1]
	*s = old[:len(old)-1]
	return x
}
