package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var ts0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// sampleEntries covers each protocol family and each status class.
func sampleEntries() []*entry.Entry {
	front := entry.Endpoint{IP: "10.244.1.17", Port: 51234, Pod: "frontend-7d9c8b5f6-x2x9k", Namespace: "shop"}
	cart := entry.Endpoint{IP: "10.244.2.9", Port: 8080, Pod: "cart-5f6d7c8b9-abcde", Namespace: "shop"}
	dnsSrv := entry.Endpoint{IP: "10.96.0.10", Port: 53, Pod: "coredns-5d78c9869d-q7m2x", Namespace: "kube-system"}
	return []*entry.Entry{
		benchEntry(),
		{V: 1, ID: "2", TS: ts0.Add(time.Millisecond), ElapsedUS: 250_400, Proto: "http", Method: "POST", Path: "/checkout", Status: "503",
			Src: front, Dst: entry.Endpoint{IP: "10.244.3.4", Port: 80}, Size: entry.Size{Request: 2048, Response: 19}, Source: "af_packet", FlowID: "f2", Node: "node-1"},
		{V: 1, ID: "3", TS: ts0.Add(2 * time.Millisecond), ElapsedUS: 87, Proto: "grpc", Method: "POST", Path: "/shop.Cart/GetCart", Status: "NOT_FOUND",
			Src: front, Dst: cart, Size: entry.Size{Request: 120, Response: 3 << 20}, TLS: true, Source: "ebpf_tls", FlowID: "f3",
			GRPC: &entry.GRPC{Service: "shop.Cart", Method: "GetCart", Code: 5, Status: "NOT_FOUND"}},
		{V: 1, ID: "4", TS: ts0.Add(3 * time.Millisecond), ElapsedUS: 1_500, Proto: "dns", Method: "AAAA", Path: "nope.shop.svc.cluster.local", Status: "NXDOMAIN",
			Src: front, Dst: dnsSrv, Size: entry.Size{Request: 45, Response: 138}, Source: "af_packet", FlowID: "f4",
			DNS: &entry.DNS{ID: 7, Transport: "udp", QName: "nope.shop.svc.cluster.local", QType: "AAAA", QClass: "IN", RCode: "NXDOMAIN", Flags: []string{"rd", "ra"}}},
		{V: 1, ID: "5", TS: ts0.Add(4 * time.Millisecond), Proto: "dns", Method: "A", Path: "slow.example", Error: "no response",
			Src: entry.Endpoint{IP: "fd00::17", Port: 40000}, Dst: entry.Endpoint{IP: "fd00::a", Port: 53}, Size: entry.Size{Request: 30}, Source: "af_packet", FlowID: "f5"},
		{V: 1, ID: "6", TS: ts0.Add(5 * time.Millisecond), ElapsedUS: 12_345_678, Proto: "redis", Method: "GET", Path: "session:\x1b[31mevil\nline", Status: "OK",
			Src: cart, Dst: entry.Endpoint{IP: "10.244.2.30", Port: 6379, Pod: "redis-0", Namespace: "shop"}, Source: "af_packet", FlowID: "f6",
			Redis: &entry.Redis{Command: "GET", Args: []string{"session:x"}, Reply: "bulk", Type: "string"}},
		{V: 1, ID: "7", TS: ts0.Add(6 * time.Millisecond), ElapsedUS: 61_000_000, Proto: "tcp", Src: front, Dst: entry.Endpoint{IP: "203.0.113.9", Port: 443},
			Size: entry.Size{Request: 5 << 30, Response: 1023}, Source: "af_packet", FlowID: "f7", Error: "capture gap",
			Conn: &entry.ConnInfo{Transport: "tcp", ClientBytes: 5 << 30, ServerBytes: 1023, ClientPackets: 9, ServerPackets: 4, End: "rst"}},
	}
}

const sampleTemplate = `{{.TS.Format "15:04:05"}} {{color .Src.Pod (endpoint .Src)}} {{.Proto}} {{.Method}} {{.Path}} {{color "green" .Status}} {{latency .}}{{if .DNS}} dns={{json .DNS}}{{end}}`

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"line", Options{Format: FormatLine}},
		{"line_color", Options{Format: FormatLine, Color: ColorAlways}},
		{"wide", Options{Format: FormatWide, Color: ColorNever}},
		{"wide_color", Options{Wide: true, Color: ColorAuto, IsTTY: true}},
		{"json", Options{Format: FormatJSON, Color: ColorAlways}},
		{"template", Options{Format: FormatTemplate, Template: sampleTemplate, Color: ColorAlways}},
	}
	t.Setenv("NO_COLOR", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Location = time.UTC
			r, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			out := r.Header(nil)
			for _, e := range sampleEntries() {
				out = r.Append(out, e)
			}
			golden := filepath.Join("testdata", tt.name+".golden.txt")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", golden, diff)
			}
			if n := bytes.Count(out, []byte("\n")); n != len(sampleEntries())+bytes.Count(r.Header(nil), []byte("\n")) {
				t.Errorf("%d lines", n)
			}
		})
	}
}

