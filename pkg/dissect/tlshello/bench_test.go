package tlshello

import (
	"crypto/tls"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// BenchmarkConnection parses the handshake of one TLS 1.3 connection with
// 64 KiB of application data each way after it, as the engine feeds it.
func BenchmarkConnection(b *testing.B) {
	t := &testing.T{}
	crt, pool := testCert(t)
	writes := handshake(t, &tls.Config{ServerName: "shop.shark.test", RootCAs: pool, NextProtos: []string{"h2"}},
		&tls.Config{Certificates: []tls.Certificate{crt}})
	record := append([]byte{23, 3, 3, 0x40, 0x00}, make([]byte, 1<<14)...)
	var total int64
	for _, w := range writes {
		total += int64(len(w.data))
	}
	total += 8 * int64(len(record))
	conn := testConn()
	emit := dissect.EmitFunc(func(*entry.Entry) {})
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		p := Protocol().NewStream(conn, emit)
		for _, w := range writes {
			p.Data(w.dir, w.data, t0)
		}
		for i := range 8 {
			p.Data(dissect.Dir(i&1), record, t0)
		}
		p.End(t0)
	}
}
