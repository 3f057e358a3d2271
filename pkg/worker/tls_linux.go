package worker

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/tracer"
)

// The TLS source: the eBPF tracer's plaintext, replayed as synthetic TCP
// (tls_conn.go) on one capture interface per pod namespace, "tls:ns/pod".
// It has a pipeline of its own: a synthetic flow has the same addresses as
// the ciphertext flow the pod's AF_PACKET capture sees, and one assembler
// would mix the two. The AF_PACKET copy yields only the TLS hello entry, the
// plaintext copy the requests, so nothing is reported twice.

const (
	tlsScanPeriod  = time.Second
	tlsListenTTL   = time.Second
	tlsQueueDepth  = 64 // batches
	tlsStopTimeout = 5 * time.Second
)

// tlsSource is the worker's TLS tracing, when it runs.
type tlsSource struct {
	w  *Worker
	tr *tracer.Tracer
	q  chan *batch

	// Owned by Run's goroutine (sync).
	ifaces map[uint64]*podInfo // pod netns inode → its TLS interface
	netns  []uint64            // the namespaces traced now

	// isTLS marks TLS interfaces by index, for annotate on the shards.
	isTLS atomic.Pointer[[]bool]
	// byNetns maps netns inode → TLS interface index, for the reader.
	byNetns atomic.Pointer[map[uint32]int]

	// Owned by the reader goroutine.
	replay  *tlsReplay
	batches map[int]*batch
	oldest  time.Time
	listen  map[uint32]listenPorts

	queueDrops, sinkDrops, noIface, packets atomic.Uint64
	replayStats                             atomic.Pointer[tlsConnStats]

	scanWarned bool // owned by scan

	out      *lineWriters
	kick     chan struct{}
	stop     chan struct{}
	done     sync.WaitGroup
	pipeDone chan error
}

type listenPorts struct {
	ports map[uint16]bool
	at    time.Time
}

// startTLS loads the tracer when Options.TLS asks for it, from New, so
// that Sources is known before Run. Where it cannot load, one line says why
// and the worker goes on with AF_PACKET alone. Until Run, it traces no
// namespace.
func (w *Worker) startTLS() {
	if !w.opts.TLS {
		return
	}
	tr, err := tracer.New(tracer.Options{ProcRoot: w.opts.ProcRoot, Logf: w.opts.Logf})
	if err != nil {
		w.opts.Logf("eBPF TLS tracing unavailable: %v; capturing with AF_PACKET only", err)
		return
	}
	s := &tlsSource{
		w: w, tr: tr,
		q:        make(chan *batch, tlsQueueDepth),
		ifaces:   map[uint64]*podInfo{},
		batches:  map[int]*batch{},
		listen:   map[uint32]listenPorts{},
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		pipeDone: make(chan error, 1),
	}
	s.replay = newTLSReplay(s.emit)
	s.out = newLineWriters(w.opts.Out)
	s.isTLS.Store(&[]bool{})
	s.byNetns.Store(&map[uint32]int{})
	w.tls = s
	w.opts.Logf("eBPF TLS tracing active (OpenSSL, BoringSSL, Go crypto/tls)")
}

// pipelineOut is where the AF_PACKET pipeline writes: with a TLS pipeline
// writing too, both go through writers that keep lines whole.
func (w *Worker) pipelineOut() io.Writer {
	if w.tls == nil {
		return w.opts.Out
	}
	return w.tls.out.writer()
}

// runTLS starts the TLS pipeline, the event reader and the scanner.
func (w *Worker) runTLS() {
	s := w.tls
	if s == nil {
		return
	}
	out := w.pipelineOut()
	go func() {
		_, err := pipeline.Run(context.Background(), newMux(s.q, w.tables.load), out, pipeline.Options{
			Registry: w.reg,
			Render:   w.opts.Render,
			Annotate: w.annotate,
			Shards:   1,
			Assemble: w.opts.Assemble,
			Live:     true,
		})
		s.pipeDone <- err
	}()
	s.done.Add(2)
	go func() { defer s.done.Done(); s.read() }()
	go func() { defer s.done.Done(); s.scan() }()
}

