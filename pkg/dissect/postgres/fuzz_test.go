package postgres

import (
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzParser feeds arbitrary bytes as both directions, split and gapped
// as the control byte says, and checks that state and entries stay bounded.
func FuzzParser(f *testing.F) {
	f.Add(cat(startupMsg("user", "u", "database", "d"), query("SELECT 1; SELECT 2")),
		cat(authOK(), ready('I'), rowDesc(), dataRow("1"), complete("SELECT 1"), complete("SELECT 1"), ready('I')), uint8(7))
	f.Add(cat(parseMsg("s", "SELECT $1", 1), bindMsg("", "s", "x"), describePortal(""), executeMsg(""), syncMsg()),
		cat(msg('1'), msg('2'), rowDesc(), dataRow("x"), complete("SELECT 1"), ready('I')), uint8(0x80|3))
	f.Add(cat(sslRequest(), startupMsg("user", "u")), cat([]byte("N"), msg('R', i32(10), cstr("SCRAM-SHA-256"), []byte{0}), errorResp("28P01", "no")), uint8(1))
	f.Add(cat(parseMsg("", "bad", 0), bindMsg("", ""), executeMsg(""), syncMsg()), cat(errorResp("42601", "syntax"), ready('E'), msg('A', i32(1), cstr("c"), cstr("p"))), uint8(0x40|11))
	f.Fuzz(func(t *testing.T, cli, srv []byte, ctl uint8) {
		Detect(cli)
		Detect(srv)
		var c dissecttest.Collector
		p := newParser(testConn(), &c)
		seg := int(ctl&0x1F) + 1
		for i := 0; i < max(len(cli), len(srv)); i += seg {
			if i < len(cli) {
				p.Data(dissect.ClientToServer, cli[i:min(i+seg, len(cli))], t0.Add(time.Duration(i)*time.Millisecond))
			}
			if ctl&0x80 != 0 && i == seg {
				p.Gap(dissect.ServerToClient, 7)
			}
			if i < len(srv) {
				p.Data(dissect.ServerToClient, srv[i:min(i+seg, len(srv))], t0.Add(time.Duration(i+1)*time.Millisecond))
			}
		}
		for _, r := range []*msgReader{&p.cli, &p.srv} {
			if len(r.buf) > maxKeep {
				t.Fatalf("reader holds %d bytes", len(r.buf))
			}
		}
		if len(p.stmts)+len(p.portals) > maxStatements || p.stmtBytes > maxStmtBytes || len(p.queue) > maxPending {
			t.Fatalf("state %d statements, %d bytes, %d queued", len(p.stmts)+len(p.portals), p.stmtBytes, len(p.queue))
		}
		p.End(t0.Add(time.Hour))
		// Each entry needs at least one 5-byte message, or a 1-byte SSL answer.
		if len(c.Entries) > (len(cli)+len(srv))/4+1 {
			t.Fatalf("%d entries from %d bytes", len(c.Entries), len(cli)+len(srv))
		}
		for _, e := range c.Entries {
			pg := e.Postgres
			if pg == nil || len(e.Path) > maxPath+8 || len(pg.Query) > maxKeep+8 || len(pg.Error) > maxText+8 {
				t.Fatalf("unbounded entry %+v", e)
			}
		}
	})
}

func BenchmarkExtended(b *testing.B) {
	req := cat(parseMsg("", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 1), bindMsg("", "", "42"), executeMsg(""), syncMsg())
	resp := cat(msg('1'), msg('2'), dataRow("0"), complete("SELECT 1"), ready('I'))
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	p := newParser(testConn(), dissect.EmitFunc(func(*entry.Entry) {}))
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Data(dissect.ClientToServer, req, ts)
		p.Data(dissect.ServerToClient, resp, ts)
	}
}

func BenchmarkRows(b *testing.B) {
	req := query("SELECT * FROM t")
	var resp []byte
	resp = append(resp, rowDesc()...)
	for range 1000 {
		resp = append(resp, dataRow("some value of a row, forty bytes or so.")...)
	}
	resp = cat(resp, complete("SELECT 1000"), ready('I'))
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	p := newParser(testConn(), dissect.EmitFunc(func(*entry.Entry) {}))
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Data(dissect.ClientToServer, req, ts)
		for off := 0; off < len(resp); off += 1448 {
			p.Data(dissect.ServerToClient, resp[off:min(off+1448, len(resp))], ts)
		}
	}
}

func BenchmarkDetect(b *testing.B) {
	q := startupMsg("user", "app", "database", "shop", "application_name", "psql")
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		Detect(q)
	}
}
