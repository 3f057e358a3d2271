package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// The hub link: in the cluster, the worker dials the session's hub
// (pkg/hub) and keeps one WebSocket to it (see pkg/wire for the protocol).
// The hub sends the targets of this node with the IPMap, the union of its
// subscribers' filters, and pcap requests; the worker sends entries that
// pass the filter, in batches, its stats, and pcap chunks.
//
// The link never slows capture down: entries are encoded on the pipeline's
// shards into a batch, and sealed batches go to a bounded queue that the
// connection's write pump drains. When the hub is slow or away, batches
// that do not fit are dropped and counted (Stats.EntriesDropped) while
// capture and the pcap store go on. The link reconnects with a jittered
// backoff until its context ends, and keeps the last targets meanwhile.

// Defaults of HubOptions.
const (
	DefaultHubQueue     = 8 // batches of up to wire.MaxBatchBytes
	DefaultHubFlush     = 100 * time.Millisecond
	DefaultHubStats     = 2 * time.Second
	DefaultHubMinWait   = 200 * time.Millisecond
	DefaultHubMaxWait   = 3 * time.Second
	DefaultFollowBuffer = 16 << 20
)

// Keepalive. The hub pings every 54s and drops a worker it has not heard
// from for 60s (stats every 2s keep it content); the worker pings every
// hubPingPeriod and drops a hub it has not heard from (a message, a ping
// or a pong) for hubReadWait. Variables for tests.
var (
	hubReadWait   = 45 * time.Second
	hubPingPeriod = 15 * time.Second
)

// Connection timing and buffers.
const (
	hubWriteWait     = 10 * time.Second
	hubDialTimeout   = 10 * time.Second
	hubLogRepeat     = time.Minute // a failure that persists is logged again this often
	hubWriteBuffer   = 256 << 10
	hubReadBuffer    = 64 << 10
	hubCloseGrace    = time.Second
	hubMaxErrorBody  = 256
	hubStableConnect = DefaultHubMaxWait // a connection that lasted this long resets the backoff
)

// HubOptions configure a HubLink.
type HubOptions struct {
	// Addr is the hub's worker port, host:port.
	Addr string
	// TLS verifies the hub; build it with wire.WorkerTLSConfig from the
	// session CA.
	TLS *tls.Config
	// Token is the session token.
	Token string
	// Hello introduces the worker: node, worker name, sources, version.
	// Without Sources, those of the worker are sent (Worker.Sources).
	Hello wire.Hello
	// Store answers pcap requests; without it only follow requests are
	// answered, with live packets.
	Store PcapExporter
	// Queue bounds the entry batches waiting for the connection.
	Queue int
	// FlushInterval is how long entries may wait in a batch.
	FlushInterval time.Duration
	// StatsInterval is how often stats are sent.
	StatsInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts; it doubles from MinBackoff after each failure.
	MinBackoff, MaxBackoff time.Duration
	// FollowBuffer bounds the bytes of live packets a follow export may
	// hold while the hub is slow to take them; more are dropped.
	FollowBuffer int
	// Logf receives one-line notices; nil drops them.
	Logf func(format string, args ...any)
}

// PcapExporter exports stored packets: the pcap store.
type PcapExporter interface {
	Export(ctx context.Context, w io.Writer, q store.Query) (store.ExportStats, error)
}

// HubWorker is what the link drives: the worker's targets and counters.
type HubWorker interface {
	SetTargets([]Target) error
	// HubStats returns the counters for a stats message; the link fills
	// in the names, the time and EntriesDropped.
	HubStats() wire.Stats
}

