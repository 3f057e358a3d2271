package worker

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket"
)

// dispatch queues a full batch to the sinks and to dissection, never
// waiting. newest is the time of its newest packet.
func (w *Worker) dispatch(c *netnsCapture, b *batch, newest time.Time) {
	behind := c.behind.update(newest, b.size, time.Now())
	n := uint64(b.captured)
	c.packets.Add(n)
	c.bytes.Add(uint64(b.bytes))
	c.summarised.Add(uint64(b.summarised))
	b.refs.Store(2)
	if w.sinkQ != nil {
		select {
		case w.sinkQ <- b:
		default:
			c.sinkDrops.Add(n)
			b.release()
		}
	} else {
		b.release()
	}
	dissect := uint64(b.dissected())
	switch {
	case dissect == 0 || w.opts.NoDissect:
		b.release()
	case behind:
		c.behindPkts.Add(dissect)
		c.behindEvents.Store(c.behind.events)
		b.release()
	case w.mem.shedding.Load():
		c.shed.Add(dissect)
		b.release()
	default:
		select {
		case w.dissectQ <- b:
		default:
			c.dissectDrops.Add(dissect)
			b.release()
		}
	}
}

// netnsCapture is the capture of one network namespace.
type netnsCapture struct {
	w      *Worker
	ino    uint64
	info   *podInfo
	target Target
	h      *afpacket.Handle
	ar     *addrReader
	behind *behindGauge // owned by run

	stop   atomic.Bool
	failed atomic.Bool
	done   chan struct{}
	err    error // set before done closes

	packets, bytes, dissectDrops, sinkDrops, shed atomic.Uint64
	behindPkts, behindEvents, summarised          atomic.Uint64
	kmu                                           sync.Mutex
	kernel                                        afpacket.Stats
}

// run reads the ring until stopped. It owns the handle and closes it.
func (c *netnsCapture) run() {
	defer close(c.done)
	r := newRingReader(c)
	defer func() {
		r.flush()
		// Blocks still held by consumers keep the ring mapped; the last
		// release unmaps it.
		c.h.Close()
		c.pollKernel()
	}()
	boostThread()
	for !c.stop.Load() {
		blk, err := c.h.NextBlock()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				r.flush()
				continue
			}
			c.err = err
			c.failed.Store(true)
			select {
			case c.w.failed <- c.ino:
			default:
			}
			return
		}
		if c.w.opts.ZeroCopy && c.keepingUp() {
			r.alias(blk)
		} else {
			// The consumers lag: copy, so that the kernel never comes
			// round to a block they still hold.
			r.copy(blk)
			blk.Release()
		}
	}
}

// aliasQueue is how many batches may wait for a consumer while the reader
// still hands out ring blocks: a block must come back well before the
// kernel fills the rest of the ring.
const aliasQueue = 4

// keepingUp reports whether the next block may be aliased: the consumers
// hold at most half the ring and have little queued.
func (c *netnsCapture) keepingUp() bool {
	w := c.w
	if c.h.Held()*2 > c.h.Blocks() || len(w.dissectQ) > aliasQueue {
		return false
	}
	return w.sinkQ == nil || len(w.sinkQ) <= aliasQueue
}

// ringReader turns the blocks of a capture's ring into batches: batches
// that alias the block while the consumers keep up, copies when they lag.
// Packets of counted flows are summarised (see summarizer), and kept
// whole only for the sinks.
type ringReader struct {
	c *netnsCapture
	p capture.Packet
	// The copying batch being filled, its first and newest packet times.
	b             *batch
	first, newest time.Time

	sum  *summarizer
	keep bool   // the sinks want every packet
	dst  *batch // the batch summaries go to
	emit emitFunc
}

func newRingReader(c *netnsCapture) *ringReader {
	r := &ringReader{c: c, sum: newSummarizer(&c.w.counted), keep: c.w.sinkQ != nil}
	r.emit = func(p *capture.Packet) { r.dst.addSummary(p) }
	return r
}

// put adds p to b, whole or summarised, or for the sinks alone.
func (r *ringReader) put(b *batch, p *capture.Packet, t *table, aliased bool) {
	sinksOnly := r.c.w.opts.NoDissect
	dup := !sinksOnly && t.skipDissect(r.c.ino, p.Data)
	r.dst = b
	summarised := !sinksOnly && !dup && r.sum.take(p, r.emit)
	switch {
	case summarised && !r.keep:
		b.captured++
		b.summarised++
		b.bytes += len(p.Data)
		return
	case summarised:
		b.summarised++
	case dup:
		b.dup++
	}
	skip := sinksOnly || dup || summarised
	if aliased {
		b.alias(p, skip)
	} else {
		b.add(p, skip)
	}
}

// queue dispatches b with the summaries still open: nothing of its
// flows may come after it in a later batch before them.
func (r *ringReader) queue(b *batch) {
	r.dst = b
	r.sum.flush(r.emit)
	r.c.w.dispatch(r.c, b, r.newest)
}

