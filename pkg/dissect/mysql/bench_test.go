package mysql

import (
	"strconv"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// BenchmarkQueries parses 1000 point SELECTs, each answered with a result
// set of 2 columns and 10 rows, on one connection.
func BenchmarkQueries(b *testing.B) {
	var c2s, s2c [][]byte
	for i := range 1000 {
		c2s = append(c2s, pkt(0, []byte{comQuery}, s("SELECT id, name FROM items WHERE category = "+strconv.Itoa(i))))
		resp := cat(pkt(1, []byte{2}), pkt(2, colDef("id")), pkt(3, colDef("name")), pkt(4, eofPkt(0x22)))
		for r := range 10 {
			resp = append(resp, pkt(byte(5+r), row(strconv.Itoa(r), "widget number "+strconv.Itoa(r)))...)
		}
		s2c = append(s2c, append(resp, pkt(15, eofPkt(0x22))...))
	}
	var total int64
	for i := range c2s {
		total += int64(len(c2s[i]) + len(s2c[i]))
	}
	conn := testConn()
	n := 0
	emit := dissect.EmitFunc(func(*entry.Entry) { n++ })
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		p := Protocol().NewStream(conn, emit)
		for i := range c2s {
			p.Data(dissect.ClientToServer, c2s[i], t0)
			p.Data(dissect.ServerToClient, s2c[i], t0)
		}
		p.End(t0)
	}
	if n == 0 {
		b.Fatal("no entries")
	}
}
