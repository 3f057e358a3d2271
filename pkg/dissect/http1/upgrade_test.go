package http1

import (
	"bytes"
	"compress/gzip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// fakeUp stands in for the HTTP/2 parser an h2c upgrade hands over to.
type fakeUp struct {
	calls int
	req   entry.Entry
	data  [2][]byte
	gaps  [2]int
	ended bool
}

func (f *fakeUp) hook(c *dissect.Conn, emit dissect.Emitter, req *entry.Entry) dissect.StreamParser {
	f.calls++
	f.req = *req
	return f
}

func (f *fakeUp) Data(dir dissect.Dir, data []byte, ts time.Time) {
	f.data[dir] = append(f.data[dir], data...)
}
func (f *fakeUp) Gap(dir dissect.Dir, n int) { f.gaps[dir] += n }
func (f *fakeUp) End(ts time.Time)           { f.ended = true }

func TestUpgradeH2C(t *testing.T) {
	const (
		req = "GET /svc HTTP/1.1\r\nHost: api\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" +
			"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
		preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
		resp    = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
		srv1    = "\x00\x00\x00\x04\x00\x00\x00\x00\x00"
		srv2    = "\x00\x00\x05\x01\x04\x00\x00\x00\x01\x88GET / HTTP/1.1\r\n"
		cli2    = "\x00\x00\x00\x04\x01\x00\x00\x00\x00"
	)
	steps := []step{
		cs(0, req+preface), // the preface before the 101 is held back, then handed over
		sc(1, resp+srv1),
		cs(2, cli2),
		gapOf(dissect.ClientToServer, 7),
		sc(3, srv2),
	}
	want := []*entry.Entry{mk(0, 1, req, resp, &entry.HTTP{Version: "1.1", Upgrade: "h2c",
		Request: &entry.HTTPRequest{Method: "GET", Target: "/svc", Authority: "api",
			Headers: hdr("host", "api", "connection", "Upgrade, HTTP2-Settings", "upgrade", "h2c",
				"http2-settings", "AAMAAABkAARAAAAAAAIAAAAA")},
		Response: &entry.HTTPResponse{Status: 101, Reason: "Switching Protocols",
			Headers: hdr("connection", "Upgrade", "upgrade", "h2c")},
	})}
	for name, ch := range chunkings() {
		t.Run(name, func(t *testing.T) {
			up := &fakeUp{}
			got, _ := run(steps, dissect.DefaultOptions(), ch, map[string]UpgradeFunc{"H2C": up.hook})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if up.calls != 1 || up.req.Path != "/svc" || up.req.HTTP.Upgrade != "h2c" {
				t.Errorf("hook called %d times with %s %q", up.calls, up.req.Path, up.req.HTTP.Upgrade)
			}
			if got, want := string(up.data[dissect.ClientToServer]), preface+cli2; got != want {
				t.Errorf("client bytes handed over = %q, want %q", got, want)
			}
			if got, want := string(up.data[dissect.ServerToClient]), srv1+srv2; got != want {
				t.Errorf("server bytes handed over = %q, want %q", got, want)
			}
			if up.gaps != [2]int{7, 0} || !up.ended {
				t.Errorf("gaps %v ended %v, want [7 0] true", up.gaps, up.ended)
			}
		})
	}
}

// TestUpgradeHoldOverflow: client bytes beyond maxHold before the 101 reach
// the upgraded parser as a gap.
func TestUpgradeHoldOverflow(t *testing.T) {
	const req = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n"
	early := strings.Repeat("x", maxHold+100)
	up := &fakeUp{}
	run([]step{cs(0, req+early), sc(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")},
		dissect.DefaultOptions(), whole, map[string]UpgradeFunc{"h2c": up.hook})
	if len(up.data[0]) != maxHold || up.gaps[0] != 100 {
		t.Errorf("handed over %d bytes and a gap of %d, want %d and 100", len(up.data[0]), up.gaps[0], maxHold)
	}
}

func TestPipelining(t *testing.T) {
	var reqs, resps strings.Builder
	var want []*entry.Entry
	for i := range 50 {
		path := "/item/" + strconv.Itoa(i)
		body := strings.Repeat("b", i)
		req := "GET " + path + " HTTP/1.1\r\nHost: svc\r\n\r\n"
		status := 200 + i%3
		resp := "HTTP/1.1 " + strconv.Itoa(status) + " X\r\nContent-Length: " + strconv.Itoa(i) + "\r\n\r\n" + body
		reqs.WriteString(req)
		resps.WriteString(resp)
		want = append(want, mk(0, 1, req, resp, &entry.HTTP{Version: "1.1",
			Request: &entry.HTTPRequest{Method: "GET", Target: path, Authority: "svc", Headers: hdr("host", "svc")},
			Response: &entry.HTTPResponse{Status: status, Reason: "X", Headers: hdr("content-length", strconv.Itoa(i)),
				Body: text(body)},
		}))
	}
	for name, ch := range chunkings() {
		t.Run(name, func(t *testing.T) {
			got, stats := run([]step{cs(0, reqs.String()), sc(1, resps.String())}, dissect.DefaultOptions(), ch, nil)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if stats != (dissect.ParserStats{Entries: 50}) {
				t.Errorf("stats = %+v", stats)
			}
		})
	}
}

// TestOutstandingBound: past maxOutstanding waiting requests, the oldest are
// emitted unpaired and the responses pair with the newest.
func TestOutstandingBound(t *testing.T) {
	const n = maxOutstanding + 30
	var reqs, resps strings.Builder
	for i := range n {
		reqs.WriteString("GET /" + strconv.Itoa(i) + " HTTP/1.1\r\n\r\n")
	}
	for range maxOutstanding {
		resps.WriteString(okC)
	}
	got, _ := run([]step{cs(0, reqs.String()), sc(1, resps.String())}, dissect.DefaultOptions(), whole, nil)
	if len(got) != n {
		t.Fatalf("got %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		wantErr, wantStatus := "", "200"
		if i < n-maxOutstanding {
			wantErr, wantStatus = errNoResponse, ""
		}
		if e.Path != "/"+strconv.Itoa(i) || e.Error != wantErr || e.Status != wantStatus {
			t.Errorf("entry %d: %s status %q error %q, want /%d %q %q", i, e.Path, e.Status, e.Error, i, wantStatus, wantErr)
		}
	}
}

// TestDecompressionBomb: a small gzip body that inflates to 64 MiB yields at
// most MaxBody bytes and allocates little.
func TestDecompressionBomb(t *testing.T) {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 64 {
		w.Write(zeros)
	}
	w.Close()
	gz := b.String()
	resp := "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + strconv.Itoa(len(gz)) + "\r\n\r\n" + gz
	opts := dissect.Options{MaxBody: 1 << 20, Source: entry.SourceFile}

	run([]step{cs(0, getC), sc(1, resp)}, opts, whole, nil) // warm the pools
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, _ := run([]step{cs(0, getC), sc(1, resp)}, opts, whole, nil)
	runtime.ReadMemStats(&after)

	if len(got) != 1 {
		t.Fatalf("got %d entries", len(got))
	}
	body := got[0].HTTP.Response.Body
	if len(body.Data) != opts.MaxBody || !body.Truncated || body.Decoded != "gzip" || body.Size != int64(len(gz)) {
		t.Errorf("body: %d bytes, truncated %v, decoded %q, size %d", len(body.Data), body.Truncated, body.Decoded, body.Size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("allocated %d bytes for a %d byte body limit", alloc, opts.MaxBody)
	}
}

func TestIncompleteAtEnd(t *testing.T) {
	got, _ := run([]step{cs(0, getC), sc(1, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")},
		dissect.DefaultOptions(), whole, nil)
	want := []*entry.Entry{withErr(mk(0, 1, getC, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", &entry.HTTP{
		Version: "1.1", Request: httpC().Request,
		Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: hdr("content-length", "10"),
			Body: entry.Body{Size: 3, Data: "abc"}},
	}), errIncompleteResp)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

// TestAfterEnd: nothing is emitted after End.
func TestAfterEnd(t *testing.T) {
	rec := &recorder{}
	p := Protocol().NewStream(testConn(dissect.DefaultOptions()), rec)
	p.End(at(0))
	p.Data(dissect.ClientToServer, []byte(getA), at(1))
	p.Data(dissect.ServerToClient, []byte(okA), at(2))
	p.End(at(3))
	if len(rec.entries) != 0 {
		t.Errorf("got %d entries after End", len(rec.entries))
	}
}

// TestQueuedBytesBound: large pipelined heads are given up on before they
// hold more than maxQueued bytes.
func TestQueuedBytesBound(t *testing.T) {
	const n = 40
	pad := strings.Repeat("p", 60<<10)
	var reqs strings.Builder
	for i := range n {
		reqs.WriteString("GET /" + strconv.Itoa(i) + " HTTP/1.1\r\nX-Pad: " + pad + "\r\n\r\n")
	}
	got, _ := run([]step{cs(0, reqs.String()), sc(1, okC)}, dissect.DefaultOptions(), whole, nil)
	if len(got) != n {
		t.Fatalf("got %d entries, want %d", len(got), n)
	}
	kept := maxQueued / (60<<10 + 40)
	first := n - kept
	for i, e := range got {
		if i < first && e.Error != errNoResponse {
			t.Errorf("entry %d (%s): error %q, want %q", i, e.Path, e.Error, errNoResponse)
		}
	}
	if e := got[first]; e.Path != "/"+strconv.Itoa(first) || e.Status != "200" {
		t.Errorf("the oldest request kept is %s (%q), want /%d answered", e.Path, e.Status, first)
	}
}

func TestChunkedError(t *testing.T) {
	bad := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"
	got, stats := run([]step{cs(0, getC), sc(1, bad+"\r\n"), cs(2, getA), sc(3, okA)}, dissect.DefaultOptions(), whole, nil)
	if len(got) != 2 || got[0].Error != errChunked || got[0].Status != "200" || got[1].Path != "/a" || got[1].Error != "" {
		t.Fatalf("entries: %+v", got)
	}
	if stats.Resyncs != 1 {
		t.Errorf("stats %+v, want one resync", stats)
	}
}

// TestGapWhileHolding: client bytes lost while an upgrade is undecided, and
// those after them, count as a gap once HTTP/1 goes on.
func TestGapWhileHolding(t *testing.T) {
	const ws = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
	got, stats := run([]step{cs(0, ws+"GET /lo"), gapOf(dissect.ClientToServer, 10), cs(1, "st HTTP/1.1\r\n\r\n"),
		sc(2, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"+okA), cs(3, getC), sc(4, okC)},
		dissect.DefaultOptions(), whole, nil)
	if len(got) != 2 || got[0].Path != "/ws" || got[0].Status != "400" || got[1].Path != "/c" || got[1].Status != "200" {
		for _, e := range got {
			t.Logf("%s %s %s %s", e.Method, e.Path, e.Status, e.Error)
		}
		t.Fatalf("got %d entries", len(got))
	}
	if stats.Dropped != 1 {
		t.Errorf("stats %+v, want the answer to the lost request dropped", stats)
	}
}
