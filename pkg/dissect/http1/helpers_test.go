package http1

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// step is one event of a conversation: bytes of one direction, or a gap.
type step struct {
	dir  dissect.Dir
	data string
	gap  int
	ms   int
}

func cs(ms int, data string) step { return step{dir: dissect.ClientToServer, data: data, ms: ms} }
func sc(ms int, data string) step { return step{dir: dissect.ServerToClient, data: data, ms: ms} }
func gapOf(dir dissect.Dir, n int) step {
	return step{dir: dir, gap: n}
}

// chunker splits n bytes into the lengths of successive Data calls.
type chunker func(n int) []int

func whole(n int) []int { return []int{n} }

func bytewise(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

func randomChunks(seed uint64) chunker {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(n int) []int {
		var out []int
		for n > 0 {
			k := 1 + r.IntN(min(n, 1+r.IntN(64)))
			out = append(out, k)
			n -= k
		}
		return out
	}
}

// chunkings are the ways every table case is fed.
func chunkings() map[string]chunker {
	m := map[string]chunker{"whole": whole, "bytewise": bytewise}
	for seed := uint64(1); seed <= 8; seed++ {
		m["random"+strconv.FormatUint(seed, 10)] = randomChunks(seed)
	}
	return m
}

type recorder struct{ entries []*entry.Entry }

func (r *recorder) Emit(e *entry.Entry) { r.entries = append(r.entries, e) }

var (
	client = netip.MustParseAddrPort("10.0.0.1:40000")
	server = netip.MustParseAddrPort("10.0.0.2:80")
)

func testConn(opts dissect.Options) *dissect.Conn {
	return &dissect.Conn{Transport: "tcp", Client: client, Server: server, FlowID: "f1", Opts: &opts}
}

// copier is a Recycler: it keeps deep copies, so a parser that reuses an
// entry it emitted cannot change what was recorded.
type copier struct{ entries []*entry.Entry }

func (c *copier) RecyclesEntries()    {}
func (c *copier) Emit(e *entry.Entry) { c.entries = append(c.entries, cloneEntry(e)) }

// cloneEntry deep-copies an HTTP entry, strings included (a recycled
// exchange reuses the bytes they point to), then scribbles over e, as a
// reuse would.
func cloneEntry(e *entry.Entry) *entry.Entry {
	c := *e
	c.Method, c.Path, c.Status, c.Error = strings.Clone(e.Method), strings.Clone(e.Path), strings.Clone(e.Status), strings.Clone(e.Error)
	if e.HTTP != nil {
		h := *e.HTTP
		h.Version, h.Upgrade = strings.Clone(h.Version), strings.Clone(h.Upgrade)
		if r := h.Request; r != nil {
			rc := *r
			rc.Method, rc.Target, rc.Authority = strings.Clone(r.Method), strings.Clone(r.Target), strings.Clone(r.Authority)
			rc.Body.Data = strings.Clone(r.Body.Data)
			rc.Headers, rc.Trailers = cloneMap(r.Headers), cloneMap(r.Trailers)
			h.Request = &rc
		}
		if r := h.Response; r != nil {
			rc := *r
			rc.Reason = strings.Clone(r.Reason)
			rc.Body.Data = strings.Clone(r.Body.Data)
			rc.Headers, rc.Trailers = cloneMap(r.Headers), cloneMap(r.Trailers)
			h.Response = &rc
		}
		c.HTTP = &h
	}
	*e = entry.Entry{Method: "SCRIBBLED"}
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[strings.Clone(k)] = strings.Clone(v)
	}
	return c
}

// run feeds steps to a new parser, each step's bytes split by ch, then ends
// the connection one millisecond after the last step. Without upgrade
// hooks (which may count their calls), it runs the steps a second time
// with exchanges recycled (Conn.Reuse), and panics if that changes the
// entries or the counts.
func run(steps []step, opts dissect.Options, ch chunker, ups map[string]UpgradeFunc) ([]*entry.Entry, dissect.ParserStats) {
	rec := &recorder{}
	got, st := runTo(rec, steps, opts, ch, ups)
	if ups == nil {
		cp := &copier{}
		reused, rst := runTo(cp, steps, opts, ch, nil)
		if diff := cmp.Diff(got, reused, cmpopts.EquateEmpty()); diff != "" || rst != st {
			panic(fmt.Sprintf("recycled exchanges change the result (-plain +recycled):\n%s\nstats %+v, recycled %+v", diff, st, rst))
		}
	}
	return got, st
}

func runTo(emit dissect.Emitter, steps []step, opts dissect.Options, ch chunker, ups map[string]UpgradeFunc) ([]*entry.Entry, dissect.ParserStats) {
	conn := testConn(opts)
	_, conn.Reuse = emit.(dissect.Recycler)
	p := NewProtocol(ups).NewStream(conn, emit)
	last := 0
	for _, s := range steps {
		last = max(last, s.ms)
		if s.gap > 0 {
			p.Gap(s.dir, s.gap)
			continue
		}
		b := []byte(s.data)
		for _, n := range ch(len(b)) {
			// A copy, so that a parser keeping a reference is caught.
			chunk := append([]byte(nil), b[:n]...)
			p.Data(s.dir, chunk, at(s.ms))
			clear(chunk)
			b = b[n:]
		}
	}
	p.End(at(last + 1))
	var got []*entry.Entry
	switch r := emit.(type) {
	case *recorder:
		got = r.entries
	case *copier:
		got = r.entries
	}
	return got, p.(dissect.StatsReporter).Stats()
}

// mk builds the entry expected for an exchange of the raw messages req and
// resp (their lengths are the wire sizes), from start to end.
func mk(start, end int, req, resp string, h *entry.HTTP) *entry.Entry {
	e := &entry.Entry{
		V:      entry.Version,
		TS:     at(start),
		Proto:  entry.ProtoHTTP,
		Src:    entry.Endpoint{IP: "10.0.0.1", Port: 40000},
		Dst:    entry.Endpoint{IP: "10.0.0.2", Port: 80},
		Source: entry.SourceFile,
		FlowID: "f1",
		Size:   entry.Size{Request: int64(len(req)), Response: int64(len(resp))},
		HTTP:   h,
	}
	if h.Request != nil {
		e.Method, e.Path = h.Request.Method, h.Request.Target
	}
	if h.Response != nil {
		e.Status = strconv.Itoa(h.Response.Status)
		e.ElapsedUS = at(end).Sub(at(start)).Microseconds()
	}
	return e
}

func withErr(e *entry.Entry, err string) *entry.Entry {
	e.Error = err
	return e
}

func text(s string) entry.Body { return entry.Body{Size: int64(len(s)), Data: s} }

func hdr(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
