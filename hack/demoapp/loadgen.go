package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// call is one kind of request loadgen sends to front, with its share of the
// traffic. The mix gives every status the demo can produce: 200, 201, 402,
// 404 (route, item, gRPC NOT_FOUND), 409 (gRPC FAILED_PRECONDITION, empty
// cart) and 500.
type call struct {
	name   string
	weight int
	req    func(r *rand.Rand) (method, path string, body []byte)
}

var inStock = []string{"sku-1", "sku-2", "sku-3", "sku-42"}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func user(r *rand.Rand) string { return "user-" + strconv.Itoa(1+r.IntN(25)) }

func cartBody(sku string, qty int) []byte {
	return []byte(`{"sku":"` + sku + `","quantity":` + strconv.Itoa(qty) + `}`)
}

var calls = []call{
	{"item", 30, func(r *rand.Rand) (string, string, []byte) {
		return http.MethodGet, "/api/items/" + pick(r, inStock), nil
	}},
	{"item-missing", 8, func(r *rand.Rand) (string, string, []byte) {
		return http.MethodGet, "/api/items/sku-" + strconv.Itoa(900+r.IntN(100)), nil
	}},
	{"list", 10, func(r *rand.Rand) (string, string, []byte) {
		return http.MethodGet, "/api/items?category=" + pick(r, []string{"coffee", "kitchen"}) + "&limit=3", nil
	}},
	{"cart-add", 15, func(r *rand.Rand) (string, string, []byte) {
		sku := pick(r, inStock)
		if r.IntN(10) == 0 {
			sku = "sku-7" // out of stock: its checkout fails with 409
		}
		return http.MethodPost, "/api/cart/" + user(r) + "/items", cartBody(sku, 1+r.IntN(3))
	}},
	{"cart-add-missing", 3, func(r *rand.Rand) (string, string, []byte) {
		return http.MethodPost, "/api/cart/" + user(r) + "/items", cartBody("sku-404", 1)
	}},
	{"cart", 10, func(r *rand.Rand) (string, string, []byte) {
		return http.MethodGet, "/api/cart/" + user(r), nil
	}},
	{"checkout", 8, func(r *rand.Rand) (string, string, []byte) {
		return http.MethodPost, "/api/checkout/" + user(r), nil
	}},
	{"boom", 4, func(*rand.Rand) (string, string, []byte) { return http.MethodGet, "/api/boom", nil }},
	{"no-route", 4, func(*rand.Rand) (string, string, []byte) { return http.MethodGet, "/api/v0/legacy", nil }},
	{"slow", 3, func(*rand.Rand) (string, string, []byte) { return http.MethodGet, "/api/slow", nil }},
}

// pickCall draws a call by weight.
func pickCall(r *rand.Rand) call {
	total := 0
	for _, c := range calls {
		total += c.weight
	}
	n := r.IntN(total)
	for _, c := range calls {
		if n < c.weight {
			return c
		}
		n -= c.weight
	}
	return calls[len(calls)-1]
}

// loadStats counts what loadgen did; /stats serves it as JSON, and the test
// of the demo reads it.
type loadStats struct {
	mu      sync.Mutex
	Started time.Time                   `json:"started"`
	Sent    int64                       `json:"sent"`
	Skipped int64                       `json:"skipped"` // ticks with every worker busy
	Status  map[string]int64            `json:"status"`  // "200", "404", ..., "error"
	Routes  map[string]map[string]int64 `json:"routes"`  // call name → status → count
	DNS     map[string]int64            `json:"dns"`     // ok, nxdomain, error
}

func newLoadStats() *loadStats {
	return &loadStats{Started: time.Now().UTC(), Status: map[string]int64{}, Routes: map[string]map[string]int64{}, DNS: map[string]int64{}}
}

func (s *loadStats) record(route, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Sent++
	s.Status[status]++
	if s.Routes[route] == nil {
		s.Routes[route] = map[string]int64{}
	}
	s.Routes[route][status]++
}

func (s *loadStats) count(field *int64, m map[string]int64, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if field != nil {
		*field++
	}
	if m != nil {
		m[key]++
	}
}

func (s *loadStats) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, s)
}

// summary is the periodic log line: totals by status class.
func (s *loadStats) summary() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	classes := map[string]int64{}
	for code, n := range s.Status {
		if code == "error" {
			classes["error"] += n
			continue
		}
		classes[code[:1]+"xx"] += n
	}
	return []any{"sent", s.Sent, "2xx", classes["2xx"], "4xx", classes["4xx"], "5xx", classes["5xx"],
		"errors", classes["error"], "skipped", s.Skipped, "dns_ok", s.DNS["ok"], "dns_nxdomain", s.DNS["nxdomain"], "dns_error", s.DNS["error"]}
}

