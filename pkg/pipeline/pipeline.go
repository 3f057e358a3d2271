// Package pipeline runs the traffic engine: a packet source is decoded, the
// frames are spread over one assembler shard per core, a flow to one shard
// (see router), each shard reassembles, dissects and renders its entries,
// and one merger writes them out.
//
// Output is deterministic for the same input: packets travel in rounds, every
// shard sees every round (possibly empty), and the merger orders each round's
// records by the index of the packet that completed them, then by the index
// of their flow's first packet, then by their order in the flow. None of that
// depends on the number of shards, so neither does the output. Memory is
// bounded by the number of rounds in flight.
package pipeline

import (
	"bufio"
	"cmp"
	"context"
	"io"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/assemble"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// RenderFunc appends the output of one entry to dst, or returns dst
// unchanged to leave the entry out (a filter). It runs on every shard
// concurrently, so it must be safe for concurrent use. It must keep
// nothing of e once it returns: parsers reuse an entry's memory.
type RenderFunc func(dst []byte, e *entry.Entry) []byte

// AnnotateFunc adds what the caller knows of the capture interface a flow
// was seen on (in the worker: the pod whose network namespace it is) to
// each of its entries, before they are rendered. It runs on every shard,
// and like RenderFunc keeps nothing of e.
type AnnotateFunc func(e *entry.Entry, iface int)

// Options configure a run.
type Options struct {
	Registry *dissect.Registry
	Render   RenderFunc
	Annotate AnnotateFunc // optional
	Shards   int          // default: GOMAXPROCS
	Assemble assemble.Options
	Decode   capture.DecoderOptions
	// Live flushes rounds every FlushInterval, so entries come out while
	// the source is still open (a pipe, a live capture), and ticks timeouts
	// on the wall clock.
	Live          bool
	FlushInterval time.Duration
	// RoundStats, if set, receives a shard's assembler counters after each
	// round it processed, on that shard's goroutine, so that a live caller
	// can export them before Run returns.
	RoundStats func(shard int, st assemble.Stats)
	// OnCounted, if set, is told on the shards' goroutines when a TCP flow
	// starts (on) and stops being only counted (see assemble.Counter): a
	// live source may then hand that flow's packets cut after their
	// headers, even several in-order segments as one (see
	// capture.Frame.PayloadLen).
	OnCounted func(a, b netip.AddrPort, on bool)
}

// Stats summarise a run.
type Stats struct {
	Packets  uint64
	Bytes    uint64
	Decode   capture.DecoderStats
	Assemble assemble.Stats
	Parsers  dissect.Stats // what each protocol's parsers dropped or skipped
	Entries  uint64        // entries the dissectors produced
	Written  uint64        // entries rendered (past the filter)
	// HeadersOnly counts packets of counted flows (no parser claimed
	// them) handed on without their payload bytes.
	HeadersOnly uint64
}

// Round sizes: a round closes at this many packets or arena bytes.
const (
	roundPackets = 1024
	roundBytes   = 1 << 20
	inFlight     = 4 // rounds queued per shard
)

// Run reads src to its end (or until ctx is done) and writes every rendered
// entry to out. A truncated source still yields every entry up to the cut;
// the error then wraps capture.ErrTruncated.
func Run(ctx context.Context, src capture.Source, out io.Writer, opts Options) (Stats, error) {
	if opts.Shards <= 0 {
		opts.Shards = runtime.GOMAXPROCS(0)
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	p := &run{opts: opts, src: src}
	p.holder, _ = src.(capture.Holder)
	var shared []uint16
	if opts.Registry != nil {
		shared = opts.Registry.SharedPorts()
	}
	p.router = newRouter(opts.Shards, opts.Assemble.WithDefaults().TCPIdle, shared)
	p.shards = make([]*shard, opts.Shards)
	for i := range p.shards {
		p.shards[i] = newShard(i, &p.opts, p.onCounted)
	}
	p.pending = p.newRound()

	m, _ := src.(capture.Mapper)
	p.mapped = m != nil && m.Mapped()
	var wg sync.WaitGroup
	for _, s := range p.shards {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(p.mapped) }()
	}
	mergeErr := make(chan error, 1)
	go func() { mergeErr <- p.merge(out) }()

	stopTicker := func() {}
	if opts.Live {
		stopTicker = p.tick()
	}
	// Read on a goroutine of its own: a source blocked in Next (a quiet
	// pipe) must not hold up a cancelled run.
	readDone := make(chan readResult, 1)
	go func() { readDone <- p.read(ctx) }()
	var rr readResult
	select {
	case rr = <-readDone:
	case <-ctx.Done():
		src.Close() // unblocks sources that can be; the rest are abandoned
		select {
		case rr = <-readDone:
		case <-time.After(100 * time.Millisecond):
		}
	}
	stopTicker()
	p.stop()
	for _, s := range p.shards {
		close(s.in)
	}
	wg.Wait()
	werr := <-mergeErr
	for _, s := range p.shards {
		if rr.err == nil {
			rr.err = s.fault
		}
	}

	st := rr.stats
	p.mu.Lock()
	st.HeadersOnly = p.headersOnly
	p.mu.Unlock()
	st.Parsers = dissect.Stats{}
	for _, s := range p.shards {
		st.Parsers.Add(s.parsers)
		st.Assemble.Add(s.asm.Stats())
		st.Entries += s.entries
		st.Written += s.written
	}
	if werr != nil {
		return st, werr
	}
	return st, rr.err
}

type run struct {
	opts   Options
	src    capture.Source
	holder capture.Holder // src, if its packets can be kept without a copy
	mapped bool           // src's packets lie in a mapped file (capture.Mapper)
	shards []*shard
	router *router

	mu      sync.Mutex // guards pending and index against the live ticker
	pending *round
	index   uint64
	last    time.Time // newest packet time
	stopped bool      // the final round is out: no more packets

	failed atomic.Bool // the output failed; reading on is pointless

	counted     headerOnly // flows whose packets are copied without payload
	headersOnly uint64     // packets so copied; guarded by mu
}

// round is one slice of the packet sequence, split by shard.
type round struct {
	parts []*batch
	final bool
	now   time.Time // packet time (or wall time, live) at the round's end
	last  uint64    // index of the last packet before this round closed
	size  int       // packets
	bytes int       // arena bytes, all shards
}

// batch holds the frames of one round for one shard; their slices point
// into arena, or into regions of the source, retained until the shard is
// done with them.
type batch struct {
	frames  []indexed
	arena   []byte
	regions []*capture.Region
}

// hold retains r for the batch, once.
func (b *batch) hold(r *capture.Region) {
	if n := len(b.regions); n == 0 || b.regions[n-1] != r {
		r.Retain()
		b.regions = append(b.regions, r)
	}
}

// done releases what the batch holds and returns it to the pool.
func (b *batch) done() {
	for i, r := range b.regions {
		r.Release()
		b.regions[i] = nil
	}
	b.regions = b.regions[:0]
	batchPool.Put(b)
}

type indexed struct {
	capture.Frame
	index uint64
}

// arenaSize holds a round's bytes: a round closes past roundBytes, by at
// most one packet.
const arenaSize = roundBytes + 64<<10

// The arena is made on the first copy: frames that lie in the source's
// regions need none.
var batchPool = sync.Pool{New: func() any {
	return &batch{frames: make([]indexed, 0, roundPackets)}
}}

func (p *run) newRound() *round {
	r := &round{parts: make([]*batch, len(p.shards))}
	for i := range r.parts {
		b := batchPool.Get().(*batch)
		b.frames, b.arena = b.frames[:0], b.arena[:0]
		r.parts[i] = b
	}
	return r
}

type readResult struct {
	stats Stats // Packets, Bytes and Decode only
	err   error
}

func (p *run) read(ctx context.Context) (rr readResult) {
	dec := capture.NewDecoder(p.opts.Decode)
	defer func() { rr.stats.Decode = dec.Stats() }()
	if p.mapped {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer recoverFault(&rr.err)
	}
	var pkt capture.Packet
	var f capture.Frame
	for ctx.Err() == nil {
		err := p.src.Next(&pkt)
		if err == io.EOF {
			return rr
		}
		if err != nil {
			if ctx.Err() == nil {
				rr.err = err // else: Close from the context, a clean stop
			}
			return rr
		}
		rr.stats.Packets++
		rr.stats.Bytes += uint64(len(pkt.Data))
		if !dec.Decode(&pkt, &f) {
			continue
		}
		var reg *capture.Region
		if p.holder != nil {
			reg = p.holder.Held()
		}
		if p.add(&f, reg) {
			return rr
		}
	}
	return rr
}

// recoverFault, deferred, turns a memory fault in a mapped capture (it
// shrank: see capture.FaultError) into *err, and panics again with
// anything else.
func recoverFault(err *error) {
	if r := recover(); r != nil {
		if *err = capture.FaultError(r); *err == nil {
			panic(r)
		}
	}
}

// add puts f into the pending round and dispatches the round when full.
// It reports whether the merger has stopped. The frame's bytes are copied
// into the round, unless they lie in reg, a region of the source that the
// round then holds.
func (p *run) add(f *capture.Frame, reg *capture.Region) bool {
	if p.failed.Load() {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return true
	}
	p.index++
	if f.Timestamp.After(p.last) {
		p.last = f.Timestamp
	}
	hash := flowHash(f)
	b := p.pending.parts[p.router.shard(f, hash)]
	stripped := p.counted.strip(f, hash)
	seg := f.Segment
	if stripped {
		p.headersOnly++
		seg = seg[:len(seg)-len(f.Payload)]
	}
	if reg != nil && reg.Contains(f.Segment) {
		b.hold(reg)
		seg = seg[:len(seg):len(seg)]
	} else {
		if b.arena == nil {
			b.arena = make([]byte, 0, arenaSize)
		}
		off := len(b.arena)
		b.arena = append(b.arena, seg...)
		seg = b.arena[off:len(b.arena):len(b.arena)]
	}
	fr := indexed{Frame: *f, index: p.index}
	fr.Segment = seg
	if stripped {
		fr.Payload = zeros[:len(f.Payload):len(f.Payload)]
	} else {
		fr.Payload = seg[len(seg)-len(f.Payload):]
	}
	b.frames = append(b.frames, fr)
	p.pending.size++
	p.pending.bytes += len(seg)
	if p.pending.size >= roundPackets || p.pending.bytes >= roundBytes {
		p.dispatchLocked(false)
	}
	return false
}

// dispatch sends the pending round on (the live ticker).
func (p *run) dispatch() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.dispatchLocked(false)
	}
}

