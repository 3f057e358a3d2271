package tshark

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFieldsDNS(t *testing.T) {
	requireTshark(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := Fields(ctx, filepath.Join(testdata, "dns.pcap"), "dns && udp",
		"dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.flags.rcode")
	if err != nil {
		t.Fatal(err)
	}
	// dig's UDP queries come first: the first is "shop.shark.test A" and
	// its answer; the sixth question is the NXDOMAIN one.
	want := [][]string{
		{"0", "shop.shark.test", "1", ""},
		{"1", "shop.shark.test", "1", "0"},
	}
	if len(rows) < 12 {
		t.Fatalf("got %d rows, want at least 12", len(rows))
	}
	if diff := cmp.Diff(want, rows[:2]); diff != "" {
		t.Errorf("first rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1", "missing.shark.test", "1", "3"}, rows[11]); diff != "" {
		t.Errorf("NXDOMAIN row (-want +got):\n%s", diff)
	}
}

// TestFieldsOccurrences checks that several HTTP/1 requests pipelined in one
// segment come back as one row whose cells Split into aligned values.
func TestFieldsOccurrences(t *testing.T) {
	requireTshark(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := Fields(ctx, filepath.Join(testdata, "http1.pcap"),
		`http.user_agent contains "pipeline"`, "http.request.method", "http.request.uri")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d frames with pipelined requests, want 3 batches", len(rows))
	}
	methods, uris := Split(rows[0][0]), Split(rows[0][1])
	want := []string{"/api/items/1", "/api/items/999", "/stream?chunks=3", "/api/etag"}
	if diff := cmp.Diff(want, uris); diff != "" {
		t.Errorf("first batch targets (-want +got):\n%s", diff)
	}
	if len(methods) != len(uris) {
		t.Errorf("methods %v and targets %v do not align", methods, uris)
	}
}

func TestFieldsErrors(t *testing.T) {
	requireTshark(t)
	ctx := context.Background()
	if _, err := Fields(ctx, filepath.Join(testdata, "dns.pcap"), ""); err == nil {
		t.Error("Fields with no field: want error")
	}
	_, err := Fields(ctx, filepath.Join(testdata, "no-such.pcap"), "", "frame.number")
	if err == nil || !strings.Contains(err.Error(), "no-such.pcap") {
		t.Errorf("missing file: got %v, want an error naming the file", err)
	}
	_, err = Fields(ctx, filepath.Join(testdata, "dns.pcap"), "dns &&", "frame.number")
	if err == nil {
		t.Error("bad display filter: want error")
	}
}

func TestNotInstalled(t *testing.T) {
	r := &Runner{Path: "/nonexistent/tshark"}
	_, err := r.Fields(context.Background(), "x.pcap", "", "frame.number")
	if !errors.Is(err, ErrNotInstalled) {
		t.Errorf("got %v, want ErrNotInstalled", err)
	}
	if _, err := r.Summarize(context.Background(), "x.pcap"); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Summarize: got %v, want ErrNotInstalled", err)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		cell string
		want []string
	}{
		{"", nil},
		{"GET", []string{"GET"}},
		{"GET|HEAD|GET", []string{"GET", "HEAD", "GET"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, Split(tt.cell)); diff != "" {
			t.Errorf("Split(%q) (-want +got):\n%s", tt.cell, diff)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{QTypeName(1), "A"},
		{QTypeName(28), "AAAA"},
		{QTypeName(33), "SRV"},
		{QTypeName(99), "TYPE99"},
		{RCodeName(0), "NOERROR"},
		{RCodeName(3), "NXDOMAIN"},
		{RCodeName(9), "RCODE9"},
		{RCodeName(-1), "RCODE-1"},
		{ExchangeKey("GET", "/a?b=1", 204), "GET /a?b=1 204"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestSummaryAdd(t *testing.T) {
	a := Summary{
		HTTP1: HTTPStats{Requests: 1, Responses: 1, Exchanges: map[string]int{"GET / 200": 1}},
		DNS:   DNSStats{Queries: 2, QTypes: map[string]int{"A": 2}},
	}
	b := Summary{
		HTTP1: HTTPStats{Requests: 2, Responses: 1, Exchanges: map[string]int{"GET / 200": 1, "GET /x 404": 1}},
		GRPC:  GRPCStats{Calls: 1, Methods: map[string]int{"/s/M": 1}, Statuses: map[string]int{"0": 1}},
	}
	a.Add(b)
	want := Summary{
		HTTP1: HTTPStats{Requests: 3, Responses: 2, Exchanges: map[string]int{"GET / 200": 2, "GET /x 404": 1}},
		GRPC:  GRPCStats{Calls: 1, Methods: map[string]int{"/s/M": 1}, Statuses: map[string]int{"0": 1}},
		DNS:   DNSStats{Queries: 2, QTypes: map[string]int{"A": 2}},
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("Add (-want +got):\n%s", diff)
	}
}
