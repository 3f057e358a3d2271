package worker

import (
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubectl-shark/kubectl-shark/pkg/assemble"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/all"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
)

// Sink receives every captured packet, dissected or not: the pcap store,
// or a capture file.
type Sink interface {
	// AddInterface registers a capture interface (a pod) and returns the
	// id Write takes.
	AddInterface(iface capture.Interface) int
	// Write stores packets of one interface; it must not keep pkts.
	Write(id int, pkts []capture.Packet)
}

// Maintainer is implemented by sinks that want a call about once a second
// (the store expires old segments).
type Maintainer interface{ Maintain() }

// Defaults of Options.
const (
	DefaultScanInterval = 250 * time.Millisecond
	DefaultQueueBytes   = 64 << 20
	DefaultMaxMemory    = 512 << 20
	// flushAge bounds how long a capture holds a batch before queueing it.
	flushAge     = 50 * time.Millisecond
	statsPeriod  = time.Second
	reportPeriod = 10 * time.Second
	retryAttach  = 200 * time.Millisecond
)

// Options configure a Worker.
type Options struct {
	// Node and Name are copied into entries (node, worker) and their
	// endpoints' node.
	Node, Name string
	// Out receives the rendered entries; nil discards them.
	Out io.Writer
	// Render renders an entry (and filters: return dst to leave it out);
	// nil writes NDJSON.
	Render pipeline.RenderFunc
	// Dissect shapes entries; the zero value means dissect.DefaultOptions.
	// Source is always af_packet.
	Dissect dissect.Options
	// Capture configures each namespace's socket; Interface is taken from
	// the target.
	Capture afpacket.Options
	// Sinks get every captured packet.
	Sinks []Sink
	// NoDissect leaves out dissection: packets go to the sinks only, as
	// for raw packets to Wireshark, where no entry would be shown.
	NoDissect bool
	// MaxMemory is the heap budget in bytes; 0 means DefaultMaxMemory,
	// negative means none.
	MaxMemory int64
	// QueueBytes bounds the packets queued to dissection, and to the sinks.
	QueueBytes int
	// ScanInterval is how often /proc is scanned for target pods.
	ScanInterval time.Duration
	// ProcRoot is the proc file system: /proc, or the host's when mounted
	// elsewhere.
	ProcRoot string
	// Shards is the pipeline's shard count; 0 means GOMAXPROCS.
	Shards int
	// Assemble bounds reassembly; zero values are derived from MaxMemory.
	Assemble assemble.Options
	// RingBudget bounds the kernel rings of all captures together: each
	// new capture gets an equal share, between minRing and
	// Capture.RingSize. 0 means a quarter of MaxMemory, within 16–128 MiB.
	RingBudget int
	// Logf receives one-line notices (attach, detach, drops); nil drops them.
	Logf func(format string, args ...any)
	// ZeroCopy lets batches alias the kernel ring's blocks while the
	// consumers keep up, instead of copying every packet out. It costs
	// about a third less CPU per packet, but blocks the consumers hold
	// are blocks the kernel cannot fill: under heavy load a stalled reader
	// overflows the rest of the ring sooner (kernel drops). Off by default.
	ZeroCopy bool
	// TLS adds the eBPF tracer's TLS plaintext of the targets' processes
	// (tls_linux.go); where it cannot load, one line says why and capture
	// goes on without it.
	TLS bool
}

