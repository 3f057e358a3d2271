package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/kubectl-shark/kubectl-shark/internal/tshark"
)

// startServer serves h on a loopback port until the test ends.
func startServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(h)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func runLogged(t *testing.T, cmd string, args ...string) tshark.Summary {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "log.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dispatch(ctx, append([]string{cmd, "-log", logFile}, args...), io.Discard); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	s, err := readSummary(logFile)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHTTPClient(t *testing.T) {
	addr := startServer(t, newAPI())
	// 20 planned requests: plan steps 0-8 and 10-17, step 0 again, and
	// the large download at i = 9 and 19; then two pipelined batches of 3
	// going through all of the HEAD mix.
	got := runLogged(t, "http-client", "-url", "http://"+addr, "-n", "20", "-c", "3",
		"-large-every", "10", "-pipeline", "2", "-pipeline-depth", "3", "-pipeline-head")
	want := map[string]int{
		"GET /api/items 200": 2, "GET /api/items/42 200": 1, "POST /api/items 201": 1,
		"PUT /api/items/7 200": 1, "DELETE /api/items/7 204": 1 + 1, "HEAD /api/items 200": 1 + 1,
		"GET /api/etag 304": 1 + 1, "GET /old 301": 1, "GET /api/items/999 404": 1 + 1,
		"GET /api/fail 500": 1, "GET /stream?chunks=8 200": 1, "GET /gzip 200": 1,
		"GET /slow?ms=30 200": 1, "GET /api/etag 200": 1, "GET /healthz 200": 1,
		"POST /api/items 400": 1, "GET /api/items?page=2&limit=10 200": 1,
		"GET /large?kb=200 200": 2, "GET /api/items/1 200": 1, "GET /stream?chunks=3 200": 1,
	}
	if diff := cmp.Diff(want, got.HTTP1.Exchanges); diff != "" {
		t.Errorf("exchanges (-want +got):\n%s", diff)
	}
	if got.HTTP1.Requests != 26 || got.HTTP1.Responses != 26 {
		t.Errorf("requests/responses = %d/%d, want 26/26", got.HTTP1.Requests, got.HTTP1.Responses)
	}
}

func TestH2AndUpgradeClients(t *testing.T) {
	addr := startServer(t, h2c.NewHandler(newAPI(), &http2.Server{})) //nolint:staticcheck
	got := runLogged(t, "h2-client", "-url", "http://"+addr, "-n", "18", "-c", "4", "-conns", "2")
	if got.HTTP2.Requests != 18 || got.HTTP1.Requests != 0 {
		t.Errorf("h2-client: got %+v", got)
	}
	if got.HTTP2.Exchanges["GET /api/etag 304"] != 1 || got.HTTP2.Exchanges["POST /api/items 400"] != 1 {
		t.Errorf("h2-client exchanges: %v", got.HTTP2.Exchanges)
	}

	got = runLogged(t, "h2c-upgrade-client", "-addr", addr, "-n", "7", "-c", "2")
	want := tshark.Summary{
		HTTP1: tshark.HTTPStats{Requests: 2, Responses: 2, Exchanges: map[string]int{"GET /api/items 101": 2}},
		HTTP2: tshark.HTTPStats{Requests: 5, Responses: 7, Exchanges: map[string]int{
			// Connection 1 makes 4 requests, connection 2 makes 3: plan steps 1-3 each, and 4 once.
			"GET /api/items/42 200": 2, "POST /api/items 201": 2, "PUT /api/items/7 200": 1,
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("h2c-upgrade-client (-want +got):\n%s", diff)
	}
}

func TestGRPCClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newGRPCServer()
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	got := runLogged(t, "grpc-client", "-addr", ln.Addr().String(), "-n", "20", "-c", "3")
	want := tshark.GRPCStats{
		Calls: 20,
		Methods: map[string]int{
			methodGetItem: 8, methodListItems: 2, methodReserve: 4, methodWatchPrices: 2,
			"/grpc.health.v1.Health/Check": 2, "/demo.Catalog/Discontinue": 2,
		},
		// per plan cycle: 6 OK, NOT_FOUND, 2 INVALID_ARGUMENT, UNIMPLEMENTED
		Statuses: map[string]int{"0": 12, "5": 2, "3": 4, "12": 2},
	}
	if diff := cmp.Diff(want, got.GRPC); diff != "" {
		t.Errorf("grpc (-want +got):\n%s", diff)
	}
	if got.HTTP2.Requests != 20 || got.HTTP2.Exchanges[methodPOST(methodReserve)] != 4 {
		t.Errorf("grpc as HTTP/2: %+v", got.HTTP2)
	}
}

func methodPOST(path string) string { return tshark.ExchangeKey("POST", path, 200) }

func TestMidstreamHandshake(t *testing.T) {
	addr := startServer(t, newAPI())
	dir := t.TempDir()
	ready, goFile := filepath.Join(dir, "ready"), filepath.Join(dir, "go")
	logFile := filepath.Join(dir, "log.json")
	done := make(chan error, 1)
	go func() {
		done <- dispatch(context.Background(), []string{"http-client", "-url", "http://" + addr,
			"-warmup", "3", "-c", "3", "-n", "4", "-ready", ready, "-go", goFile, "-log", logFile}, io.Discard)
	}()
	waitFor(t, ready)
	select {
	case err := <-done:
		t.Fatalf("client finished before -go: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := writeFile(goFile); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s, err := readSummary(logFile)
	if err != nil {
		t.Fatal(err)
	}
	// Only the 4 requests after -go are logged, not the warmup.
	if s.HTTP1.Requests != 4 || s.HTTP1.Exchanges["GET /slow?ms=100 200"] != 0 {
		t.Errorf("logged %+v", s.HTTP1)
	}
}

func TestDispatchErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"http-client", "-c", "0"}, "-c >= 1"},
		{[]string{"http-client", "-url", "https://x"}, "want http://"},
		{[]string{"curl-client", "-mode", "h3"}, "want http1 or h2"},
		{[]string{"dns-client", "-n", "2", "-tcp", "3"}, "-tcp must be"},
		{[]string{"merge"}, "usage"},
	}
	for _, tt := range tests {
		err := dispatch(ctx, tt.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestPlanStep(t *testing.T) {
	if s := planStep(9, 10); s.target != largeStep.target {
		t.Errorf("planStep(9, 10) = %v, want the large step", s)
	}
	if s := planStep(len(apiPlan), 0); s.target != apiPlan[0].target {
		t.Errorf("plan does not cycle: %v", s)
	}
	batch := pipelineBatch(pipelineMix(true), 0, 3)
	if batch[1].method != "HEAD" {
		t.Errorf("pipelined batch with head: %v", batch)
	}
	for _, s := range pipelineMix(false) {
		if s.method == "HEAD" {
			t.Errorf("HEAD in a batch without -pipeline-head")
		}
	}
}

func waitFor(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

func writeFile(path string) error { return os.WriteFile(path, nil, 0o644) }
