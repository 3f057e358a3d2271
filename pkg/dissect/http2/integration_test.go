package http2_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http1"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http2"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type collector struct{ entries []*entry.Entry }

func (c *collector) Emit(e *entry.Entry) { c.entries = append(c.entries, e) }

// detectAndParse runs a recording through the detection framework with
// the HTTP/2 and HTTP/1 (with h2c upgrades) dissectors, on a port neither
// lists, so that content alone decides. skip drops the first bytes of each
// direction, as when a capture starts mid-connection.
func detectAndParse(rec http2.Recording, skip [2]int) []*entry.Entry {
	reg := dissect.NewRegistry(dissect.DefaultOptions(),
		http2.Protocol(),
		http1.NewProtocol(map[string]http1.UpgradeFunc{"h2c": http2.NewUpgraded}))
	info := dissect.FlowInfo{
		Transport: "tcp",
		A:         netip.MustParseAddrPort("10.0.0.1:40000"),
		B:         netip.MustParseAddrPort("10.0.0.2:7777"),
		ID:        "f1",
	}
	if skip == [2]int{} {
		info.Opener = dissect.OpenerA
	}
	var c collector
	h := reg.NewConn(info, &c, nil)
	for i, ch := range rec {
		b := ch.Bytes()
		n := min(skip[ch.Dir()], len(b))
		skip[ch.Dir()] -= n
		if n < len(b) {
			h.Data(ch.Dir() == 0, b[n:], t0.Add(time.Duration(i)*time.Millisecond))
		}
	}
	h.End(t0.Add(time.Hour), "fin")
	return c.entries
}

type summary struct {
	Proto, Method, Path, Status, Error string
	SrcPort                            int
}

func summarize(es []*entry.Entry) []summary {
	var out []summary
	for _, e := range es {
		out = append(out, summary{e.Proto, e.Method, e.Path, e.Status, e.Error, e.Src.Port})
	}
	return out
}

func TestDetectPriorKnowledge(t *testing.T) {
	got := summarize(detectAndParse(http2.RecordH2C(t), [2]int{}))
	want := []summary{
		{"http2", "GET", "/hello", "200", "", 40000},
		{"http2", "POST", "/echo", "200", "", 40000},
		{"http2", "GET", "/gzip", "200", "", 40000},
		{"http2", "GET", "/trailers", "200", "", 40000},
		{"http2", "GET", "/missing", "404", "", 40000},
		{"http2", "GET", "/big", "200", "", 40000},
		{"http2", "GET", "/binary", "200", "", 40000},
		{"http2", "GET", "/hang", "202", "RST_STREAM CANCEL", 40000},
		{"http2", "GET", "/hello", "200", "", 40000},
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b summary) bool { return a.Path < b.Path })); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestDetectGRPC(t *testing.T) {
	got := summarize(detectAndParse(http2.RecordGRPC(t), [2]int{}))
	want := []summary{
		{"grpc", "POST", "/test.Echo/Unary", "OK", "", 40000},
		{"grpc", "POST", "/test.Echo/Count", "OK", "", 40000},
		{"grpc", "POST", "/test.Echo/Chat", "OK", "", 40000},
		{"grpc", "POST", "/test.Echo/Unary", "NOT_FOUND", "", 40000},
		{"grpc", "POST", "/grpc.health.v1.Health/Check", "OK", "", 40000},
		{"grpc", "POST", "/test.Echo/Unary", "OK", "", 40000},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

// TestDetectUpgrade runs an h2c upgrade through the HTTP/1 dissector, which
// hands the connection to NewUpgraded after the 101.
func TestDetectUpgrade(t *testing.T) {
	got := summarize(detectAndParse(http2.RecordUpgrade(t), [2]int{}))
	want := []summary{
		{"http", "GET", "/hello", "101", "", 40000},
		{"http2", "GET", "/hello", "200", "", 40000},
		{"http2", "GET", "/trailers", "200", "", 40000},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}