func (o Options) withDefaults() Options {
	if o.Dissect == (dissect.Options{}) {
		o.Dissect = dissect.DefaultOptions()
	}
	o.Dissect.Source = entry.SourceAFPacket
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Render == nil {
		o.Render = appendNDJSON
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = DefaultScanInterval
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	o.Capture = o.Capture.WithDefaults()
	if o.RingBudget <= 0 {
		o.RingBudget = 128 << 20
		if o.MaxMemory > 0 {
			o.RingBudget = int(min(128<<20, max(o.MaxMemory/4, 16<<20)))
		}
	}
	if o.MaxMemory > 0 && o.Assemble == (assemble.Options{}) {
		// Reassembly buffers and flow state get half the budget.
		shards := int64(o.Shards)
		if shards <= 0 {
			shards = int64(runtime.GOMAXPROCS(0))
		}
		o.Assemble.MaxTotalBufferBytes = int(min(32<<20, max(o.MaxMemory/4/shards, 1<<20)))
		o.Assemble.MaxFlows = int(min(65536, max(o.MaxMemory/4/shards/(16<<10), 1024)))
	}
	return o
}

func appendNDJSON(dst []byte, e *entry.Entry) []byte {
	return append(render.AppendJSON(dst, e), '\n')
}

// Worker captures its targets. Create it with New, drive it with Run.
type Worker struct {
	opts    Options
	reg     *dissect.Registry
	metrics *prometheus.Registry

	tmu     sync.Mutex
	targets []Target
	kick    chan struct{}

	tables   tableStore
	dissectQ chan *batch
	counted  countedFlows // flows the pipeline only counts
	sinkQ    chan *batch
	mem      *memoryGauge
	running  atomic.Bool

	// Owned by Run's goroutine.
	scanner   *procScanner
	ifaces    []*podInfo
	selfNetns uint64
	warned    map[string]bool
	retry     map[uint64]time.Time
	failed    chan uint64

	cmu      sync.Mutex // guards caps, closing and gone
	caps     map[uint64]*netnsCapture
	closing  map[*netnsCapture]struct{} // released, not closed yet
	closers  sync.WaitGroup
	gone     counters // captures closed so far
	asmStats []assemble.Stats

	entries     map[string]*atomic.Uint64
	entryErrors atomic.Uint64
	lastReport  counters

	tls *tlsSource // nil unless Options.TLS and the tracer loaded
}

// New returns a worker with no targets.
func New(opts Options) (*Worker, error) {
	opts = opts.withDefaults()
	if err := opts.Capture.Validate(); err != nil {
		return nil, err
	}
	queue := max(opts.QueueBytes/batchBytes, 4)
	w := &Worker{
		opts:     opts,
		reg:      all.Registry(opts.Dissect),
		kick:     make(chan struct{}, 1),
		dissectQ: make(chan *batch, queue),
		mem:      newMemoryGauge(opts.MaxMemory),
		scanner:  newProcScanner(opts.ProcRoot),
		warned:   map[string]bool{},
		retry:    map[uint64]time.Time{},
		failed:   make(chan uint64, 64),
		caps:     map[uint64]*netnsCapture{},
		closing:  map[*netnsCapture]struct{}{},
		entries:  map[string]*atomic.Uint64{},
	}
	if len(opts.Sinks) > 0 {
		w.sinkQ = make(chan *batch, queue)
	}
	for _, p := range knownProtos {
		w.entries[p] = new(atomic.Uint64)
	}
	w.metrics = newMetricsRegistry(w)
	w.startTLS()
	return w, nil
}

// knownProtos are the protocols counted by name; others count as "other".
var knownProtos = []string{
	entry.ProtoHTTP, entry.ProtoHTTP2, entry.ProtoGRPC, entry.ProtoGraphQL, entry.ProtoDNS,
	entry.ProtoRedis, entry.ProtoKafka, entry.ProtoAMQP, entry.ProtoPostgres, entry.ProtoMySQL,
	entry.ProtoWS, entry.ProtoTLS, entry.ProtoTCP, entry.ProtoUDP, "other",
}

// Metrics returns the worker's Prometheus registry. The worker opens no
// port: the hub connection (or sniff's optional --metrics-addr) serves it.
func (w *Worker) Metrics() *prometheus.Registry { return w.metrics }

// SetTargets replaces the target set; Run attaches and releases captures
// to match within a scan.
func (w *Worker) SetTargets(ts []Target) error {
	for _, t := range ts {
		if err := t.Validate(); err != nil {
			return err
		}
	}
	cp := slices.Clone(ts)
	for i := range cp {
		cp[i].UID = normalizeUID(cp[i].UID)
	}
	w.tmu.Lock()
	w.targets = cp
	w.tmu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

// Targets returns the current target set.
func (w *Worker) Targets() []Target {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	return slices.Clone(w.targets)
}

// Run captures until ctx is done, then releases every capture, lets the
// pipeline finish the flows in progress, and returns. It fails early only
// when the output fails.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("worker: Run called twice")
	}
	if ino, err := afpacket.NetnsInode("/proc/self/ns/net"); err == nil {
		w.selfNetns = ino
	}
	pipeDone := make(chan pipeResult, 1)
	pctx, cancelPipe := context.WithCancel(context.Background())
	defer cancelPipe()
	go func() { pipeDone <- w.runPipeline(pctx) }()
	w.runTLS()
	var sinksDone chan struct{}
	if w.sinkQ != nil {
		sinksDone = make(chan struct{})
		go func() { defer close(sinksDone); w.runSinks() }()
	}

	err := w.loop(ctx, pipeDone)

	w.stopTLS()
	w.detachAll()
	close(w.dissectQ)
	if w.sinkQ != nil {
		close(w.sinkQ)
		<-sinksDone
	}
	if err != nil {
		w.drainDissect() // the pipeline has stopped
		return err
	}
	// The pipeline drains the queue and closes every flow.
	var r pipeResult
	select {
	case r = <-pipeDone:
	case <-time.After(30 * time.Second):
		cancelPipe()
		r = <-pipeDone
	}
	w.drainDissect()
	return r.err
}

