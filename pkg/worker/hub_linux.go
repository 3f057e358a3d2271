package worker

import "github.com/kubectl-shark/kubectl-shark/pkg/wire"

// HubStats returns the worker's counters as a stats message to the hub
// (HubWorker). The link adds the names, the time and the entries it
// dropped.
func (w *Worker) HubStats() wire.Stats {
	st := w.Stats()
	var entries uint64
	for _, n := range st.Entries {
		entries += n
	}
	return wire.Stats{
		Packets: st.Packets,
		Bytes:   st.Bytes,
		// Packets of a corrupt ring block are lost at the ring too.
		KernelDrops: st.KernelDrops + st.CorruptLost,
		QueueDrops:  st.DissectDrops + st.SinkDrops,
		// Packets not dissected for lack of memory or of CPU (a capture
		// behind its ring) are both shed to keep capture going.
		ShedPackets: st.ShedPackets + st.BehindPackets,
		Shedding:    st.Shedding,
		Entries:     entries,
		Sources:     st.Attached,
		Targets:     st.Targets,
		HeapBytes:   st.HeapBytes,
	}
}
