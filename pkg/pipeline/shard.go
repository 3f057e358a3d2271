package pipeline

import (
	"net/netip"
	"runtime/debug"
	"slices"

	"github.com/kubectl-shark/kubectl-shark/pkg/assemble"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// shard owns one assembler and everything downstream of it for its flows.
type shard struct {
	id   int
	opts *Options
	asm  *assemble.Assembler
	in   chan shardRound
	out  chan *shardOut
	free chan *shardOut

	cur              *shardOut
	index            uint64 // key of entries emitted now
	entries, written uint64
	parsers          dissect.Stats
	fault            error // a mapped capture shrank under the shard; it only drains now
}

type shardRound struct {
	b *batch
	r *round
}

// shardOut is one round's rendered records; their bytes live in buf.
type shardOut struct {
	recs []record
	buf  []byte
}

func newShard(id int, opts *Options, counted func(a, b netip.AddrPort, on bool)) *shard {
	s := &shard{
		id:      id,
		opts:    opts,
		in:      make(chan shardRound, inFlight),
		out:     make(chan *shardOut, inFlight),
		free:    make(chan *shardOut, inFlight+2),
		parsers: dissect.Stats{},
	}
	s.asm = assemble.New(opts.Assemble, s.newHandler)
	s.asm.OnCounted(counted)
	return s
}

func (s *shard) run(mapped bool) {
	defer close(s.out)
	if mapped {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	}
	for sr := range s.in {
		s.cur = s.take()
		if s.fault == nil {
			s.fault = s.assemble(sr)
		}
		sr.b.done()
		s.finish()
		if s.opts.RoundStats != nil {
			s.opts.RoundStats(s.id, s.asm.Stats())
		}
	}
}

// assemble runs a round's frames through the assembler. It returns the
// error of a memory fault (capture.FaultError): a mapped capture file
// shrank, and the frames' bytes are gone.
func (s *shard) assemble(sr shardRound) (err error) {
	defer recoverFault(&err)
	for i := range sr.b.frames {
		f := &sr.b.frames[i]
		s.index = f.index
		s.asm.Frame(&f.Frame)
	}
	s.index = sr.r.last
	s.asm.Tick(sr.r.now)
	if sr.r.final {
		s.asm.Close()
	}
	return nil
}

func (s *shard) take() *shardOut {
	select {
	case o := <-s.free:
		o.recs, o.buf = o.recs[:0], o.buf[:0]
		return o
	default:
		// A round renders to about 90 KB: start there rather than grow
		// through every size below.
		return &shardOut{buf: make([]byte, 0, 128<<10)}
	}
}

func (s *shard) recycle(o *shardOut) {
	select {
	case s.free <- o:
	default:
	}
}

func compareRecords(a, b record) int { return a.key.compare(b.key) }

// finish sorts the round's records (flushes emit in map order) and hands
// them to the merger. Record slices are fixed up only now: buf may have
// moved while it grew.
func (s *shard) finish() {
	o := s.cur
	off := 0
	for i := range o.recs {
		n := len(o.recs[i].b)
		o.recs[i].b = o.buf[off : off+n : off+n]
		off += n
	}
	if !slices.IsSortedFunc(o.recs, compareRecords) {
		slices.SortStableFunc(o.recs, compareRecords)
	}
	s.out <- o
	s.cur = nil
}

func (s *shard) newHandler(f *assemble.Flow) assemble.Handler {
	em := &flowEmitter{s: s, flow: s.index, iface: f.Interface}
	return s.opts.Registry.NewConn(dissect.FlowInfo{
		Transport: f.Transport,
		A:         f.A,
		B:         f.B,
		Opener:    dissect.Opener(f.Opener),
		ID:        f.ID,
	}, em, s.parsers)
}

// flowEmitter renders one flow's entries into the shard's current round.
type flowEmitter struct {
	s     *shard
	flow  uint64
	iface int
	n     uint64
}

// RecyclesEntries implements dissect.Recycler: an entry is rendered to
// bytes before Emit returns, and RenderFunc and AnnotateFunc keep nothing
// of it.
func (em *flowEmitter) RecyclesEntries() {}

func (em *flowEmitter) Emit(e *entry.Entry) {
	s := em.s
	s.entries++
	if s.opts.Annotate != nil {
		s.opts.Annotate(e, em.iface)
	}
	o := s.cur
	before := len(o.buf)
	o.buf = s.opts.Render(o.buf, e)
	n := len(o.buf) - before
	if n == 0 {
		return
	}
	s.written++
	em.n++
	// b holds only the length until finish fixes it up.
	o.recs = append(o.recs, record{
		key: key{index: s.index, flow: em.flow, n: em.n},
		b:   o.buf[before:len(o.buf):len(o.buf)][:n],
	})
}