// drainDissect releases what a stopped pipeline left queued, so that the
// ring blocks the batches alias go back and closed rings are unmapped.
func (w *Worker) drainDissect() {
	for b := range w.dissectQ {
		b.release()
	}
}

type pipeResult struct {
	st  pipeline.Stats
	err error
}

func (w *Worker) runPipeline(ctx context.Context) pipeResult {
	shards := w.opts.Shards
	m := newMux(w.dissectQ, w.tables.load)
	st, err := pipeline.Run(ctx, m, w.pipelineOut(), pipeline.Options{
		Registry:   w.reg,
		Render:     w.opts.Render,
		Annotate:   w.annotate,
		Shards:     shards,
		Assemble:   w.opts.Assemble,
		Live:       true,
		RoundStats: w.roundStats,
		OnCounted:  w.counted.set,
	})
	return pipeResult{st: st, err: err}
}

// loop reconciles captures with targets until ctx is done.
func (w *Worker) loop(ctx context.Context, pipeDone <-chan pipeResult) error {
	scan := time.NewTicker(w.opts.ScanInterval)
	defer scan.Stop()
	mem := time.NewTicker(100 * time.Millisecond)
	defer mem.Stop()
	lastStats, lastReport := time.Now(), time.Now()
	w.reconcile()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-pipeDone:
			if r.err == nil {
				r.err = errors.New("worker: the pipeline stopped")
			}
			return r.err
		case <-w.kick:
			w.reconcile()
		case ino := <-w.failed:
			w.retry[ino] = time.Now().Add(retryAttach)
			w.reconcile()
		case <-mem.C:
			w.checkMemory()
		case now := <-scan.C:
			w.reconcile()
			if now.Sub(lastStats) >= statsPeriod {
				lastStats = now
				w.periodic()
			}
			if now.Sub(lastReport) >= reportPeriod {
				lastReport = now
				w.reportDrops()
			}
		}
		w.syncTLS()
	}
}

func (w *Worker) checkMemory() {
	started, stopped := w.mem.update()
	switch {
	case started:
		w.opts.Logf("memory %d MiB over the budget of %d MiB: dissection paused, packets still stored", w.mem.inUse.Load()>>20, w.mem.budget>>20)
	case stopped:
		w.opts.Logf("memory %d MiB back under the budget: dissection resumed", w.mem.inUse.Load()>>20)
	}
}

// annotate runs on the pipeline's shards for every entry.
func (w *Worker) annotate(e *entry.Entry, iface int) {
	c := w.entries[e.Proto]
	if c == nil {
		c = w.entries["other"]
	}
	c.Add(1)
	if e.Error != "" {
		w.entryErrors.Add(1)
	}
	e.Node, e.Worker = w.opts.Node, w.opts.Name
	w.tables.load().annotate(e, iface, w.opts.Node)
	w.annotateTLS(e, iface)
}

func (w *Worker) roundStats(shard int, st assemble.Stats) {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	for len(w.asmStats) <= shard {
		w.asmStats = append(w.asmStats, assemble.Stats{})
	}
	w.asmStats[shard] = st
}
