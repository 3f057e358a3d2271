// Package hub is the session's hub (`shark-agent hub`): workers dial in
// over TLS and stream entries; subscribers (the CLI, the dashboard) each
// get the entries that match their own filter over a WebSocket. The hub
// pushes the union of the subscribers' filters down to the workers, so
// only entries someone wants cross the network; it names the pods behind
// IPs (the CLI posts the map), merges pcap exports from workers, serves
// /metrics and the dashboard, and deletes its own session when no client
// has sent a heartbeat for the idle timeout.
//
// Concurrency follows gorilla/websocket's chat example: one goroutine (the
// registry loop) owns the sets of subscribers and workers; each connection
// has a read pump and a write pump with a bounded send queue. Entries are
// fanned out by the worker read pumps themselves, over an immutable
// snapshot of the subscribers the registry publishes, with non-blocking
// sends: a slow subscriber loses entries (and is told how many), it never
// slows down anyone else.
package hub

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// Options configure a hub. NewOptions returns the defaults; zero bounds
// take them too.
type Options struct {
	// WorkerAddr is where workers dial in, over TLS (":8443").
	WorkerAddr string
	// APIAddr serves subscribers, the API, /metrics and the dashboard in
	// plain HTTP (":8899"): it is reached only through kubectl
	// port-forward, and every endpoint but /healthz requires the token.
	APIAddr string
	// WorkerListener and APIListener, when set, are served instead of
	// listening on the addresses; Run closes them.
	WorkerListener, APIListener net.Listener

	// Certificate is the hub's serving certificate; when nil it is loaded
	// from CertFile and KeyFile (PEM).
	Certificate       *tls.Certificate
	CertFile, KeyFile string

	// Token is the session token every endpoint requires; when empty it is
	// read from TokenFile (surrounding white space ignored).
	Token     string
	TokenFile string

	// SessionID and Namespace name the session, for logs, metrics and the
	// pcap file name.
	SessionID string
	Namespace string

	// IdleTimeout: when no client has sent a heartbeat (any API request,
	// or a heartbeat message on a subscription) for this long, the hub
	// calls SelfDelete. Zero disables it.
	IdleTimeout time.Duration
	// SelfDelete removes the session (see DeleteNamespace, DeletePod). It
	// is retried until it succeeds or a client comes back. Nil only logs.
	SelfDelete func(context.Context) error

	// Dashboard serves GET / and the files below it; nil serves a
	// placeholder page.
	Dashboard http.FileSystem

	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Version is the hub's version, shown by /healthz.
	Version string

	// SubscriberQueue bounds the entries queued to one subscriber (1024).
	SubscriberQueue int
	// MaxSubscribers and MaxWorkers bound the connections (64, 1024).
	MaxSubscribers int
	MaxWorkers     int
	// MaxPcapExports bounds concurrent GET /v1/pcap (4).
	MaxPcapExports int
	// PcapStallTimeout ends a worker's part of a pcap export when it sends
	// nothing for this long (30s; follow exports never stall).
	PcapStallTimeout time.Duration
	// StatsInterval is how often subscribers get a stats message (2s).
	StatsInterval time.Duration
	// ShutdownTimeout bounds the wait for requests in flight when Run's
	// context is done (5s).
	ShutdownTimeout time.Duration
}

// NewOptions returns the defaults of `shark-agent hub`.
func NewOptions() Options {
	return Options{
		WorkerAddr:       ":8443",
		APIAddr:          ":8899",
		IdleTimeout:      60 * time.Second,
		SubscriberQueue:  1024,
		MaxSubscribers:   64,
		MaxWorkers:       1024,
		MaxPcapExports:   4,
		PcapStallTimeout: 30 * time.Second,
		StatsInterval:    2 * time.Second,
		ShutdownTimeout:  5 * time.Second,
	}
}