// stop sends the final round: shards close every flow.
func (p *run) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.dispatchLocked(true)
}

func (p *run) dispatchLocked(final bool) {
	r := p.pending
	r.final = final
	r.last = p.index
	r.now = p.last
	if p.opts.Live {
		r.now = time.Now()
	}
	for i, s := range p.shards {
		s.in <- shardRound{b: r.parts[i], r: r}
	}
	p.router.sweep(r.now)
	if !final {
		p.pending = p.newRound()
	}
}

// tick dispatches a round every FlushInterval while live, so entries are
// written as they complete and timeouts run on the wall clock.
func (p *run) tick() (stop func()) {
	done := make(chan struct{})
	t := time.NewTicker(p.opts.FlushInterval)
	go func() {
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.dispatch()
			}
		}
	}()
	return func() { close(done) }
}

// onCounted keeps the reader's set of counted flows and tells the caller.
func (p *run) onCounted(a, b netip.AddrPort, on bool) {
	p.counted.set(a, b, on)
	if p.opts.OnCounted != nil {
		p.opts.OnCounted(a, b, on)
	}
}

// flowHash is the same for both directions of a flow.
func flowHash(f *capture.Frame) uint64 {
	return endHash(f.Src.As16(), f.SrcPort) + endHash(f.Dst.As16(), f.DstPort)
}

