package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// testCtx is a context bounded by the test's deadline or 30 seconds.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	d := 30 * time.Second
	if dl, ok := t.Deadline(); ok {
		d = min(d, time.Until(dl)-time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var ts0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// httpEntry is an HTTP exchange between two raw IPs.
// dialWorker connects a worker named name on node, closed at the test's end.
func dialWorker(ctx context.Context, t *testing.T, h *hubtest.Hub, node, name string) *hubtest.Worker {
	t.Helper()
	w, err := h.DialWorker(ctx, wire.Hello{Node: node, Worker: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func httpEntry(id string, src, dst string) entry.Entry {
	return entry.Entry{
		V: entry.Version, ID: id, TS: ts0, ElapsedUS: 1200, Proto: entry.ProtoHTTP,
		Method: "GET", Path: "/api/items", Status: "200",
		Src:    entry.Endpoint{IP: src, Port: 41000},
		Dst:    entry.Endpoint{IP: dst, Port: 8080},
		Size:   entry.Size{Request: 120, Response: 900},
		Source: entry.SourceAFPacket, FlowID: "f-" + id,
		HTTP: &entry.HTTP{Version: "1.1",
			Request:  &entry.HTTPRequest{Method: "GET", Target: "/api/items", Headers: map[string]string{"user-agent": "curl/8.5.0"}},
			Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: map[string]string{"content-type": "application/json"}}},
	}
}

func dnsEntry(id string) entry.Entry {
	return entry.Entry{
		V: entry.Version, ID: id, TS: ts0, Proto: entry.ProtoDNS, Method: "A", Path: "cart.shop.svc.cluster.local.",
		Status: "NOERROR", Src: entry.Endpoint{IP: "10.0.0.1", Port: 53000}, Dst: entry.Endpoint{IP: "10.96.0.10", Port: 53},
		Source: entry.SourceAFPacket, FlowID: "f-" + id,
		DNS: &entry.DNS{ID: 7, Transport: "udp", QName: "cart.shop.svc.cluster.local.", QType: "A", RCode: "NOERROR"},
	}
}

func redisEntry(id string) entry.Entry {
	return entry.Entry{
		V: entry.Version, ID: id, TS: ts0, Proto: entry.ProtoRedis, Method: "GET", Path: "k",
		Src: entry.Endpoint{IP: "10.0.0.1", Port: 53001}, Dst: entry.Endpoint{IP: "10.0.0.3", Port: 6379},
		Source: entry.SourceAFPacket, FlowID: "f-" + id, Redis: &entry.Redis{Command: "GET", Args: []string{"k"}},
	}
}

// nextIDs reads n entries and returns their ids; drop notices fail.
func nextIDs(ctx context.Context, t *testing.T, s *hubtest.Subscriber, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		e, err := s.NextEntry(ctx, nil)
		if err != nil {
			t.Fatalf("after %v: %v", ids, err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// nextFilter returns the next filter message a worker receives.
func nextFilter(ctx context.Context, t *testing.T, w *hubtest.Worker) string {
	t.Helper()
	var f wire.Filter
	if err := w.Expect(ctx, wire.TypeFilter, &f); err != nil {
		t.Fatal(err)
	}
	return f.Expr
}

// do sends an API request with the token and returns status and body.
func do(ctx context.Context, t *testing.T, h *hubtest.Hub, method, path string, body any) (int, string) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := h.Do(ctx, method, path, nil, b)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// metric returns the value of one sample line of /metrics ("name{labels}").
func metric(ctx context.Context, t *testing.T, h *hubtest.Hub, sample string) string {
	t.Helper()
	code, body := do(ctx, t, h, http.MethodGet, wire.PathMetrics, nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return fmt.Sprintf("<no sample %s>", sample)
}

// eventually polls cond every 10ms until it holds or ctx is done.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
