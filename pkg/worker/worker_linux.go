package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

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
	// Logf receives one-line notices (attach, detach, drops); nil drops them.
	Logf func(format string, args ...any)
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
	var sinksDone chan struct{}
	if w.sinkQ != nil {
		sinksDone = make(chan struct{})
		go func() { defer close(sinksDone); w.runSinks() }()
	}

	err := w.loop(ctx, pipeDone)

	w.detachAll()
	close(w.dissectQ)
	if w.sinkQ != nil {
		close(w.sinkQ)
		<-sinksDone
	}
	if err != nil {
		return err
	}
	// The pipeline drains the queue and closes every flow.
	select {
	case r := <-pipeDone:
		return r.err
	case <-time.After(30 * time.Second):
		cancelPipe()
		return (<-pipeDone).err
	}
}

type pipeResult struct {
	st  pipeline.Stats
	err error
}

func (w *Worker) runPipeline(ctx context.Context) pipeResult {
	shards := w.opts.Shards
	m := newMux(w.dissectQ, w.tables.load)
	st, err := pipeline.Run(ctx, m, w.opts.Out, pipeline.Options{
		Registry:   w.reg,
		Render:     w.opts.Render,
		Annotate:   w.annotate,
		Shards:     shards,
		Assemble:   w.opts.Assemble,
		Live:       true,
		RoundStats: w.roundStats,
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

// want is a namespace to capture and the target it serves.
type want struct {
	ref    nsRef
	target Target
}

// reconcile attaches the namespaces of the targets and releases the rest.
func (w *Worker) reconcile() {
	desired := w.desired()
	changed := false
	for ino, c := range w.capsSnapshot() {
		if _, ok := desired[ino]; !ok || c.failed.Load() {
			w.detach(c)
			changed = true
		}
	}
	now := time.Now()
	for ino := range w.retry {
		if _, ok := desired[ino]; !ok {
			delete(w.retry, ino)
		}
	}
	for ino, wt := range desired {
		if w.capture(ino) != nil || now.Before(w.retry[ino]) {
			continue
		}
		if err := w.attach(wt); err != nil {
			w.retry[ino] = now.Add(retryAttach)
			w.opts.Logf("cannot capture %s (netns %d): %v", wt.target.DisplayName(), ino, err)
			continue
		}
		delete(w.retry, ino)
		changed = true
	}
	if changed {
		w.publish()
	}
}

// desired resolves the targets to the namespaces they are in now.
func (w *Worker) desired() map[uint64]want {
	out := map[uint64]want{}
	uids := map[string]bool{}
	byUID := map[string]Target{}
	for _, t := range w.Targets() {
		if t.UID != "" {
			uids[t.UID] = true
			byUID[t.UID] = t
			continue
		}
		ino, err := afpacket.NetnsInode(t.Netns)
		if err != nil {
			w.warnOnce("netns:"+t.Netns, "network namespace %s: %v", t.Netns, err)
			continue
		}
		if _, dup := out[ino]; !dup {
			out[ino] = want{ref: nsRef{ino: ino, path: t.Netns}, target: t}
		}
	}
	if len(uids) == 0 {
		return out
	}
	found, err := w.scanner.scan(uids, time.Now())
	if err != nil {
		w.warnOnce("proc", "scanning %s: %v", w.opts.ProcRoot, err)
		return out
	}
	for uid, refs := range found {
		t := byUID[uid]
		for _, ref := range refs {
			if ref.ino == w.selfNetns {
				w.warnOnce("host:"+uid, "pod %s uses the host network namespace: not captured", t.DisplayName())
				continue
			}
			if _, dup := out[ref.ino]; !dup {
				out[ref.ino] = want{ref: ref, target: t}
			}
		}
	}
	return out
}

func (w *Worker) warnOnce(key, format string, args ...any) {
	if w.warned[key] {
		return
	}
	w.warned[key] = true
	w.opts.Logf(format, args...)
}

func (w *Worker) capsSnapshot() map[uint64]*netnsCapture {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	out := make(map[uint64]*netnsCapture, len(w.caps))
	for k, v := range w.caps {
		out[k] = v
	}
	return out
}

func (w *Worker) capture(ino uint64) *netnsCapture {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	return w.caps[ino]
}

// attach opens a capture in the namespace and starts its reader.
func (w *Worker) attach(wt want) error {
	ns, err := afpacket.OpenNetns(wt.ref.path)
	if err != nil {
		return err
	}
	defer ns.Close()
	if ns.Ino != wt.ref.ino {
		return fmt.Errorf("the process left namespace %d", wt.ref.ino)
	}
	copts := w.opts.Capture
	copts.Interface = wt.target.Interface
	h, err := afpacket.Open(ns, copts)
	if err != nil {
		return err
	}
	var ar *addrReader
	if err := ns.Do(func() (err error) { ar, err = openAddrReader(); return err }); err != nil {
		h.Close()
		return err
	}
	t := wt.target
	info := &podInfo{
		index:     len(w.ifaces),
		iface:     capture.Interface{Name: t.DisplayName(), LinkType: capture.LinkRaw, SnapLen: copts.SnapLen},
		namespace: t.Namespace,
		pod:       t.Name,
		uid:       t.UID,
		netns:     ns.Ino,
	}
	for _, s := range w.opts.Sinks {
		info.sinkIDs = append(info.sinkIDs, s.AddInterface(info.iface))
	}
	c := &netnsCapture{w: w, ino: ns.Ino, info: info, target: t, h: h, ar: ar, done: make(chan struct{})}
	c.refreshAddrs()
	w.ifaces = append(w.ifaces, info)
	w.cmu.Lock()
	w.caps[ns.Ino] = c
	w.cmu.Unlock()
	w.publish() // before the reader runs: its interface must exist
	go c.run()
	w.opts.Logf("attached %s (netns %d, addresses %v)", info.iface.Name, ns.Ino, info.addrs())
	return nil
}

// detach stops a capture. Its reader exits within the poll timeout and
// closing the socket takes the kernel a while (synchronize_net), so that
// is finished in the background: the loop moves on at once.
func (w *Worker) detach(c *netnsCapture) {
	c.stop.Store(true)
	w.cmu.Lock()
	delete(w.caps, c.ino)
	w.closing[c] = struct{}{}
	w.cmu.Unlock()
	w.closers.Add(1)
	go func() {
		defer w.closers.Done()
		<-c.done
		c.ar.close()
		w.cmu.Lock()
		delete(w.closing, c)
		w.gone.add(c.counters())
		w.cmu.Unlock()
		if c.err != nil {
			w.opts.Logf("capture of %s failed: %v", c.info.iface.Name, c.err)
		}
		w.opts.Logf("released %s (netns %d)", c.info.iface.Name, c.ino)
	}()
}

// detachAll releases every capture and waits until they are closed.
func (w *Worker) detachAll() {
	for _, c := range w.capsSnapshot() {
		w.detach(c)
	}
	w.closers.Wait()
	w.publish()
}

// publish rebuilds the lookup table of the hot paths.
func (w *Worker) publish() {
	caps := w.capsSnapshot()
	attached := make([]*podInfo, 0, len(caps))
	for _, c := range caps {
		attached = append(attached, c.info)
	}
	w.tables.p.Store(buildTable(slices.Clip(w.ifaces), attached))
}

// periodic polls kernel counters and addresses, and maintains the sinks.
func (w *Worker) periodic() {
	changed := false
	for _, c := range w.capsSnapshot() {
		c.pollKernel()
		if c.refreshAddrs() {
			changed = true
		}
	}
	if changed {
		w.publish()
	}
	for _, s := range w.opts.Sinks {
		if m, ok := s.(Maintainer); ok {
			m.Maintain()
		}
	}
}

// reportDrops logs what was lost since the last report, if anything.
func (w *Worker) reportDrops() {
	now := w.totals()
	d := now.sub(w.lastReport)
	w.lastReport = now
	if d.kernelDrops == 0 && d.dissectDrops == 0 && d.sinkDrops == 0 && d.shed == 0 {
		return
	}
	w.opts.Logf("last %v: %d packets dropped by the kernel (ring full), %d not dissected (queue full), %d not stored (queue full), %d not dissected (memory budget)",
		reportPeriod, d.kernelDrops, d.dissectDrops, d.sinkDrops, d.shed)
}

// runSinks writes queued batches to every sink.
func (w *Worker) runSinks() {
	for b := range w.sinkQ {
		t := w.tables.load()
		if b.iface < len(t.ifaces) {
			info := t.ifaces[b.iface]
			for i, s := range w.opts.Sinks {
				s.Write(info.sinkIDs[i], b.pkts)
			}
		}
		b.release()
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
}

func (w *Worker) roundStats(shard int, st assemble.Stats) {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	for len(w.asmStats) <= shard {
		w.asmStats = append(w.asmStats, assemble.Stats{})
	}
	w.asmStats[shard] = st
}

// dispatch queues a full batch to the sinks and to dissection, never
// waiting.
func (w *Worker) dispatch(c *netnsCapture, b *batch) {
	n := uint64(len(b.pkts))
	c.packets.Add(n)
	c.bytes.Add(uint64(b.size))
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
	dissect := n - uint64(b.nskip)
	switch {
	case dissect == 0:
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

	stop   atomic.Bool
	failed atomic.Bool
	done   chan struct{}
	err    error // set before done closes

	packets, bytes, dissectDrops, sinkDrops, shed atomic.Uint64
	kmu                                           sync.Mutex
	kernel                                        afpacket.Stats
}

// run reads the ring until stopped. It owns the handle and closes it.
func (c *netnsCapture) run() {
	defer close(c.done)
	defer func() {
		c.h.Close()
		c.pollKernel()
	}()
	boostThread()
	w := c.w
	var p capture.Packet
	var b *batch
	var first time.Time
	for !c.stop.Load() {
		err := c.h.Next(&p)
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				if b != nil {
					w.dispatch(c, b)
					b = nil
				}
				continue
			}
			c.err = err
			c.failed.Store(true)
			select {
			case w.failed <- c.ino:
			default:
			}
			break
		}
		if b != nil && !b.fits(len(p.Data)) {
			w.dispatch(c, b)
			b = nil
		}
		if b == nil {
			b = getBatch(c.info.index)
			first = p.Timestamp
		}
		b.add(&p, w.tables.load().skipDissect(c.ino, p.Data))
		if p.Timestamp.Sub(first) >= flushAge {
			w.dispatch(c, b)
			b = nil
		}
	}
	if b != nil {
		w.dispatch(c, b)
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
	kernelPackets, kernelDrops, kernelFreezes     uint64
}

func (c *netnsCapture) counters() counters {
	c.kmu.Lock()
	k := c.kernel
	c.kmu.Unlock()
	return counters{
		packets: c.packets.Load(), bytes: c.bytes.Load(),
		dissectDrops: c.dissectDrops.Load(), sinkDrops: c.sinkDrops.Load(), shed: c.shed.Load(),
		kernelPackets: k.Packets, kernelDrops: k.Drops, kernelFreezes: k.Freezes,
	}
}

func (a *counters) add(b counters) {
	a.packets += b.packets
	a.bytes += b.bytes
	a.dissectDrops += b.dissectDrops
	a.sinkDrops += b.sinkDrops
	a.shed += b.shed
	a.kernelPackets += b.kernelPackets
	a.kernelDrops += b.kernelDrops
	a.kernelFreezes += b.kernelFreezes
}

func (a counters) sub(b counters) counters {
	return counters{
		packets: a.packets - b.packets, bytes: a.bytes - b.bytes,
		dissectDrops: a.dissectDrops - b.dissectDrops, sinkDrops: a.sinkDrops - b.sinkDrops, shed: a.shed - b.shed,
		kernelPackets: a.kernelPackets - b.kernelPackets, kernelDrops: a.kernelDrops - b.kernelDrops,
		kernelFreezes: a.kernelFreezes - b.kernelFreezes,
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