// stopTLS stops the reader and scanner, then lets the TLS pipeline finish.
// It runs before the sink queue closes.
func (w *Worker) stopTLS() {
	s := w.tls
	if s == nil {
		return
	}
	close(s.stop)
	s.tr.Close()
	s.done.Wait()
	close(s.q)
	select {
	case err := <-s.pipeDone:
		if err != nil {
			w.opts.Logf("TLS pipeline: %v", err)
		}
	case <-time.After(tlsStopTimeout):
	}
	if st := s.stats(); st != (TLSStats{}) {
		w.opts.Logf("TLS: %d connections, %d chunks replayed; dropped: %d (other end traced), %d (no socket), %d (queue full), %d (ring full), %d bytes truncated",
			st.Conns, st.Chunks, st.DupSide, st.NoTuple, st.QueueDrops, st.RingFull, st.TruncatedBytes)
	}
}

// syncTLS gives every attached namespace a TLS interface and traces the
// namespaces attached now. It runs on Run's goroutine.
func (w *Worker) syncTLS() {
	s := w.tls
	if s == nil {
		return
	}
	caps := w.capsSnapshot()
	netns := make([]uint64, 0, len(caps))
	added := false
	for ino, c := range caps {
		netns = append(netns, ino)
		if s.ifaces[ino] == nil {
			s.ifaces[ino] = w.addTLSInterface(c.info)
			added = true
		}
	}
	slices.Sort(netns)
	if !added && slices.Equal(netns, s.netns) {
		return
	}
	s.netns = netns
	if added {
		s.publishInterfaces(w.ifaces)
		w.publish()
	}
	if err := s.tr.SetNetns(netns); err != nil {
		w.opts.Logf("TLS tracing: %v", err)
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// addTLSInterface registers the TLS interface of a pod's namespace.
func (w *Worker) addTLSInterface(pod *podInfo) *podInfo {
	info := &podInfo{
		index:     len(w.ifaces),
		iface:     capture.Interface{Name: "tls:" + pod.iface.Name, LinkType: capture.LinkRaw, SnapLen: 65535},
		namespace: pod.namespace,
		pod:       pod.pod,
		uid:       pod.uid,
		netns:     pod.netns,
	}
	for _, sk := range w.opts.Sinks {
		info.sinkIDs = append(info.sinkIDs, sk.AddInterface(info.iface))
	}
	w.ifaces = append(w.ifaces, info)
	return info
}

func (s *tlsSource) publishInterfaces(ifaces []*podInfo) {
	isTLS := make([]bool, len(ifaces))
	byNetns := make(map[uint32]int, len(s.ifaces))
	for _, p := range s.ifaces {
		isTLS[p.index] = true
		byNetns[uint32(p.netns)] = p.index
	}
	s.isTLS.Store(&isTLS)
	s.byNetns.Store(&byNetns)
}

// annotateTLS marks the entries of TLS interfaces.
func (w *Worker) annotateTLS(e *entry.Entry, iface int) {
	if w.tls == nil {
		return
	}
	if t := *w.tls.isTLS.Load(); iface >= 0 && iface < len(t) && t[iface] {
		e.TLS = true
		e.Source = entry.SourceEBPFTLS
		w.tls.replay.procs.annotate(e, iface)
	}
}

// Sources names the capture sources running: af_packet, and ebpf_tls when
// the tracer loaded.
func (w *Worker) Sources() []string {
	if w.tls != nil {
		return []string{entry.SourceAFPacket, entry.SourceEBPFTLS}
	}
	return []string{entry.SourceAFPacket}
}

// TLSStats count the TLS source's work and losses.
type TLSStats struct {
	Conns, Chunks, Packets               uint64
	DupSide, NoTuple, TableFull, NoIface uint64
	QueueDrops, SinkDrops                uint64
	RingFull, TruncatedBytes             uint64
	Binaries                             int
}

// TLSStats returns the TLS source's counters; zero when it is off.
func (w *Worker) TLSStats() TLSStats {
	if w.tls == nil {
		return TLSStats{}
	}
	return w.tls.stats()
}

func (s *tlsSource) stats() TLSStats {
	var st TLSStats
	if r := s.replayStats.Load(); r != nil {
		st.Conns, st.Chunks, st.DupSide, st.NoTuple, st.TableFull = r.conns, r.chunks, r.dupSide, r.noTuple, r.tableFull
	}
	st.Packets, st.NoIface = s.packets.Load(), s.noIface.Load()
	st.QueueDrops, st.SinkDrops = s.queueDrops.Load(), s.sinkDrops.Load()
	ts := s.tr.Stats()
	st.RingFull, st.TruncatedBytes, st.Binaries = ts.RingFull, ts.TruncatedBytes, ts.Binaries
	return st
}

// scan attaches probes to the binaries of traced processes, at once when
// the traced namespaces change and every tlsScanPeriod after.
func (s *tlsSource) scan() {
	t := time.NewTicker(tlsScanPeriod)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-t.C:
		}
		if _, err := s.tr.Scan(); err != nil {
			if !s.scanWarned {
				s.scanWarned = true
				s.w.opts.Logf("TLS tracing: scanning processes: %v", err)
			}
		}
	}
}

