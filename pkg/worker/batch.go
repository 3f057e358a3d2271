package worker

import (
	"sync"
	"sync/atomic"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// Batch bounds: a capture goroutine hands over its packets in batches, so
// that queues cost one channel operation per batch, not per packet.
const (
	batchBytes   = 256 << 10
	batchPackets = 1024
)

// batch holds packets of one capture interface: copied into data, or
// aliasing a block of the kernel ring (ring). It is shared by the
// consumers it was queued to (dissection, the sinks), which copy what they
// keep; the last one to release it hands the block back and the batch to
// the pool.
type batch struct {
	iface int
	data  []byte
	ring  *ringBlock // the block pkts alias; nil when copied
	pkts  []capture.Packet
	// skip marks packets dissection leaves out: another capture hands
	// them to dissection (the two ends of a flow are both targeted pods),
	// or a summary stands for them. Sinks still get them.
	skip []bool
	// sums are summaries of counted flows' packets (see summarizer), for
	// dissection only: sums[j] comes before pkts[sumAt[j]]. Their bytes
	// are in sumData.
	sums    []capture.Packet
	sumAt   []int
	sumData []byte
	// captured is the packets the batch stands for, in pkts or summarised;
	// dup those of them another capture dissects.
	captured, dup int
	summarised    int // captured packets a summary stands for
	refs          atomic.Int32
	// size is the bytes the batch holds, counted against queue budgets;
	// bytes those of the packets it stands for.
	size, bytes int
}

// maxSumData is the summary bytes a pooled batch keeps room for.
const maxSumData = 64 << 10

var batchPool = sync.Pool{New: func() any {
	return &batch{
		data: make([]byte, 0, batchBytes),
		pkts: make([]capture.Packet, 0, batchPackets),
		skip: make([]bool, 0, batchPackets),
	}
}}

func getBatch(iface int) *batch {
	b := batchPool.Get().(*batch)
	b.iface = iface
	b.data, b.pkts, b.skip = b.data[:0], b.pkts[:0], b.skip[:0]
	b.sums, b.sumAt, b.sumData = b.sums[:0], b.sumAt[:0], b.sumData[:0]
	b.captured, b.dup, b.summarised, b.size, b.bytes = 0, 0, 0, 0, 0
	return b
}

// ringBlock is a block of a capture ring that batches alias, counted: the
// last reference hands it back to the kernel.
type ringBlock struct {
	blk  interface{ Release() }
	refs atomic.Int32
}

func (r *ringBlock) release() {
	if r.refs.Add(-1) == 0 {
		r.blk.Release()
	}
}

// getRingBatch returns a batch that aliases r's block, holding a reference.
func getRingBatch(iface int, r *ringBlock) *batch {
	b := getBatch(iface)
	r.refs.Add(1)
	b.ring = r
	return b
}

// fits reports whether a packet of n bytes fits without moving data: the
// packets alias it.
func (b *batch) fits(n int) bool {
	return len(b.pkts) < batchPackets && len(b.data)+n <= cap(b.data)
}

// add copies p into the batch; the caller checked fits, or the batch is
// empty (an oversized packet gets a buffer of its own). skip leaves it out
// of dissection.
func (b *batch) add(p *capture.Packet, skip bool) {
	if len(b.data)+len(p.Data) > cap(b.data) {
		b.data = make([]byte, 0, len(p.Data)) // oversized: not pooled afterwards
	}
	off := len(b.data)
	b.data = append(b.data, p.Data...)
	q := *p
	q.Data = b.data[off:len(b.data):len(b.data)]
	b.pkts = append(b.pkts, q)
	b.skip = append(b.skip, skip)
	b.captured++
	b.size += len(p.Data)
	b.bytes += len(p.Data)
}

// alias adds p without copying it: a batch of getRingBatch, whose block
// p.Data points into.
func (b *batch) alias(p *capture.Packet, skip bool) {
	b.pkts = append(b.pkts, *p)
	b.skip = append(b.skip, skip)
	b.captured++
	b.size += len(p.Data)
	b.bytes += len(p.Data)
}

// addSummary copies a summary packet into the batch, for dissection
// before the packets added after it.
func (b *batch) addSummary(p *capture.Packet) {
	off := len(b.sumData)
	b.sumData = append(b.sumData, p.Data...)
	q := *p
	q.Data = b.sumData[off:len(b.sumData):len(b.sumData)]
	b.sums = append(b.sums, q)
	b.sumAt = append(b.sumAt, len(b.pkts))
	b.size += len(p.Data)
}

// dissected is how many captured packets dissection gets, whole or
// summarised.
func (b *batch) dissected() int { return b.captured - b.dup }

// aliasFits reports whether an aliasing batch takes a packet of n bytes:
// the bounds of a copied batch, so queues hold what they did.
func (b *batch) aliasFits(n int) bool {
	return len(b.pkts) < batchPackets && b.size+n <= batchBytes
}

// release drops one reference; the last hands the ring block back and
// returns the batch to the pool.
func (b *batch) release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	if r := b.ring; r != nil {
		b.ring = nil
		r.release()
		// No pointer into the ring survives in the pool: the ring may be
		// unmapped now.
		clear(b.pkts)
	}
	if cap(b.sumData) > maxSumData {
		b.sumData = nil // a burst of summaries: not kept in the pool
	}
	if cap(b.data) == batchBytes {
		batchPool.Put(b)
	}
}