func TestNoColorUnlessTTY(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	for _, opts := range []Options{{}, {Color: ColorAuto}, {Color: ColorNever, IsTTY: true}, {Wide: true}} {
		r, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sampleEntries() {
			if out := r.Append(nil, e); bytes.Contains(out, []byte("\x1b[")) {
				t.Errorf("%+v: escape sequence in %q", opts, out)
			}
		}
	}
	t.Setenv("NO_COLOR", "1")
	r, _ := New(Options{IsTTY: true})
	if out := r.Append(nil, sampleEntries()[0]); bytes.Contains(out, []byte("\x1b[")) {
		t.Errorf("NO_COLOR: escape sequence in %q", out)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{Format: "yaml"}, `render: unknown output format "yaml" (want line, wide, json or template)`},
		{Options{Color: "sometimes"}, `render: unknown color mode "sometimes" (want auto, always or never)`},
		{Options{Format: FormatTemplate}, "render: template format needs a template"},
		{Options{Format: FormatTemplate, Template: "{{.Path"}, `render: template: output:1: unclosed action`},
		{Options{Format: FormatTemplate, Template: "{{nope .}}"}, `render: template: output:1: function "nope" not defined`},
	}
	for _, tt := range tests {
		_, err := New(tt.opts)
		if err == nil || err.Error() != tt.want {
			t.Errorf("New(%+v) = %v, want %q", tt.opts, err, tt.want)
		}
	}
}

func TestTemplateExecError(t *testing.T) {
	r, err := New(Options{Format: FormatTemplate, Template: "{{.Path}} {{.HTTP.Request.Method}}"})
	if err != nil {
		t.Fatal(err)
	}
	got := string(r.Append([]byte("before\n"), &entry.Entry{Path: "/x"}))
	if !strings.HasPrefix(got, "before\n<template error: ") || !strings.HasSuffix(got, ">\n") || strings.Count(got, "\n") != 2 {
		t.Errorf("got %q", got)
	}
}

func TestLatency(t *testing.T) {
	tests := []struct {
		us   int64
		err  string
		want string
	}{
		{0, "", "0µs"}, {0, "no response", "-"}, {999, "", "999µs"}, {1000, "", "1.00ms"}, {1234, "", "1.23ms"},
		{9999, "", "9.99ms"}, {10_000, "", "10.0ms"}, {12_345, "", "12.3ms"}, {99_999, "", "99.9ms"},
		{100_000, "", "100ms"}, {999_999, "", "999ms"}, {1_000_000, "", "1.00s"}, {1_050_000, "", "1.05s"},
		{12_345_678, "", "12.3s"}, {123_456_789, "", "123s"}, {5_000, "capture gap", "5.00ms"},
	}
	for _, tt := range tests {
		if got := string(appendLatency(nil, &entry.Entry{ElapsedUS: tt.us, Error: tt.err})); got != tt.want {
			t.Errorf("latency(%d, %q) = %q, want %q", tt.us, tt.err, got, tt.want)
		}
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0B"}, {1023, "1023B"}, {1024, "1.0KiB"}, {1536, "1.5KiB"}, {10 * 1024, "10KiB"}, {1023 * 1024, "1023KiB"},
		{1 << 20, "1.0MiB"}, {5 << 30, "5.0GiB"}, {1 << 52, "4.0PiB"}, {1 << 62, "4.0EiB"}, {1<<63 - 1, "8.0EiB"},
	}
	for _, tt := range tests {
		if got := string(appendSize(nil, tt.n)); got != tt.want {
			t.Errorf("size(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestAppendSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/plain?q=1", "/plain?q=1"},
		{"\x1b[2Jclear", `\x1b[2Jclear`},
		{"a\r\nb\tc\x7f", `a\x0d\x0ab\x09c\x7f`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"ünïcode ✓", "ünïcode ✓"},
	}
	for _, tt := range tests {
		if got := string(appendSafe(nil, tt.in, 100)); got != tt.want {
			t.Errorf("appendSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := string(appendSafe(nil, strings.Repeat("x", 10), 4)); got != "xxxx…" {
		t.Errorf("cut: %q", got)
	}
}

func TestPodColorStable(t *testing.T) {
	seen := map[string]bool{}
	for _, pod := range []string{"a", "b", "c", "frontend-1", "frontend-2", "cart-0", "redis-0", "db-0"} {
		c := podColor("shop", pod)
		if c != podColor("shop", pod) {
			t.Fatalf("unstable color for %s", pod)
		}
		seen[c] = true
	}
	if len(seen) < 4 {
		t.Errorf("8 pods share %d colors", len(seen))
	}
	// FNV-1a of "shop/cart-0" is 0xfcadf8ad: a fixed value, so colors
	// stay the same across releases.
	if got, want := podColor("shop", "cart-0"), podPalette[0xfcadf8ad%uint32(len(podPalette))]; got != want {
		t.Errorf("color %q, want %q", got, want)
	}
}

func TestConcurrentAppend(t *testing.T) {
	for _, opts := range []Options{{Wide: true, Color: ColorAlways}, {Format: FormatJSON}, {Format: FormatTemplate, Template: sampleTemplate}} {
		r, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		es := sampleEntries()
		var want []byte
		for _, e := range es {
			want = r.Append(want, e)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				var got []byte
				for _, e := range es {
					got = r.Append(got, e)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%+v: concurrent output differs", opts)
				}
			})
		}
		wg.Wait()
	}
}

func BenchmarkLine(b *testing.B) {
	r, _ := New(Options{Wide: true, Color: ColorAlways, Location: time.UTC})
	e := benchEntry()
	buf := r.Append(nil, e)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = r.Append(buf[:0], e)
	}
}