// read replays events until the tracer closes, flushing batches at least
// every flushAge.
func (s *tlsSource) read() {
	var ev tracer.Event
	lastExpire := time.Now()
	for {
		s.tr.SetDeadline(time.Now().Add(flushAge))
		err := s.tr.Read(&ev)
		now := time.Now()
		switch {
		case err == nil:
			s.handle(&ev)
		case errors.Is(err, os.ErrDeadlineExceeded):
		default: // closed
			s.flush()
			st := s.replay.stats
			s.replayStats.Store(&st)
			return
		}
		if len(s.batches) > 0 && now.Sub(s.oldest) >= flushAge {
			s.flush()
		}
		if now.Sub(lastExpire) >= time.Second {
			lastExpire = now
			s.replay.expire(now.Add(-tlsConnIdle), now)
			st := s.replay.stats
			s.replayStats.Store(&st)
		}
	}
}

func (s *tlsSource) handle(ev *tracer.Event) {
	iface, ok := (*s.byNetns.Load())[ev.Netns]
	if !ok {
		s.noIface.Add(1)
		return
	}
	s.replay.handle(ev, s.tr.Time(ev.Mono), iface, s.isServer)
}

// isServer tells whether the traced process is the server end: its local
// port listens in its namespace. Otherwise, if the remote port listens
// there, it is the client; failing both, the end that speaks first is the
// client (HTTP, HTTP/2, gRPC, Redis, PostgreSQL clients all do).
func (s *tlsSource) isServer(ev *tracer.Event) bool {
	ports := s.listening(ev, false)
	if !ports[ev.Local.Port()] && !ports[ev.Remote.Port()] {
		ports = s.listening(ev, true)
	}
	switch {
	case ports[ev.Local.Port()]:
		return true
	case ports[ev.Remote.Port()]:
		return false
	}
	return ev.Dir == tracer.Received
}

func (s *tlsSource) listening(ev *tracer.Event, refresh bool) map[uint16]bool {
	lp, ok := s.listen[ev.Netns]
	if ok && !refresh && time.Since(lp.at) < tlsListenTTL {
		return lp.ports
	}
	if ok && refresh && time.Since(lp.at) < 100*time.Millisecond {
		return lp.ports
	}
	ports, err := tracer.ListeningPorts(s.w.opts.ProcRoot, ev.PID)
	if err != nil {
		return lp.ports
	}
	if len(s.listen) > 4096 {
		clear(s.listen)
	}
	s.listen[ev.Netns] = listenPorts{ports: ports, at: time.Now()}
	return ports
}

// emit adds one synthetic packet to its interface's batch.
func (s *tlsSource) emit(iface int, ts time.Time, pkt []byte) {
	b := s.batches[iface]
	if b != nil && !b.fits(len(pkt)) {
		s.dispatch(b)
		delete(s.batches, iface)
		b = nil
	}
	if b == nil {
		if len(s.batches) == 0 {
			s.oldest = time.Now()
		}
		b = getBatch(iface)
		s.batches[iface] = b
	}
	p := capture.Packet{Timestamp: ts, Length: len(pkt), LinkType: capture.LinkRaw, Interface: iface, Data: pkt}
	b.add(&p, false)
	s.packets.Add(1)
}

func (s *tlsSource) flush() {
	for iface, b := range s.batches {
		s.dispatch(b)
		delete(s.batches, iface)
	}
}

// dispatch queues a batch to the TLS pipeline and the sinks, never waiting.
func (s *tlsSource) dispatch(b *batch) {
	n := uint64(b.captured)
	b.refs.Store(2)
	if q := s.w.sinkQ; q != nil {
		select {
		case q <- b:
		default:
			s.sinkDrops.Add(n)
			b.release()
		}
	} else {
		b.release()
	}
	select {
	case s.q <- b:
	default:
		s.queueDrops.Add(n)
		b.release()
	}
}
