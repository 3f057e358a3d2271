package websocket

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzWebSocket feeds two arbitrary directions of frames, interleaved at
// arbitrary split points with occasional gaps, with and without
// permessage-deflate. The parser must not panic, must emit nothing after
// End, and every payload must stay within the bound.
func FuzzWebSocket(f *testing.F) {
	d := deflateMessages(&testing.T{}, []string{"hello hello hello", "hello again"}, true)
	f.Add(cat(frame(true, false, opText, []byte("hi"), true), frame(false, false, opBinary, []byte{1, 2}, true),
		frame(true, false, opPing, nil, true), frame(true, false, opContinuation, []byte{3}, true)),
		cat(frame(true, false, opText, []byte("hi"), false), frame(true, false, opClose, []byte{3, 0xE9, 'x'}, false)),
		true, uint64(1))
	f.Add(frame(true, true, opText, d[0], true), cat(frame(true, true, opText, d[0], false), frame(true, true, opText, d[1], false)),
		true, uint64(2))
	f.Add([]byte{0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, []byte{0xC1, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, false, uint64(3))

	const maxBody = 64
	f.Fuzz(func(t *testing.T, c2s, s2c []byte, deflate bool, seed uint64) {
		r := rand.New(rand.NewPCG(seed, ^seed))
		var ended bool
		n := 0
		emit := dissect.EmitFunc(func(e *entry.Entry) {
			if ended {
				t.Fatal("entry emitted after End")
			}
			n++
			if e.WS == nil || len(e.WS.Payload.Data) > 2*maxBody || len(e.WS.CloseReason) > maxCloseReason {
				t.Fatalf("entry %+v", e)
			}
		})
		ext := ""
		if deflate {
			ext = "permessage-deflate"
			if seed&1 == 0 {
				ext += "; server_no_context_takeover"
			}
		}
		req := &entry.Entry{Path: "/", HTTP: &entry.HTTP{Response: &entry.HTTPResponse{
			Headers: map[string]string{"sec-websocket-extensions": ext}}}}
		p := NewUpgraded(testConn(maxBody), emit, req)
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
			k := 1 + r.IntN(len(*src))
			if r.IntN(32) == 0 {
				p.Gap(dir, k)
			} else {
				p.Data(dir, (*src)[:k], ts)
			}
			*src = (*src)[k:]
			ts = ts.Add(time.Millisecond)
		}
		p.End(ts)
		ended = true
		p.Data(dissect.ClientToServer, frame(true, false, opText, []byte("x"), true), ts)
		p.End(ts)
		if st := p.(dissect.StatsReporter).Stats(); st.Entries != int64(n) {
			t.Errorf("stats count %d entries, %d emitted", st.Entries, n)
		}
	})
}
