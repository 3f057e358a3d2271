package http1

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// sink is an upgraded parser that only counts.
type sink struct{ n int }

func (s *sink) Data(_ dissect.Dir, b []byte, _ time.Time) { s.n += len(b) }
func (s *sink) Gap(dissect.Dir, int)                      {}
func (s *sink) End(time.Time)                             {}

// FuzzHTTP1 feeds two arbitrary directions, interleaved at arbitrary split
// points with occasional gaps. The parser must not panic, must emit nothing
// after End, and every entry must stay within the bounds.
func FuzzHTTP1(f *testing.F) {
	for _, tc := range parseCases() {
		var c2s, s2c []byte
		for _, s := range tc.steps {
			if s.dir == dissect.ClientToServer {
				c2s = append(c2s, s.data...)
			} else {
				s2c = append(s2c, s.data...)
			}
		}
		f.Add(c2s, s2c, uint64(len(tc.name)))
	}
	f.Add([]byte("GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
		[]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"), uint64(7))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"), []byte("HTTP/1.1 200 OK\r\n\r\n"), uint64(3))
	f.Add([]byte("garbage\nGET /x HTTP/1.1\n\n"), []byte("HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Length: 2, 2\n\nok"), uint64(0))

	opts := dissect.Options{MaxBody: 64, Redact: true, Source: entry.SourceFile}
	f.Fuzz(func(t *testing.T, c2s, s2c []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, ^seed))
		var ended bool
		var entries []*entry.Entry
		emit := dissect.EmitFunc(func(e *entry.Entry) {
			if ended {
				t.Fatal("entry emitted after End")
			}
			entries = append(entries, e)
		})
		ups := map[string]UpgradeFunc{"h2c": func(*dissect.Conn, dissect.Emitter, *entry.Entry) dissect.StreamParser { return &sink{} }}
		p := NewProtocol(ups).NewStream(testConn(opts), emit)
		ts := t0
		for len(c2s) > 0 || len(s2c) > 0 {
			dir := dissect.Dir(r.IntN(2))
			src := &c2s
			if dir == dissect.ServerToClient {
				src = &s2c
			}
			if len(*src) == 0 {
				continue
			}
			n := 1 + r.IntN(len(*src))
			if r.IntN(16) == 0 {
				p.Gap(dir, n)
			} else {
				p.Data(dir, append([]byte(nil), (*src)[:n]...), ts)
			}
			*src = (*src)[n:]
			ts = ts.Add(time.Millisecond)
		}
		p.End(ts)
		ended = true
		p.Data(dissect.ClientToServer, []byte("GET / HTTP/1.1\r\n\r\n"), ts)
		p.End(ts)

		for _, e := range entries {
			if n := entrySize(e); n > 6*maxHead+4*opts.MaxBody+1024 {
				t.Errorf("entry of %d bytes", n)
			}
			if e.Proto != entry.ProtoHTTP || e.HTTP == nil || e.HTTP.Request == nil {
				t.Errorf("malformed entry %+v", e)
			}
		}
		if st := p.(dissect.StatsReporter).Stats(); st.Entries != int64(len(entries)) {
			t.Errorf("stats count %d entries, %d emitted", st.Entries, len(entries))
		}
	})
}

// entrySize adds up the variable-length strings of an HTTP entry.
func entrySize(e *entry.Entry) int {
	n := len(e.Method) + len(e.Path) + len(e.Status) + len(e.Error)
	headers := func(m map[string]string) {
		for k, v := range m {
			n += len(k) + len(v)
		}
	}
	if rq := e.HTTP.Request; rq != nil {
		headers(rq.Headers)
		headers(rq.Trailers)
		n += len(rq.Target) + len(rq.Authority) + len(rq.Body.Data)
	}
	if rs := e.HTTP.Response; rs != nil {
		headers(rs.Headers)
		headers(rs.Trailers)
		n += len(rs.Reason) + len(rs.Body.Data)
	}
	return n
}