// alias queues the packets of blk in batches that alias it; the last
// batch released hands it back to the kernel.
func (r *ringReader) alias(blk *afpacket.Block) {
	r.flush() // what was copied before it goes first
	c := r.c
	t := c.w.tables.load()
	rb := &ringBlock{blk: blk}
	rb.refs.Store(1) // the walk's own, so that an early consumer cannot release it
	defer rb.release()
	var b *batch
	for blk.Next(&r.p) {
		p := &r.p
		if b != nil && !b.aliasFits(len(p.Data)) {
			r.queue(b)
			b = nil
		}
		if b == nil {
			b = getRingBatch(c.info.index, rb)
		}
		r.newest = p.Timestamp
		r.put(b, p, t, true)
	}
	if b != nil {
		r.queue(b)
	}
}

// copy copies the packets of blk into batches, which are queued when
// full or flushAge old; the caller releases blk.
func (r *ringReader) copy(blk *afpacket.Block) {
	c := r.c
	t := c.w.tables.load()
	for blk.Next(&r.p) {
		p := &r.p
		if r.b != nil && !r.b.fits(len(p.Data)) {
			r.flush()
		}
		if r.b == nil {
			r.b = getBatch(c.info.index)
			r.first = p.Timestamp
		}
		r.newest = p.Timestamp
		r.put(r.b, p, t, false)
		if r.newest.Sub(r.first) >= flushAge {
			r.flush()
		}
	}
}

// flush queues the copying batch, if any.
func (r *ringReader) flush() {
	if r.b != nil {
		r.queue(r.b)
		r.b = nil
	}
}

// captureNice is the scheduling priority of capture threads: under CPU
// contention the reader of a ring runs before dissection and before the
// traffic's own processes, so the ring does not overflow.
const captureNice = -10

// boostThread gives the calling goroutine an OS thread of its own with a
// higher priority. The goroutine never unlocks it: when it exits, the Go
// runtime ends the thread rather than hand the priority to other
// goroutines. Without CAP_SYS_NICE the priority stays as it was.
func boostThread() {
	runtime.LockOSThread()
	unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), captureNice)
}

func (c *netnsCapture) pollKernel() {
	st, err := c.h.Stats()
	if err != nil {
		return
	}
	c.kmu.Lock()
	c.kernel = st
	c.kmu.Unlock()
}

// refreshAddrs reads the namespace's addresses; it reports a change.
func (c *netnsCapture) refreshAddrs() bool {
	addrs, err := c.ar.addrs()
	if err != nil {
		c.w.warnOnce(fmt.Sprintf("addrs:%d", c.ino), "addresses of %s: %v", c.info.iface.Name, err)
	}
	for _, a := range c.target.IPs {
		if !slices.Contains(addrs, a.Unmap()) {
			addrs = append(addrs, a.Unmap())
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	if slices.Equal(addrs, c.info.addrs()) {
		return false
	}
	c.info.ips.Store(&addrs)
	return true
}

// counters are a capture's (or a sum of captures') packet counts.
type counters struct {
	packets, bytes, dissectDrops, sinkDrops, shed uint64
	behind, behindEvents, summarised              uint64
	kernelPackets, kernelDrops, kernelFreezes     uint64
	corruptLost                                   uint64
}

func (c *netnsCapture) counters() counters {
	c.kmu.Lock()
	k := c.kernel
	c.kmu.Unlock()
	return counters{
		packets: c.packets.Load(), bytes: c.bytes.Load(),
		dissectDrops: c.dissectDrops.Load(), sinkDrops: c.sinkDrops.Load(), shed: c.shed.Load(),
		behind: c.behindPkts.Load(), behindEvents: c.behindEvents.Load(), summarised: c.summarised.Load(),
		kernelPackets: k.Packets, kernelDrops: k.Drops, kernelFreezes: k.Freezes,
		corruptLost: k.CorruptLost,
	}
}

func (a *counters) add(b counters) {
	a.packets += b.packets
	a.bytes += b.bytes
	a.dissectDrops += b.dissectDrops
	a.sinkDrops += b.sinkDrops
	a.shed += b.shed
	a.behind += b.behind
	a.behindEvents += b.behindEvents
	a.summarised += b.summarised
	a.kernelPackets += b.kernelPackets
	a.kernelDrops += b.kernelDrops
	a.kernelFreezes += b.kernelFreezes
	a.corruptLost += b.corruptLost
}

func (a counters) sub(b counters) counters {
	return counters{
		packets: a.packets - b.packets, bytes: a.bytes - b.bytes,
		dissectDrops: a.dissectDrops - b.dissectDrops, sinkDrops: a.sinkDrops - b.sinkDrops, shed: a.shed - b.shed,
		behind: a.behind - b.behind, behindEvents: a.behindEvents - b.behindEvents, summarised: a.summarised - b.summarised,
		kernelPackets: a.kernelPackets - b.kernelPackets, kernelDrops: a.kernelDrops - b.kernelDrops,
		kernelFreezes: a.kernelFreezes - b.kernelFreezes,
		corruptLost:   a.corruptLost - b.corruptLost,
	}
}

// totals sums released and live captures.
func (w *Worker) totals() counters {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	t := w.gone
	for _, c := range w.caps {
		t.add(c.counters())
	}
	for c := range w.closing {
		t.add(c.counters())
	}
	return t
}
