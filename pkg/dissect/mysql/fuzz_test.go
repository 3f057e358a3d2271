package mysql

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzMySQL feeds two arbitrary directions, interleaved at arbitrary split
// points with occasional gaps. The parser must not panic, must emit
// nothing after End, and every entry must stay within the bounds.
func FuzzMySQL(f *testing.F) {
	f.Add(cat(pkt(1, login(baseCaps, "u", "db")), pkt(0, []byte{comQuery}, s("SELECT a FROM t")),
		pkt(0, []byte{comStmtPrepare}, s("SELECT ?")), pkt(0, []byte{comStmtExecute}, le(1, 4), []byte{0}, le(1, 4))),
		cat(pkt(0, greeting(baseCaps)), pkt(2, okPkt(0, 2)), pkt(1, []byte{1}), pkt(2, colDef("a")), pkt(3, eofPkt(2)),
			pkt(4, row("1")), pkt(5, eofPkt(2|serverMoreResults)), pkt(6, okPkt(1, 2)),
			pkt(1, []byte{0}, le(1, 4), le(1, 2), le(1, 2), []byte{0}, le(0, 2)), pkt(2, colDef("?")), pkt(3, eofPkt(2)),
			pkt(1, errPkt(1146, "42S02", "no"))),
		uint64(1))
	f.Add(cat(pkt(0, []byte{comQuery}, s("LOAD DATA LOCAL INFILE 'f' INTO TABLE t")), pkt(2, s("data")), pkt(3)),
		cat(pkt(1, []byte{0xFB}, s("f")), pkt(4, okPkt(1, 0))), uint64(2))
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0, 3, 'x'}, []byte{1, 0, 0, 1, 0xFE, 7, 0, 0, 2, 0xFC, 0xFF}, uint64(3))

	f.Fuzz(func(t *testing.T, c2s, s2c []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, ^seed))
		var ended bool
		n := 0
		emit := dissect.EmitFunc(func(e *entry.Entry) {
			if ended {
				t.Fatal("entry emitted after End")
			}
			n++
			if m := e.MySQL; m != nil {
				if len(m.Query) > maxClientPayloadKept || len(m.Error) > maxServerPayloadKept ||
					len(m.User) > maxClientPayloadKept || len(m.ServerVersion) > maxServerPayloadKept {
					t.Fatalf("unbounded entry: %d %d", len(m.Query), len(m.Error))
				}
			}
		})
		Detect(c2s)
		Detect(s2c)
		p := Protocol().NewStream(testConn(), emit)
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
		p.Data(dissect.ClientToServer, pkt(0, []byte{comPing}), ts)
		p.End(ts)
		pp := p.(*parser)
		if len(pp.stmts) > maxStatements {
			t.Fatalf("%d statements remembered", len(pp.stmts))
		}
		if pp.tls == nil && pp.stats.Entries != int64(n) {
			t.Errorf("stats count %d entries, %d emitted", pp.stats.Entries, n)
		}
	})
}
