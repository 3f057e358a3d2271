package hub

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// metrics are the hub's Prometheus metrics, in a registry of its own.
// Hot-path counters are plain atomics, read at scrape time.
type metrics struct {
	reg          *prometheus.Registry
	unauthorized prometheus.Counter
	badMessages  *prometheus.CounterVec
	pcapExports  prometheus.Counter
	pcapPackets  prometheus.Counter
	selfDeletes  *prometheus.CounterVec
}

func newMetrics(h *server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		unauthorized: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shark_hub_unauthorized_total", Help: "Requests refused for a missing or wrong token."}),
		badMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shark_hub_bad_messages_total", Help: "Messages that could not be understood, by sender."}, []string{"peer"}),
		pcapExports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shark_hub_pcap_exports_total", Help: "pcap exports served."}),
		pcapPackets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shark_hub_pcap_packets_total", Help: "Packets written by pcap exports."}),
		selfDeletes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shark_hub_self_deletes_total", Help: "Calls of the self-delete func, by result."}, []string{"result"}),
	}
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		m.unauthorized, m.badMessages, m.pcapExports, m.pcapPackets, m.selfDeletes,
		counter("shark_hub_entries_in_total", "Entries received from workers.", h.in.Load),
		counter("shark_hub_entries_out_total", "Entries queued to subscribers (once per subscriber).", h.out.Load),
		counter("shark_hub_entries_dropped_total", "Entries dropped because a subscriber's queue was full.", h.dropped.Load),
		gauge("shark_hub_subscribers", "Subscribers connected.", func() float64 { return float64(len(*h.subs.Load())) }),
		gauge("shark_hub_workers", "Workers connected.", func() float64 { return float64(len(*h.workers.Load())) }),
		gauge("shark_hub_idle_seconds", "Seconds since the last client heartbeat.",
			func() float64 { return h.idle(time.Now()).Seconds() }),
		newConnCollector(h),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// connCollector exports per-connection metrics at scrape time: the drops
// of each subscriber, and for each worker the entries it sent and the
// counters of its latest stats.
type connCollector struct {
	h             *server
	subDropped    *prometheus.Desc
	workerEntries *prometheus.Desc
	workerStats   []workerStat
}

// workerStat is one field of wire.Stats exported as shark_worker_<name>.
type workerStat struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	get  func(*wire.Stats) float64
}

func newConnCollector(h *server) *connCollector {
	labels := []string{"worker", "node"}
	stat := func(name, help string, kind prometheus.ValueType, get func(*wire.Stats) float64) workerStat {
		return workerStat{prometheus.NewDesc("shark_worker_"+name, help+" (forwarded by the hub)", labels, nil), kind, get}
	}
	const c, g = prometheus.CounterValue, prometheus.GaugeValue
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return &connCollector{
		h: h,
		subDropped: prometheus.NewDesc("shark_hub_subscriber_dropped_total",
			"Entries dropped for one subscriber because its queue was full.", []string{"subscriber"}, nil),
		workerEntries: prometheus.NewDesc("shark_hub_worker_entries_total",
			"Entries received from one worker.", labels, nil),
		workerStats: []workerStat{
			stat("packets_total", "Packets read from the capture rings.", c, func(s *wire.Stats) float64 { return float64(s.Packets) }),
			stat("bytes_total", "Bytes read from the capture rings.", c, func(s *wire.Stats) float64 { return float64(s.Bytes) }),
			stat("kernel_drops_total", "Packets the kernel dropped.", c, func(s *wire.Stats) float64 { return float64(s.KernelDrops) }),
			stat("queue_drops_total", "Packets that did not fit a worker queue.", c, func(s *wire.Stats) float64 { return float64(s.QueueDrops) }),
			stat("shed_packets_total", "Packets not dissected for memory.", c, func(s *wire.Stats) float64 { return float64(s.ShedPackets) }),
			stat("entries_total", "Entries dissected.", c, func(s *wire.Stats) float64 { return float64(s.Entries) }),
			stat("entries_dropped_total", "Entries not sent to the hub.", c, func(s *wire.Stats) float64 { return float64(s.EntriesDropped) }),
			stat("sources", "Captures running.", g, func(s *wire.Stats) float64 { return float64(s.Sources) }),
			stat("targets", "Targets set.", g, func(s *wire.Stats) float64 { return float64(s.Targets) }),
			stat("shedding", "1 while dissection is shed.", g, func(s *wire.Stats) float64 { return b(s.Shedding) }),
			stat("heap_bytes", "Heap in use.", g, func(s *wire.Stats) float64 { return float64(s.HeapBytes) }),
		},
	}
}

func (c *connCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.subDropped
	ch <- c.workerEntries
	for _, s := range c.workerStats {
		ch <- s.desc
	}
}

func (c *connCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range *c.h.subs.Load() {
		ch <- prometheus.MustNewConstMetric(c.subDropped, prometheus.CounterValue,
			float64(s.droppedTotal.Load()), strconv.FormatUint(s.id, 10))
	}
	for _, w := range *c.h.workers.Load() {
		ch <- prometheus.MustNewConstMetric(c.workerEntries, prometheus.CounterValue,
			float64(w.entries.Load()), w.name, w.node)
		st := w.stats.Load()
		if st == nil {
			continue
		}
		for _, s := range c.workerStats {
			ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.get(st), w.name, w.node)
		}
	}
}
