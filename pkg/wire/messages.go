package wire

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Hello is a worker's first message.
type Hello struct {
	Node   string `json:"node"`
	Worker string `json:"worker"` // the worker pod's name
	// Sources names the capture sources the worker runs (af_packet,
	// ebpf_tls), for the user to see which are active.
	Sources []string `json:"sources,omitempty"`
	// Version is the worker binary's version, for diagnostics.
	Version string `json:"version,omitempty"`
}

// Entries is a batch of entries from a worker. Workers keep a batch under
// about MaxBatchBytes of JSON.
type Entries struct {
	Entries []entry.Entry `json:"entries"`
}

// Stats are a worker's counters (totals since it started), sent about
// every few seconds. The hub forwards them to subscribers and /metrics.
type Stats struct {
	Node   string    `json:"node"`
	Worker string    `json:"worker"`
	Time   time.Time `json:"time"`
	// Packets and Bytes were read from the capture rings.
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// KernelDrops are packets the kernel dropped (a capture ring was
	// full); QueueDrops are packets that did not fit a worker queue.
	KernelDrops uint64 `json:"kernel_drops"`
	QueueDrops  uint64 `json:"queue_drops"`
	// ShedPackets were not dissected because memory was over budget;
	// Shedding is true while that lasts.
	ShedPackets uint64 `json:"shed_packets"`
	Shedding    bool   `json:"shedding,omitempty"`
	// Entries were dissected; EntriesDropped could not be sent to the hub
	// (the connection was too slow or down).
	Entries        uint64 `json:"entries"`
	EntriesDropped uint64 `json:"entries_dropped"`
	// Sources is the number of captures running now (one per pod network
	// namespace), Targets the number of targets set.
	Sources int `json:"sources"`
	Targets int `json:"targets"`
	// Capture names the capture methods the worker runs (af_packet,
	// ebpf_tls): the hub copies them from the worker's hello.
	Capture   []string `json:"capture,omitempty"`
	HeapBytes uint64   `json:"heap_bytes,omitempty"`
}

// Target is one pod to capture.
type Target struct {
	UID       string   `json:"uid"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	IPs       []string `json:"ips,omitempty"`
	Node      string   `json:"node,omitempty"`
}

// Targets is the body of POST /v1/targets, and the targets message to a
// worker. Each POST replaces the whole set. A worker receives only the
// targets of its node (and those without a node), with the whole IPMap,
// so that it can enrich entries before it filters them.
type Targets struct {
	Targets []Target `json:"targets"`
	IPMap   IPMap    `json:"ipmap,omitempty"`
}

// Filter is a CEL expression over entries (see pkg/filter). From the hub
// to a worker it is the union of the subscribers' filters: "" matches
// everything and "false" nothing.
type Filter struct {
	Expr string `json:"expr"`
}

// FilterNone is the filter pushed to workers while no one subscribes.
const FilterNone = "false"

// Dropped tells a subscriber that N entries matching its filter were
// dropped since the last notice, because its queue was full.
type Dropped struct {
	N uint64 `json:"n"`
}

// Error is a one-line error for a subscriber (a filter that does not
// compile, a bad message).
type Error struct {
	Message string `json:"message"`
}

// HubStats are the hub's own counters (totals since it started).
type HubStats struct {
	// EntriesIn came from workers; EntriesOut were queued to subscribers
	// (an entry queued to two subscribers counts twice); Dropped did not
	// fit a subscriber's queue.
	EntriesIn  uint64 `json:"entries_in"`
	EntriesOut uint64 `json:"entries_out"`
	Dropped    uint64 `json:"dropped"`
	// Duplicates are the second copies of exchanges captured on both
	// sides of a Service's NAT, merged away.
	Duplicates  uint64 `json:"duplicates"`
	Workers     int    `json:"workers"`
	Subscribers int    `json:"subscribers"`
}

// SessionStats is the stats message to subscribers: the latest Stats of
// every connected worker, by worker name, and the hub's counters.
type SessionStats struct {
	Workers []Stats  `json:"workers"`
	Hub     HubStats `json:"hub"`
}

// PcapRequest asks a worker for the packets of its store as a pcapng
// stream (one section, one interface per pod named namespace/pod), sent
// as binary pcap chunks of at most MaxPcapChunk bytes of data, then a
// PcapEnd. The worker may send Credit chunks, and one more for each chunk
// a PcapCredit grants; a worker that sends more is cut off.
type PcapRequest struct {
	ID string `json:"id"`
	// Pods are namespace/name; empty means every pod.
	Pods []string `json:"pods,omitempty"`
	// From and To bound packet times, inclusive; zero does not bound.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Flow selects the packets of one connection.
	Flow *PcapFlow `json:"flow,omitempty"`
	// Follow keeps the export going with packets captured from now on,
	// until a PcapCancel.
	Follow bool `json:"follow,omitempty"`
	Credit int  `json:"credit"`
}

// PcapFlow names a connection the way an entry does: flow_id, and the two
// ends ("ip:port") in either order.
type PcapFlow struct {
	ID        string `json:"id,omitempty"`
	Transport string `json:"transport,omitempty"` // tcp, udp, or empty for either
	A         string `json:"a,omitempty"`
	B         string `json:"b,omitempty"`
}

// PcapCredit lets a worker send Chunks more chunks of export ID.
type PcapCredit struct {
	ID     string `json:"id"`
	Chunks int    `json:"chunks"`
}

// PcapCancel stops export ID; the worker still ends it with a PcapEnd.
type PcapCancel struct {
	ID string `json:"id"`
}

// PcapEnd ends export ID: after the last chunk, or instead of any.
type PcapEnd struct {
	ID      string `json:"id"`
	Error   string `json:"error,omitempty"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}
