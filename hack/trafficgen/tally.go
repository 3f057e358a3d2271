package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/kubectl-shark/kubectl-shark/internal/tshark"
)

// recorder counts what a client really did, in the same shape as the
// tshark oracle, so a test compares the two with one cmp.Diff.
type recorder struct {
	mu sync.Mutex
	s  tshark.Summary
}

// http1 records an HTTP/1.x request and its response.
func (r *recorder) http1(method, target string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	exchange(&r.s.HTTP1, method, target, status)
}

// http2 records one HTTP/2 stream with its request and final response.
func (r *recorder) http2(method, target string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	exchange(&r.s.HTTP2, method, target, status)
}

// http2ResponseOnly records a stream whose request went as HTTP/1.1: the
// first stream after an Upgrade: h2c.
func (r *recorder) http2ResponseOnly() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.HTTP2.Responses++
}

// grpc records one call: an HTTP/2 POST answered 200, and its grpc-status.
func (r *recorder) grpc(method string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	exchange(&r.s.HTTP2, "POST", method, 200)
	r.s.GRPC.Calls++
	bump(&r.s.GRPC.Methods, method)
	bump(&r.s.GRPC.Statuses, strconv.Itoa(code))
}

// dns records one query and its response.
func (r *recorder) dns(qtype, rcode string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.DNS.Queries++
	r.s.DNS.Responses++
	bump(&r.s.DNS.QTypes, qtype)
	bump(&r.s.DNS.RCodes, rcode)
}

func exchange(st *tshark.HTTPStats, method, target string, status int) {
	st.Requests++
	st.Responses++
	bump(&st.Exchanges, tshark.ExchangeKey(method, target, status))
}

func bump(m *map[string]int, key string) {
	if *m == nil {
		*m = make(map[string]int)
	}
	(*m)[key]++
}

func (r *recorder) summary() tshark.Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s
}

// save writes the log to path; no-op when path is empty.
func (r *recorder) save(path string) error {
	if path == "" {
		return nil
	}
	return writeSummary(path, r.summary())
}

func writeSummary(path string, s tshark.Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readSummary(path string) (tshark.Summary, error) {
	var s tshark.Summary
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func runMerge(_ context.Context, args []string) error {
	fs := newFlagSet("merge")
	out := fs.String("o", "", "output file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("merge: usage: merge -o OUT LOG...")
	}
	var total tshark.Summary
	for _, path := range fs.Args() {
		s, err := readSummary(path)
		if err != nil {
			return err
		}
		total.Add(s)
	}
	return writeSummary(*out, total)
}

// clientFlags are the bounds and the logging every client shares.
type clientFlags struct {
	n       int
	c       int
	timeout time.Duration
	log     string
	// Midstream recording: run warmup unlogged requests, then write the
	// ready file and wait for the go file before the logged ones, keeping
	// the same connections open in between.
	warmup int
	ready  string
	goFile string
}

func (cf *clientFlags) register(fs *flag.FlagSet, n, c int) {
	fs.IntVar(&cf.n, "n", n, "number of requests (or calls)")
	fs.IntVar(&cf.c, "c", c, "concurrent workers")
	fs.DurationVar(&cf.timeout, "timeout", 2*time.Minute, "bound on the whole run")
	fs.StringVar(&cf.log, "log", "", "write what was done as a JSON summary to this file")
	fs.IntVar(&cf.warmup, "warmup", 0, "unlogged requests made before -ready/-go")
	fs.StringVar(&cf.ready, "ready", "", "file created once warmup is done")
	fs.StringVar(&cf.goFile, "go", "", "file to wait for before the logged requests")
}

func (cf *clientFlags) validate() error {
	if cf.n < 0 || cf.c < 1 || cf.warmup < 0 {
		return errors.New("-n and -warmup must be >= 0 and -c >= 1")
	}
	if cf.timeout <= 0 {
		return errors.New("-timeout must be positive")
	}
	return nil
}

// pause signals the end of warmup and waits for the recorder to be ready.
func (cf *clientFlags) pause(ctx context.Context) error {
	if cf.ready != "" {
		if err := os.WriteFile(cf.ready, nil, 0o644); err != nil {
			return err
		}
	}
	if cf.goFile == "" {
		return nil
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(cf.goFile); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", cf.goFile, ctx.Err())
		case <-tick.C:
		}
	}
}

// forEach runs fn(i) for i in [0, n) on c workers and returns the first
// error; the others still finish their current item.
func forEach(ctx context.Context, n, c int, fn func(ctx context.Context, i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || first != nil || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, ok := take(); ok; i, ok = take() {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
