package websocket

import (
	"strconv"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// BenchmarkMessages parses 1000 small JSON text messages each way, masked
// from the client, as a chat or a subscription sends them.
func BenchmarkMessages(b *testing.B) {
	benchmark(b, "")
}

// BenchmarkDeflate is the same with permessage-deflate, no context
// takeover (what gorilla/websocket sends).
func BenchmarkDeflate(b *testing.B) {
	benchmark(b, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
}

func benchmark(b *testing.B, ext string) {
	var c2s, s2c []byte
	for i := range 1000 {
		msg := []byte(`{"type":"next","id":"` + strconv.Itoa(i) + `","payload":{"data":{"price":{"sku":"A-1","value":12.5}}}}`)
		if ext != "" {
			msg = deflateMessages(&testing.T{}, []string{string(msg)}, false)[0]
		}
		c2s = append(c2s, frame(true, ext != "", opText, msg, true)...)
		s2c = append(s2c, frame(true, ext != "", opText, msg, false)...)
	}
	req := &entry.Entry{Path: "/ws", HTTP: &entry.HTTP{Response: &entry.HTTPResponse{
		Headers: map[string]string{"sec-websocket-extensions": ext}}}}
	conn := testConn(dissect.DefaultOptions().MaxBody)
	n := 0
	emit := dissect.EmitFunc(func(*entry.Entry) { n++ })
	b.SetBytes(int64(len(c2s) + len(s2c)))
	b.ReportAllocs()
	for b.Loop() {
		p := NewUpgraded(conn, emit, req)
		for off := 0; off < max(len(c2s), len(s2c)); off += 1448 {
			if off < len(c2s) {
				p.Data(dissect.ClientToServer, c2s[off:min(off+1448, len(c2s))], t0)
			}
			if off < len(s2c) {
				p.Data(dissect.ServerToClient, s2c[off:min(off+1448, len(s2c))], t0)
			}
		}
		p.End(t0)
	}
	if n == 0 {
		b.Fatal("no entries")
	}
}