func shardOfHash(h uint64, n int) int {
	if n == 1 {
		return 0
	}
	return int(mix(h) % uint64(n))
}

// mix spreads every bit of h over the low ones (murmur3's finaliser).
// Without it, the low bits of a sum of two end hashes follow the ports' low
// bits, and Linux gives connect() even ephemeral ports: on loopback, where
// only ports differ, two thirds of the flows landed on one shard.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>33
}

func endHash(a [16]byte, port uint16) uint64 {
	var x uint64 = 0x9e3779b97f4a7c15
	for i := 0; i < 16; i += 8 {
		x ^= uint64(a[i]) | uint64(a[i+1])<<8 | uint64(a[i+2])<<16 | uint64(a[i+3])<<24 |
			uint64(a[i+4])<<32 | uint64(a[i+5])<<40 | uint64(a[i+6])<<48 | uint64(a[i+7])<<56
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
	}
	x ^= uint64(port)
	x *= 0xc4ceb9fe1a85ec53
	return x ^ x>>29
}

// merge collects every shard's output of each round and writes its records
// in key order: each shard's are sorted, so they are merged.
func (p *run) merge(out io.Writer) error {
	if v := newVecWriter(out); v != nil {
		return p.mergeTo(v.add, v.flush, v.flush)
	}
	w := bufio.NewWriterSize(out, 256<<10)
	write := func(b []byte) error {
		_, err := w.Write(b)
		return err
	}
	endRound := func() error {
		if p.opts.Live {
			return w.Flush()
		}
		return nil
	}
	return p.mergeTo(write, endRound, w.Flush)
}

