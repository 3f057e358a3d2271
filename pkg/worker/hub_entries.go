package worker

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// An entries message is built in place: the envelope's head, the entries'
// JSON separated by commas, then the tail. The head is what wire.CutData
// expects, so the hub decodes the batch in one pass.
var (
	entriesHead = `{"v":` + strconv.Itoa(wire.Version) + `,"type":"` + wire.TypeEntries + `","data":{"entries":[`
	entriesTail = `]}}`
)

// maxEntryJSON is the largest entry that can be sent: alone in a batch,
// under what the hub accepts.
var maxEntryJSON = wire.MaxWorkerMessage - len(entriesHead) - len(entriesTail)

// entryBatch is an entries message being built, and its entry count.
type entryBatch struct {
	buf []byte
	n   int
}

var entryBatchPool = sync.Pool{New: func() any { return &entryBatch{buf: make([]byte, 0, 64<<10)} }}

func getEntryBatch() *entryBatch {
	b := entryBatchPool.Get().(*entryBatch)
	b.buf = append(b.buf[:0], entriesHead...)
	b.n = 0
	return b
}

func putEntryBatch(b *entryBatch) {
	if cap(b.buf) <= 2*wire.MaxBatchBytes { // an oversized entry's buffer goes
		entryBatchPool.Put(b)
	}
}

// pushFilter is the filter the hub pushed, compiled.
type pushFilter struct {
	expr string
	none bool           // "false": nothing is wanted
	f    *filter.Filter // nil: everything is wanted
}

func (p *pushFilter) match(e *entry.Entry) bool {
	if p.none {
		return false
	}
	return p.f == nil || p.f.Match(e)
}

// compilePushFilter compiles the hub's filter. A filter this worker cannot
// compile (a hub of a newer version, say) lets every entry through: the
// hub filters each subscriber's entries again, so nothing wrong reaches a
// subscriber, and the send queue bounds the extra traffic. Sending nothing
// instead would silently starve the subscribers; keeping the previous
// filter could do either. ok is false in that case.
func compilePushFilter(expr string) (p *pushFilter, ok bool, err error) {
	switch {
	case expr == wire.FilterNone:
		return &pushFilter{expr: expr, none: true}, true, nil
	case strings.TrimSpace(expr) == "":
		return &pushFilter{expr: expr}, true, nil
	}
	f, err := filter.Compile(expr)
	if err != nil {
		return &pushFilter{expr: expr}, false, err
	}
	if f.MatchAll() {
		f = nil
	}
	return &pushFilter{expr: expr, f: f}, true, nil
}

// setFilter applies a filter message.
func (l *HubLink) setFilter(expr string) {
	p, ok, err := compilePushFilter(expr)
	if !ok && expr != l.badFilter {
		l.opts.Logf("the hub's filter does not compile here, so every entry is sent and the hub filters them: %v", err)
	}
	if !ok {
		l.badFilter = expr
	}
	l.filter.Store(p)
}

// Render is the worker's pipeline.RenderFunc in hub mode. It runs on every
// shard: it names the pods of the entry's ends from the IPMap, then
// filters, so that filters on pod names work, encodes the entry into the
// shard's own buffer (dst) and copies it into the current batch. It writes
// nothing to dst: the worker's output stays quiet.
func (l *HubLink) Render(dst []byte, e *entry.Entry) []byte {
	wire.Enrich(e, *l.ipmap.Load())
	if !l.filter.Load().match(e) {
		l.filtered.Add(1)
		return dst
	}
	if !l.connected.Load() {
		l.dropped.Add(1)
		return dst
	}
	start := len(dst)
	dst = render.AppendJSON(dst, e)
	l.add(dst[start:])
	return dst[:start]
}

// add appends an encoded entry to the current batch, sealing the batch
// first when the entry would take it over wire.MaxBatchBytes. An entry
// bigger than that goes alone.
func (l *HubLink) add(js []byte) {
	if len(js) > maxEntryJSON {
		l.dropped.Add(1)
		return
	}
	l.bmu.Lock()
	defer l.bmu.Unlock()
	if b := l.cur; b != nil && len(b.buf)+1+len(js)+len(entriesTail) > wire.MaxBatchBytes {
		l.sealLocked()
	}
	if l.cur == nil {
		l.cur = getEntryBatch()
	}
	b := l.cur
	if b.n > 0 {
		b.buf = append(b.buf, ',')
	}
	b.buf = append(b.buf, js...)
	b.n++
	if len(b.buf)+len(entriesTail) >= wire.MaxBatchBytes {
		l.sealLocked()
	}
}

// sealLocked closes the current batch and queues it without waiting: a
// full queue drops it, counted.
func (l *HubLink) sealLocked() {
	b := l.cur
	l.cur = nil
	if b == nil {
		return
	}
	if b.n == 0 {
		putEntryBatch(b)
		return
	}
	b.buf = append(b.buf, entriesTail...)
	select {
	case l.queue <- b:
	default:
		l.dropped.Add(uint64(b.n))
		putEntryBatch(b)
	}
}

// flushLoop seals the current batch every FlushInterval, so that entries
// wait at most about that long, and drops it while no hub is connected.
func (l *HubLink) flushLoop(ctx context.Context) {
	t := time.NewTicker(l.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.bmu.Lock()
			l.dropBatchLocked()
			l.bmu.Unlock()
			l.drainQueue()
			return
		case <-t.C:
		}
		l.bmu.Lock()
		if l.connected.Load() {
			l.sealLocked()
		} else {
			l.dropBatchLocked()
		}
		l.bmu.Unlock()
	}
}

func (l *HubLink) dropBatchLocked() {
	if b := l.cur; b != nil {
		l.dropped.Add(uint64(b.n))
		l.cur = nil
		putEntryBatch(b)
	}
}

// drainQueue drops the batches queued for a connection that ended.
func (l *HubLink) drainQueue() {
	for {
		select {
		case b := <-l.queue:
			l.dropped.Add(uint64(b.n))
			putEntryBatch(b)
		default:
			return
		}
	}
}