// withDefaults fills zero bounds and checks the options.
func (o Options) withDefaults() (Options, error) {
	d := NewOptions()
	setDefault(&o.SubscriberQueue, d.SubscriberQueue)
	setDefault(&o.MaxSubscribers, d.MaxSubscribers)
	setDefault(&o.MaxWorkers, d.MaxWorkers)
	setDefault(&o.MaxPcapExports, d.MaxPcapExports)
	setDefault(&o.PcapStallTimeout, d.PcapStallTimeout)
	setDefault(&o.StatsInterval, d.StatsInterval)
	setDefault(&o.ShutdownTimeout, d.ShutdownTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.WorkerListener == nil && o.WorkerAddr == "":
		return o, errors.New("hub: no worker address")
	case o.APIListener == nil && o.APIAddr == "":
		return o, errors.New("hub: no API address")
	case o.IdleTimeout < 0:
		return o, fmt.Errorf("hub: negative idle timeout %v", o.IdleTimeout)
	}
	return o, nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// loadToken returns the session token of the options.
func (o Options) loadToken() (string, error) {
	tok := o.Token
	if tok == "" && o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return "", fmt.Errorf("hub: reading the token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" {
		return "", errors.New("hub: no session token (Token or TokenFile)")
	}
	return tok, nil
}

// tlsConfig returns the serving TLS configuration of the worker port.
func (o Options) tlsConfig() (*tls.Config, error) {
	cert := o.Certificate
	if cert == nil {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, errors.New("hub: no TLS certificate (Certificate, or CertFile and KeyFile)")
		}
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("hub: loading the TLS certificate: %w", err)
		}
		cert = &c
	}
	return &tls.Config{
		Certificates: []tls.Certificate{*cert},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{"http/1.1"}, // WebSockets: no HTTP/2
	}, nil
}

// server is a running hub. Its fields are set before Run starts serving and
// never change, but for the atomics and what the registry loop owns.
type server struct {
	opts      Options
	log       *slog.Logger
	tokenHash [sha256.Size]byte
	metrics   *metrics

	// ops carries closures to the registry loop; stopped is closed when
	// the loop has ended (every connection then is closed).
	ops     chan func(*registry)
	stopped chan struct{}

	// subs is the registry's snapshot of the subscribers, read by every
	// fan-out without a lock.
	subs    atomic.Pointer[[]*subscriber]
	workers atomic.Pointer[[]*workerConn]
	ipmap   atomic.Pointer[wire.IPMap]

	// lastBeat is the UnixNano of the last client heartbeat.
	lastBeat atomic.Int64

	in, out, dropped atomic.Uint64
	// duplicates are second copies of exchanges seen on both sides of a
	// Service's NAT (see natDedup), not passed on.
	duplicates atomic.Uint64
	dedup      *natDedup
	nextID     atomic.Uint64
	pcapSlots  chan struct{}

	// conns counts the goroutines of connections, so Run waits for them.
	conns sync.WaitGroup
}

// Run serves the hub until ctx is done, then closes every client and
// returns. It returns an error only when it cannot start or a listener
// fails.
func Run(ctx context.Context, opts Options) error {
	h, err := newServer(opts)
	if err != nil {
		closeListeners(opts)
		return err
	}
	return h.run(ctx)
}

func closeListeners(o Options) {
	for _, l := range []net.Listener{o.WorkerListener, o.APIListener} {
		if l != nil {
			l.Close()
		}
	}
}

func newServer(opts Options) (*server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	tok, err := opts.loadToken()
	if err != nil {
		return nil, err
	}
	h := &server{
		opts:      opts,
		log:       opts.Logger.With("session", opts.SessionID),
		tokenHash: sha256.Sum256([]byte(tok)),
		ops:       make(chan func(*registry)),
		stopped:   make(chan struct{}),
		pcapSlots: make(chan struct{}, opts.MaxPcapExports),
		dedup:     newNATDedup(),
	}
	h.subs.Store(&[]*subscriber{})
	h.workers.Store(&[]*workerConn{})
	h.ipmap.Store(&wire.IPMap{})
	h.lastBeat.Store(time.Now().UnixNano())
	h.metrics = newMetrics(h)
	return h, nil
}

// run listens, serves, and tears everything down when ctx is done.
func (h *server) run(ctx context.Context) error {
	tlsConf, err := h.opts.tlsConfig()
	if err != nil {
		closeListeners(h.opts)
		return err
	}
	wl, al, err := h.listeners()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workerSrv := h.httpServer(ctx, h.workerMux())
	workerSrv.TLSConfig = tlsConf
	apiSrv := h.httpServer(ctx, h.apiMux())

	var bg sync.WaitGroup
	failed := make(chan error, 2)
	serve := func(name string, fn func() error) {
		bg.Go(func() {
			if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("hub: %s listener: %w", name, err)
			}
		})
	}
	serve("worker", func() error { return workerSrv.ServeTLS(wl, "", "") })
	serve("API", func() error { return apiSrv.Serve(al) })
	bg.Go(func() { h.registryLoop(ctx) })
	bg.Go(func() { h.idleLoop(ctx) })
	h.log.Info("hub serving", "worker", wl.Addr().String(), "api", al.Addr().String(),
		"namespace", h.opts.Namespace, "idle_timeout", h.opts.IdleTimeout)

	var failure error
	select {
	case <-ctx.Done():
	case failure = <-failed:
		cancel()
	}
	h.shutdown(workerSrv, apiSrv)
	bg.Wait()
	h.conns.Wait()
	return failure
}