// mergeTo merges the shards' records of each round into key order, hands
// them to write, and calls endRound once they are all out; end is called
// once the last round is.
func (p *run) mergeTo(write func([]byte) error, endRound, end func() error) error {
	var werr error
	outs := make([]*shardOut, len(p.shards))
	next := make([]int, len(p.shards)) // per shard: its next record
	for {
		for i, s := range p.shards {
			o, ok := <-s.out
			if !ok {
				if werr == nil {
					werr = end()
				}
				return werr
			}
			outs[i], next[i] = o, 0
		}
		for {
			r := nextRecord(outs, next)
			if r == nil {
				break
			}
			if werr == nil {
				werr = write(r.b)
			}
		}
		if werr == nil {
			werr = endRound()
		}
		if werr != nil {
			p.failed.Store(true)
		}
		for i, o := range outs {
			p.shards[i].recycle(o)
		}
	}
}

// nextRecord takes the least record at the heads of the shards' sorted
// records, or returns nil when all are taken.
func nextRecord(outs []*shardOut, next []int) *record {
	best := -1
	for i, o := range outs {
		if next[i] < len(o.recs) && (best < 0 || o.recs[next[i]].key.compare(outs[best].recs[next[best]].key) < 0) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	next[best]++
	return &outs[best].recs[next[best]-1]
}

// key orders records deterministically, whatever the number of shards.
type key struct {
	index uint64 // the packet (or round end) that completed the entry
	flow  uint64 // the index of the flow's first packet
	n     uint64 // the entry's order in its flow
}

func (a key) compare(b key) int {
	if c := cmp.Compare(a.index, b.index); c != 0 {
		return c
	}
	if c := cmp.Compare(a.flow, b.flow); c != 0 {
		return c
	}
	return cmp.Compare(a.n, b.n)
}

type record struct {
	key key
	b   []byte
}