func (o HubOptions) withDefaults() (HubOptions, error) {
	if o.Addr == "" {
		return o, errors.New("worker: no hub address")
	}
	if o.TLS == nil {
		return o, errors.New("worker: no TLS configuration for the hub")
	}
	if o.Token == "" {
		return o, errors.New("worker: no session token for the hub")
	}
	setDefault(&o.Queue, DefaultHubQueue)
	setDefault(&o.FlushInterval, DefaultHubFlush)
	setDefault(&o.StatsInterval, DefaultHubStats)
	setDefault(&o.MinBackoff, DefaultHubMinWait)
	setDefault(&o.MaxBackoff, DefaultHubMaxWait)
	setDefault(&o.FollowBuffer, DefaultFollowBuffer)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// HubLink connects a worker to its hub. Create it with NewHubLink, pass
// Render as the worker's Options.Render and the link itself as one of its
// Sinks (for follow exports), then Run it with the worker.
type HubLink struct {
	opts   HubOptions
	dialer websocket.Dialer
	url    string
	header http.Header

	// What the hub pushed; read by Render on every shard.
	filter atomic.Pointer[pushFilter]
	ipmap  atomic.Pointer[wire.IPMap]

	connected atomic.Bool
	running   atomic.Bool

	// The batch being filled, and the sealed ones waiting for the write
	// pump.
	bmu   sync.Mutex
	cur   *entryBatch
	queue chan *entryBatch

	sent, dropped, filtered, batches, connects, failed atomic.Uint64

	// Follow exports tap the packets the worker captures.
	imu    sync.Mutex
	ifaces []capture.Interface
	taps   atomic.Pointer[[]*followTap]

	// Owned by Run's goroutine (and the read loop it runs).
	lastErr    string
	lastLogged time.Time
	failures   int
	badFilter  string
	lastTarget string
}

// HubLinkStats count what the link did since it started.
type HubLinkStats struct {
	Connected bool
	// Connects counts the connections made, Failures the attempts that
	// failed.
	Connects, Failures uint64
	// Sent entries were written to the hub, in Batches batches.
	Sent, Batches uint64
	// Dropped entries passed the filter but could not be sent: the hub was
	// away or slow.
	Dropped uint64
	// Filtered entries did not pass the hub's filter.
	Filtered uint64
}

// NewHubLink returns a link to the hub of opts; Run connects it.
func NewHubLink(opts HubOptions) (*HubLink, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.Hello.Node != "" {
		q.Set("node", opts.Hello.Node)
	}
	if opts.Hello.Worker != "" {
		q.Set("worker", opts.Hello.Worker)
	}
	u := url.URL{Scheme: "wss", Host: opts.Addr, Path: wire.PathWorker, RawQuery: q.Encode()}
	h := http.Header{}
	wire.SetToken(h, opts.Token)
	l := &HubLink{
		opts: opts,
		dialer: websocket.Dialer{
			TLSClientConfig:  opts.TLS,
			HandshakeTimeout: hubDialTimeout,
			ReadBufferSize:   hubReadBuffer,
			WriteBufferSize:  hubWriteBuffer,
		},
		url:    u.String(),
		header: h,
		queue:  make(chan *entryBatch, opts.Queue),
	}
	// Until the hub says otherwise, no one wants anything.
	l.filter.Store(&pushFilter{expr: wire.FilterNone, none: true})
	l.ipmap.Store(&wire.IPMap{})
	l.taps.Store(&[]*followTap{})
	return l, nil
}

// Stats returns the link's counters.
func (l *HubLink) Stats() HubLinkStats {
	return HubLinkStats{
		Connected: l.connected.Load(),
		Connects:  l.connects.Load(),
		Failures:  l.failed.Load(),
		Sent:      l.sent.Load(),
		Batches:   l.batches.Load(),
		Dropped:   l.dropped.Load(),
		Filtered:  l.filtered.Load(),
	}
}

// Filter returns the filter the hub pushed last.
func (l *HubLink) Filter() string { return l.filter.Load().expr }

// Run keeps the link to the hub up until ctx is done, reconnecting after
// a failure with a jittered backoff, and returns nil then.
func (l *HubLink) Run(ctx context.Context, w HubWorker) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("worker: HubLink.Run called twice")
	}
	var bg sync.WaitGroup
	bg.Go(func() { l.flushLoop(ctx) })
	defer bg.Wait()
	wait := l.opts.MinBackoff
	for {
		start := time.Now()
		established, err := l.connect(ctx, w)
		if ctx.Err() != nil {
			return nil
		}
		if established && time.Since(start) >= hubStableConnect {
			wait = l.opts.MinBackoff
		}
		l.noteFailure(established, err)
		if !sleepCtx(ctx, jitter(wait)) {
			return nil
		}
		wait = min(wait*2, l.opts.MaxBackoff)
	}
}

// jitter spreads reconnections over [d/2, d], so that the workers of a
// session do not all come back at once.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connect dials the hub and serves the connection until it fails;
// established says the hub accepted the worker.
func (l *HubLink) connect(ctx context.Context, w HubWorker) (established bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, hubDialTimeout)
	ws, resp, err := l.dialer.DialContext(dctx, l.url, l.header)
	cancel()
	if err != nil {
		return false, dialError(l.opts.Addr, resp, err)
	}
	c := newHubConn(ctx, l, ws, w)
	if err := c.hello(helloOf(l.opts.Hello, w)); err != nil {
		ws.Close()
		return false, fmt.Errorf("hub %s: saying hello: %w", l.opts.Addr, err)
	}
	l.connects.Add(1)
	if l.failures > 0 {
		l.opts.Logf("connected to the hub %s after %d failed attempts", l.opts.Addr, l.failures)
	} else {
		l.opts.Logf("connected to the hub %s", l.opts.Addr)
	}
	l.failures, l.lastErr = 0, ""
	return true, c.serve()
}

// helloOf completes the hello with the worker's sources when the options
// name none: the worker knows which of them started.
func helloOf(h wire.Hello, w HubWorker) wire.Hello {
	if s, ok := w.(interface{ Sources() []string }); ok && len(h.Sources) == 0 {
		h.Sources = s.Sources()
	}
	return h
}

// dialError explains a failed dial in one line: the hub's HTTP answer
// when there was one (a wrong token is a 401).
func dialError(addr string, resp *http.Response, err error) error {
	if resp == nil {
		return fmt.Errorf("hub %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("hub %s refused the session token (HTTP 401)", addr)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, hubMaxErrorBody))
	msg := strings.Join(strings.Fields(string(b)), " ")
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("hub %s answered HTTP %d: %s", addr, resp.StatusCode, msg)
}

// noteFailure logs why a connection ended or could not be made: a lost
// connection always, a failure to connect when it differs from the last
// one or has lasted another hubLogRepeat, so that a hub that stays away
// does not flood the log.
func (l *HubLink) noteFailure(established bool, err error) {
	if err == nil {
		err = errors.New("connection closed")
	}
	msg := err.Error()
	now := time.Now()
	switch {
	case established:
		l.opts.Logf("lost the hub %s: %v; reconnecting", l.opts.Addr, err)
	case msg != l.lastErr || now.Sub(l.lastLogged) >= hubLogRepeat:
		if l.failures > 0 && msg == l.lastErr {
			l.opts.Logf("%v (still retrying, %d attempts)", err, l.failures+1)
		} else {
			l.opts.Logf("%v (retrying)", err)
		}
		l.lastLogged = now
	}
	l.lastErr = msg
	if !established {
		l.failures++
		l.failed.Add(1)
	}
}
