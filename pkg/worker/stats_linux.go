package worker

import (
	"net/netip"
	"sort"

	"github.com/kubectl-shark/kubectl-shark/pkg/assemble"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
)

// Stats describe a worker: what it captured, what it could not keep, and
// what the dissectors made of it. Packet counts are totals since Run began,
// over every capture, released ones included.
type Stats struct {
	Targets  int
	Attached int
	// Packets and Bytes were read from the kernel rings.
	Packets, Bytes uint64
	// KernelPackets passed the socket filters; KernelDrops found a ring
	// full; RingFreezes counts the times a ring had no free block.
	KernelPackets, KernelDrops, RingFreezes uint64
	// CorruptLost were lost in ring blocks whose layout was inconsistent:
	// the walk of a block stops at its first bad offset (see afpacket).
	CorruptLost uint64
	// DissectDrops and SinkDrops did not fit their queue; ShedPackets were
	// not dissected because memory was over budget (ShedEvents times);
	// BehindPackets because their capture had fallen behind its ring
	// (BehindEvents times).
	DissectDrops, SinkDrops, ShedPackets, ShedEvents uint64
	BehindPackets, BehindEvents                      uint64
	// Summarised packets, of flows no parser claimed, went to dissection
	// as summaries of their headers (see summarizer).
	Summarised              uint64
	Shedding                bool
	HeapBytes, MemoryBudget uint64
	// Entries counts entries by protocol; EntryErrors those with an error
	// (no response, a capture gap, ...).
	Entries     map[string]uint64
	EntryErrors uint64
	// Assemble sums the pipeline's shards: flows, gaps, parser panics.
	Assemble assemble.Stats
	// Store describes the first sink that is a pcap store, if any.
	Store *store.Stats
	Pods  []PodStats
}

// storeStats is implemented by the pcap store.
type storeStats interface{ Stats() store.Stats }

// PodStats describe the capture of one attached namespace.
type PodStats struct {
	Name  string // namespace/pod
	UID   string
	Netns uint64
	IPs   []netip.Addr
	Packets, Bytes, KernelPackets, KernelDrops, RingFreezes,
	DissectDrops, SinkDrops, ShedPackets, BehindPackets uint64
}

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	t := w.totals()
	st := Stats{
		Targets:       len(w.Targets()),
		Packets:       t.packets,
		Bytes:         t.bytes,
		KernelPackets: t.kernelPackets,
		KernelDrops:   t.kernelDrops,
		RingFreezes:   t.kernelFreezes,
		CorruptLost:   t.corruptLost,
		DissectDrops:  t.dissectDrops,
		SinkDrops:     t.sinkDrops,
		ShedPackets:   t.shed,
		BehindPackets: t.behind,
		BehindEvents:  t.behindEvents,
		Summarised:    t.summarised,
		ShedEvents:    w.mem.events.Load(),
		Shedding:      w.mem.shedding.Load(),
		HeapBytes:     w.mem.inUse.Load(),
		MemoryBudget:  w.mem.budget,
		Entries:       map[string]uint64{},
		EntryErrors:   w.entryErrors.Load(),
	}
	for _, sink := range w.opts.Sinks {
		if ss, ok := sink.(storeStats); ok {
			s := ss.Stats()
			st.Store = &s
			break
		}
	}
	for p, c := range w.entries {
		if n := c.Load(); n > 0 {
			st.Entries[p] = n
		}
	}
	w.cmu.Lock()
	for _, a := range w.asmStats {
		st.Assemble.Add(a)
	}
	caps := make([]*netnsCapture, 0, len(w.caps))
	for _, c := range w.caps {
		caps = append(caps, c)
	}
	w.cmu.Unlock()
	st.Attached = len(caps)
	for _, c := range caps {
		k := c.counters()
		st.Pods = append(st.Pods, PodStats{
			Name: c.info.iface.Name, UID: c.info.uid, Netns: c.ino, IPs: c.info.addrs(),
			Packets: k.packets, Bytes: k.bytes, KernelPackets: k.kernelPackets, KernelDrops: k.kernelDrops,
			RingFreezes: k.kernelFreezes, DissectDrops: k.dissectDrops, SinkDrops: k.sinkDrops, ShedPackets: k.shed,
			BehindPackets: k.behind,
		})
	}
	sort.Slice(st.Pods, func(i, j int) bool {
		return st.Pods[i].Name < st.Pods[j].Name || st.Pods[i].Name == st.Pods[j].Name && st.Pods[i].Netns < st.Pods[j].Netns
	})
	return st
}