type loadgen struct {
	target   string
	client   *http.Client
	resolver *net.Resolver
	stats    *loadStats
}

func runLoadgen(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	target := fs.String("target", envOr("LOADGEN_TARGET", "http://front"), "front's base URL")
	rate := fs.Float64("rate", 10, "requests per second (env LOADGEN_RATE)")
	workers := fs.Int("workers", 8, "concurrent requests at most")
	dnsEvery := fs.Duration("dns-every", 2*time.Second, "interval of the explicit DNS lookups; 0 for none")
	reconnectEvery := fs.Duration("reconnect-every", 30*time.Second, "close idle connections this often, for fresh handshakes and lookups")
	statsAddr := fs.String("stats-addr", ":9090", "address of /stats and /healthz")
	reportEvery := fs.Duration("report-every", 10*time.Second, "interval of the summary log line")
	if v := envOr("LOADGEN_RATE", ""); v != "" {
		if err := fs.Set("rate", v); err != nil {
			return fmt.Errorf("LOADGEN_RATE: %w", err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *rate > 1000 || *workers <= 0 {
		return errors.New("want 0 < -rate <= 1000 and -workers > 0")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *workers, IdleConnTimeout: time.Minute}
	lg := &loadgen{
		target:   strings.TrimRight(*target, "/"),
		client:   &http.Client{Transport: tr, Timeout: 10 * time.Second},
		resolver: &net.Resolver{PreferGo: true},
		stats:    newLoadStats(),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /stats", lg.stats.serveHTTP)
	go func() {
		if err := listenAndServe(ctx, *statsAddr, &http.Server{Handler: mux}); err != nil {
			slog.Error("stats server", "err", err)
		}
	}()
	go every(ctx, *reportEvery, func() { slog.Info("traffic", lg.stats.summary()...) })
	go every(ctx, *reconnectEvery, tr.CloseIdleConnections)
	if *dnsEvery > 0 {
		go every(ctx, *dnsEvery, func() { lg.lookups(ctx) })
	}
	slog.Info("loadgen", "target", lg.target, "rate", *rate, "workers", *workers)
	lg.drive(ctx, *rate, *workers)
	return nil
}

// every runs f each interval until ctx is done.
func every(ctx context.Context, interval time.Duration, f func()) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// drive sends rate requests a second from a fixed pool of workers. A tick
// that finds every worker busy is skipped and counted, never queued, so a slow
// front does not build a backlog.
func (lg *loadgen) drive(ctx context.Context, rate float64, workers int) {
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			for range jobs {
				lg.send(ctx, r)
			}
		}()
	}
	// Requests are owed by the clock, not by ticks: a late tick (a busy
	// machine) catches up instead of lowering the rate.
	t := time.NewTicker(max(time.Duration(float64(time.Second)/rate), time.Millisecond))
	defer t.Stop()
	start := time.Now()
	var issued int64
	for {
		select {
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			return
		case <-t.C:
		}
		for due := int64(time.Since(start).Seconds() * rate); issued < due; issued++ {
			select {
			case jobs <- struct{}{}:
			default:
				lg.stats.count(&lg.stats.Skipped, nil, "")
			}
		}
	}
}

func (lg *loadgen) send(ctx context.Context, r *rand.Rand) {
	c := pickCall(r)
	method, path, body := c.req(r)
	req, err := http.NewRequestWithContext(ctx, method, lg.target+path, bytes.NewReader(body))
	if err != nil {
		lg.stats.record(c.name, "error")
		return
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "shark-demo-loadgen/1")
	resp, err := lg.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			slog.Debug("request", "path", path, "err", err)
			lg.stats.record(c.name, "error")
		}
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)) // drain, so the connection is reused
	resp.Body.Close()
	lg.stats.record(c.name, strconv.Itoa(resp.StatusCode))
}

// lookups makes DNS traffic of its own: names of the demo (answered), an SRV
// record of a named port, and a name that does not exist (NXDOMAIN).
func (lg *loadgen) lookups(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := lg.resolver.LookupHost(ctx, "catalog")
	lg.dnsResult(err)
	_, _, err = lg.resolver.LookupSRV(ctx, "http", "tcp", "front")
	lg.dnsResult(err)
	_, err = lg.resolver.LookupHost(ctx, "inventory.demo.svc.cluster.local.")
	lg.dnsResult(err)
}

func (lg *loadgen) dnsResult(err error) {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		lg.stats.count(nil, lg.stats.DNS, "ok")
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		lg.stats.count(nil, lg.stats.DNS, "nxdomain")
	default:
		lg.stats.count(nil, lg.stats.DNS, "error")
	}
}
