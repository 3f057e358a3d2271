package worker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// collector exports Stats at scrape time: the hot paths keep plain atomic
// counters and pay nothing for metrics.
type collector struct {
	w     *Worker
	descs map[string]*prometheus.Desc
}

type metricDef struct {
	name, help string
	kind       prometheus.ValueType
	labels     []string
}

var metricDefs = []metricDef{
	{"packets_total", "Packets read from the capture rings.", prometheus.CounterValue, nil},
	{"bytes_total", "Bytes read from the capture rings.", prometheus.CounterValue, nil},
	{"kernel_packets_total", "Packets that passed the capture filters in the kernel.", prometheus.CounterValue, nil},
	{"kernel_drops_total", "Packets the kernel dropped because a capture ring was full.", prometheus.CounterValue, nil},
	{"ring_freezes_total", "Times a capture ring had no free block.", prometheus.CounterValue, nil},
	{"ring_corrupt_lost_total", "Packets lost in capture ring blocks whose layout was inconsistent.", prometheus.CounterValue, nil},
	{"queue_drops_total", "Packets that did not fit a queue: not dissected, or not stored.", prometheus.CounterValue, []string{"queue"}},
	{"shed_packets_total", "Packets not dissected to save memory (over budget) or CPU (a capture behind its ring).", prometheus.CounterValue, []string{"reason"}},
	{"shed_events_total", "Times the worker started shedding dissection.", prometheus.CounterValue, []string{"reason"}},
	{"summarised_packets_total", "Packets of flows no parser claimed, dissected as summaries of their headers.", prometheus.CounterValue, nil},
	{"shedding", "1 while dissection is shed for memory.", prometheus.GaugeValue, nil},
	{"heap_bytes", "Heap in use.", prometheus.GaugeValue, nil},
	{"memory_budget_bytes", "The memory budget (--max-memory).", prometheus.GaugeValue, nil},
	{"flows_total", "Flows the assembler followed.", prometheus.CounterValue, []string{"transport"}},
	{"flows_dropped_total", "Flows refused over the flow limit.", prometheus.CounterValue, nil},
	{"tcp_gaps_total", "Holes in TCP streams (loss, or a buffer bound).", prometheus.CounterValue, nil},
	{"entries_total", "Entries dissected.", prometheus.CounterValue, []string{"proto"}},
	{"dissection_errors_total", "Dissection errors: entries with an error, and parsers dropped after a panic.", prometheus.CounterValue, []string{"kind"}},
	{"store_bytes", "Bytes of the pcap store on disk.", prometheus.GaugeValue, nil},
	{"store_segments", "Segment files of the pcap store.", prometheus.GaugeValue, nil},
	{"store_packets_total", "Packets written to the pcap store.", prometheus.CounterValue, nil},
	{"store_dropped_total", "Packets the pcap store could not write (disk errors).", prometheus.CounterValue, nil},
	{"store_removed_segments_total", "Segments removed from the pcap store.", prometheus.CounterValue, []string{"reason"}},
	{"attached_netns", "Network namespaces captured now.", prometheus.GaugeValue, nil},
	{"targets", "Targets set.", prometheus.GaugeValue, nil},
	{"pod_packets_total", "Packets captured per attached pod.", prometheus.CounterValue, []string{"pod", "netns"}},
	{"pod_bytes_total", "Bytes captured per attached pod.", prometheus.CounterValue, []string{"pod", "netns"}},
	{"pod_kernel_drops_total", "Kernel ring drops per attached pod.", prometheus.CounterValue, []string{"pod", "netns"}},
	{"pod_ring_freezes_total", "Ring freezes per attached pod.", prometheus.CounterValue, []string{"pod", "netns"}},
}

func newMetricsRegistry(w *Worker) *prometheus.Registry {
	c := &collector{w: w, descs: map[string]*prometheus.Desc{}}
	for _, d := range metricDefs {
		c.descs[d.name] = prometheus.NewDesc("shark_worker_"+d.name, d.help, d.labels, nil)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.w.Stats()
	kinds := map[string]prometheus.ValueType{}
	for _, d := range metricDefs {
		kinds[d.name] = d.kind
	}
	emit := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], kinds[name], v, labels...)
	}
	b := func(x bool) float64 {
		if x {
			return 1
		}
		return 0
	}
	emit("packets_total", float64(st.Packets))
	emit("bytes_total", float64(st.Bytes))
	emit("kernel_packets_total", float64(st.KernelPackets))
	emit("kernel_drops_total", float64(st.KernelDrops))
	emit("ring_freezes_total", float64(st.RingFreezes))
	emit("ring_corrupt_lost_total", float64(st.CorruptLost))
	emit("queue_drops_total", float64(st.DissectDrops), "dissect")
	emit("queue_drops_total", float64(st.SinkDrops), "store")
	emit("shed_packets_total", float64(st.ShedPackets), "memory")
	emit("shed_packets_total", float64(st.BehindPackets), "capture_behind")
	emit("shed_events_total", float64(st.ShedEvents), "memory")
	emit("shed_events_total", float64(st.BehindEvents), "capture_behind")
	emit("summarised_packets_total", float64(st.Summarised))
	emit("shedding", b(st.Shedding))
	emit("heap_bytes", float64(st.HeapBytes))
	emit("memory_budget_bytes", float64(st.MemoryBudget))
	emit("flows_total", float64(st.Assemble.TCPFlows), "tcp")
	emit("flows_total", float64(st.Assemble.UDPFlows), "udp")
	emit("flows_dropped_total", float64(st.Assemble.FlowsDropped))
	emit("tcp_gaps_total", float64(st.Assemble.Gaps))
	for _, p := range knownProtos {
		emit("entries_total", float64(st.Entries[p]), p)
	}
	emit("dissection_errors_total", float64(st.EntryErrors), "entry")
	emit("dissection_errors_total", float64(st.Assemble.Panics), "panic")
	if s := st.Store; s != nil {
		emit("store_bytes", float64(s.Bytes))
		emit("store_segments", float64(s.Segments))
		emit("store_packets_total", float64(s.Packets))
		emit("store_dropped_total", float64(s.Dropped))
		emit("store_removed_segments_total", float64(s.Evicted), "size")
		emit("store_removed_segments_total", float64(s.Expired), "ttl")
	}
	emit("attached_netns", float64(st.Attached))
	emit("targets", float64(st.Targets))
	for _, p := range st.Pods {
		ns := strconv.FormatUint(p.Netns, 10)
		emit("pod_packets_total", float64(p.Packets), p.Name, ns)
		emit("pod_bytes_total", float64(p.Bytes), p.Name, ns)
		emit("pod_kernel_drops_total", float64(p.KernelDrops), p.Name, ns)
		emit("pod_ring_freezes_total", float64(p.RingFreezes), p.Name, ns)
	}
}
