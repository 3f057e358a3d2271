package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// step is one request of the client's plan.
type step struct {
	method, target string
	body           string
	header         map[string]string
}

// Secrets sent so tests can check that the engine redacts them.
const (
	demoBearer = "Bearer demo-token-5f2c1b"
	demoCookie = "session=c0ffee42; theme=dark"
)

// apiPlan is the request mix every HTTP client cycles through: each status
// class, a body per method, conditional and redirected requests, secrets.
var apiPlan = []step{
	{method: "GET", target: "/api/items"},
	{method: "GET", target: "/api/items/42", header: map[string]string{"Authorization": demoBearer}},
	{method: "POST", target: "/api/items", body: `{"sku":"sku-9","name":"tamper","price_cents":2500}`,
		header: map[string]string{"Cookie": demoCookie}},
	{method: "PUT", target: "/api/items/7", body: `{"name":"big milk jug"}`},
	{method: "DELETE", target: "/api/items/7", header: map[string]string{"Authorization": demoBearer}},
	{method: "HEAD", target: "/api/items"},
	{method: "GET", target: "/api/etag", header: map[string]string{"If-None-Match": itemsETag}},
	{method: "GET", target: "/old"},
	{method: "GET", target: "/api/items/999"},
	{method: "GET", target: "/nope"},
	{method: "GET", target: "/api/fail"},
	{method: "GET", target: "/stream?chunks=8"},
	{method: "GET", target: "/gzip"},
	{method: "GET", target: "/slow?ms=30"},
	{method: "GET", target: "/api/etag"},
	{method: "GET", target: "/healthz", header: map[string]string{"Cookie": demoCookie}},
	{method: "POST", target: "/api/items", body: `{"sku":`},
	{method: "GET", target: "/api/items?page=2&limit=10"},
}

// largeStep is mixed in every -large-every requests.
var largeStep = step{method: "GET", target: "/large?kb=200"}

// planStep returns the i-th request of a run.
func planStep(i, largeEvery int) step {
	if largeEvery > 0 && i%largeEvery == largeEvery-1 {
		return largeStep
	}
	return apiPlan[i%len(apiPlan)]
}

// newRequest builds the request of s against base.
func (s step) newRequest(ctx context.Context, base *url.URL) (*http.Request, error) {
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	req, err := http.NewRequestWithContext(ctx, s.method, base.String()+s.target, body)
	if err != nil {
		return nil, err
	}
	if s.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "trafficgen/1")
	for k, v := range s.header {
		req.Header.Set(k, v)
	}
	return req, nil
}

// do sends s with client, drains the response so the connection is reused,
// and returns the status.
func (s step) do(ctx context.Context, client *http.Client, base *url.URL) (int, error) {
	req, err := s.newRequest(ctx, base)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", s.method, s.target, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("%s %s: body: %w", s.method, s.target, err)
	}
	return resp.StatusCode, nil
}

// newHTTPClient keeps up to conns connections alive and never follows
// redirects, so every request on the wire is one the client logs.
func newHTTPClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func newHTTP1Transport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		MaxConnsPerHost:     conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     5 * time.Minute,
		ForceAttemptHTTP2:   false,
	}
}

// warmupStep holds each worker's request long enough that warmup opens
// all -c connections.
var warmupStep = step{method: "GET", target: "/slow?ms=100"}

// runPlan drives client through warmup, the pause and n logged requests,
// recording each as HTTP/1 or HTTP/2.
func runPlan(ctx context.Context, cf *clientFlags, client *http.Client, base *url.URL,
	largeEvery int, record func(method, target string, status int)) error {
	if cf.warmup > 0 {
		err := forEach(ctx, cf.warmup, cf.c, func(ctx context.Context, _ int) error {
			_, err := warmupStep.do(ctx, client, base)
			return err
		})
		if err != nil {
			return fmt.Errorf("warmup: %w", err)
		}
	}
	if err := cf.pause(ctx); err != nil {
		return err
	}
	return forEach(ctx, cf.n, cf.c, func(ctx context.Context, i int) error {
		s := planStep(i, largeEvery)
		status, err := s.do(ctx, client, base)
		if err != nil {
			return err
		}
		record(s.method, s.target, status)
		return nil
	})
}

func runHTTPClient(ctx context.Context, args []string) error {
	fs := newFlagSet("http-client")
	var cf clientFlags
	cf.register(fs, 100, 4)
	rawURL := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	largeEvery := fs.Int("large-every", 0, "make every Nth request a 200 KB download (0: never)")
	pipelined := fs.Int("pipeline", 0, "batches of pipelined requests sent raw on one connection")
	depth := fs.Int("pipeline-depth", 4, "requests per pipelined batch")
	head := fs.Bool("pipeline-head", false, "put HEAD requests in the pipelined batches")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	base, err := url.Parse(strings.TrimSuffix(*rawURL, "/"))
	if err != nil || base.Scheme != "http" {
		return fmt.Errorf("-url %q: want http://host:port", *rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()

	var rec recorder
	tr := newHTTP1Transport(cf.c)
	defer tr.CloseIdleConnections()
	if err := runPlan(ctx, &cf, newHTTPClient(tr), base, *largeEvery, rec.http1); err != nil {
		return err
	}
	mix := pipelineMix(*head)
	for b := range *pipelined {
		if err := pipeline(ctx, base.Host, pipelineBatch(mix, b, *depth), &rec); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
	}
	return rec.save(cf.log)
}

// pipelineMix is what pipelined batches cycle through. With head, a HEAD
// sits among them, so a dissector must know its response has no body even
// though it carries a Content-Length (tshark 4.0 gets this wrong).
func pipelineMix(head bool) []step {
	mix := []step{
		{method: "GET", target: "/api/items/1"},
		{method: "GET", target: "/api/items/999"},
		{method: "GET", target: "/stream?chunks=3"},
		{method: "GET", target: "/api/etag", header: map[string]string{"If-None-Match": itemsETag}},
		{method: "DELETE", target: "/api/items/7"},
	}
	if head {
		mix = append(mix[:1], append([]step{{method: "HEAD", target: "/api/items"}}, mix[1:]...)...)
	}
	return mix
}

// pipelineBatch returns the b-th batch of depth pipelined requests.
func pipelineBatch(mix []step, b, depth int) []step {
	batch := make([]step, depth)
	for i := range batch {
		batch[i] = mix[(b*depth+i)%len(mix)]
	}
	return batch
}

// pipeline writes every request of batch in one write on a fresh
// connection, then reads the responses in order (RFC 9112 section 9.3.2).
func pipeline(ctx context.Context, hostport string, batch []step, rec *recorder) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	var raw strings.Builder
	for _, s := range batch {
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: trafficgen-pipeline/1\r\n", s.method, s.target, hostport)
		for k, v := range s.header {
			fmt.Fprintf(&raw, "%s: %s\r\n", k, v)
		}
		raw.WriteString("\r\n")
	}
	if _, err := io.WriteString(conn, raw.String()); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	for _, s := range batch {
		// ReadResponse needs the method to know that HEAD has no body.
		resp, err := http.ReadResponse(br, &http.Request{Method: s.method})
		if err != nil {
			return fmt.Errorf("%s %s: %w", s.method, s.target, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		rec.http1(s.method, s.target, resp.StatusCode)
	}
	return nil
}