// listeners returns the given listeners, or listens on the addresses.
func (h *server) listeners() (wl, al net.Listener, err error) {
	wl, al = h.opts.WorkerListener, h.opts.APIListener
	if wl == nil {
		if wl, err = net.Listen("tcp", h.opts.WorkerAddr); err != nil {
			closeListeners(h.opts)
			return nil, nil, fmt.Errorf("hub: %w", err)
		}
	}
	if al == nil {
		if al, err = net.Listen("tcp", h.opts.APIAddr); err != nil {
			wl.Close()
			closeListeners(h.opts)
			return nil, nil, fmt.Errorf("hub: %w", err)
		}
	}
	return wl, al, nil
}

// server returns an http.Server whose requests see ctx, so that streams
// (pcap exports) end when the hub stops.
func (h *server) httpServer(ctx context.Context, mux http.Handler) *http.Server {
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}
}

// shutdown stops accepting, waits a bounded time for plain requests, and
// leaves the WebSockets (hijacked, unknown to http.Server) to the registry
// loop, which closes them when the context is done.
func (h *server) shutdown(srvs ...*http.Server) {
	sctx, cancel := context.WithTimeout(context.Background(), h.opts.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Go(func() {
			if err := s.Shutdown(sctx); err != nil {
				s.Close()
			}
		})
	}
	wg.Wait()
}

// authorized compares the request's token with the session's in constant
// time (hashes, so that the length leaks nothing either).
func (h *server) authorized(r *http.Request) bool {
	got := sha256.Sum256([]byte(wire.RequestToken(r)))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1
}

// requireToken wraps next with the token check; beat marks the request as
// a client heartbeat.
func (h *server) requireToken(next http.Handler, beat bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.authorized(r) {
			h.metrics.unauthorized.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="kubectl-shark"`)
			http.Error(w, "missing or wrong session token", http.StatusUnauthorized)
			return
		}
		if beat {
			h.heartbeat()
		}
		next.ServeHTTP(w, r)
	})
}

// workerMux serves the worker port.
func (h *server) workerMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(wire.PathWorker, h.requireToken(http.HandlerFunc(h.serveWorker), false))
	mux.HandleFunc(wire.PathHealthz, h.serveHealthz)
	mux.Handle("/", h.requireToken(http.NotFoundHandler(), false))
	return mux
}

// apiMux serves the API port.
func (h *server) apiMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(wire.PathHealthz, h.serveHealthz)
	mux.Handle(wire.PathSubscribe, h.requireToken(http.HandlerFunc(h.serveSubscribe), true))
	mux.Handle(wire.PathTargets, h.requireToken(http.HandlerFunc(h.serveTargets), true))
	mux.Handle(wire.PathHeartbeat, h.requireToken(http.HandlerFunc(h.serveHeartbeat), true))
	mux.Handle(wire.PathPcap, h.requireToken(http.HandlerFunc(h.servePcap), true))
	mux.Handle(wire.PathMetrics, h.requireToken(h.metrics.handler(), true))
	mux.Handle("/", h.requireToken(h.dashboard(), true))
	return mux
}

func (h *server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	select {
	case <-h.stopped:
		http.Error(w, "stopping", http.StatusServiceUnavailable)
	default:
		fmt.Fprintf(w, "ok %s\n", h.opts.Version)
	}
}

func (h *server) serveHeartbeat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	w.WriteHeader(http.StatusNoContent) // requireToken counted the beat
}

// newID returns a short unique id for a connection or an export.
func (h *server) newID(prefix string) string {
	return fmt.Sprintf("%s%d-%d", prefix, h.nextID.Add(1), time.Now().UnixNano()%1e6)
}

// hubStats returns the hub's counters; the registry fills in the counts
// of connections.
func (h *server) hubStats() wire.HubStats {
	return wire.HubStats{EntriesIn: h.in.Load(), EntriesOut: h.out.Load(), Dropped: h.dropped.Load(),
		Duplicates: h.duplicates.Load()}
}
