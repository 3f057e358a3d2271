package redis

import (
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzParser feeds arbitrary bytes as both directions, split and gapped
// as the control byte says, and checks that entries stay bounded.
func FuzzParser(f *testing.F) {
	f.Add([]byte(cmdOf("SET", "k", "v")+cmdOf("GET", "k")), []byte("+OK\r\n$1\r\nv\r\n"), uint8(5))
	f.Add([]byte(cmdOf("HELLO", "3")), []byte("%1\r\n$5\r\nproto\r\n:3\r\n|1\r\n+a\r\n:1\r\n_\r\n"), uint8(0x80|3))
	f.Add([]byte(cmdOf("SUBSCRIBE", "a", "b")), []byte("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n"), uint8(1))
	f.Add([]byte("PING\r\nset a \"b c\r\n"), []byte("$?\r\n;2\r\nab\r\n;0\r\n*?\r\n:1\r\n.\r\n"), uint8(0x40|9))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"), []byte("*2\r\n*2\r\n*2\r\n*2\r\n:1\r\n"), uint8(2))
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
		for _, r := range []*reader{&p.cli, &p.srv} {
			if len(r.line) > maxLine || len(r.v.arena) > maxKept*maxElem || len(r.v.elems) > maxKept {
				t.Fatalf("reader holds %d line, %d kept", len(r.line), len(r.v.arena))
			}
		}
		p.End(t0.Add(time.Hour))
		// Every entry comes from a line or a complete value of at least 3 bytes.
		if len(c.Entries) > (len(cli)+len(srv))/2+1 {
			t.Fatalf("%d entries from %d bytes", len(c.Entries), len(cli)+len(srv))
		}
		for _, e := range c.Entries {
			r := e.Redis
			if r == nil || len(r.Args) >= maxKept || len(r.Reply) > maxReply+maxElem*5 {
				t.Fatalf("unbounded entry %+v", e)
			}
			for _, a := range r.Args {
				if len(a) > maxElem+len("…") {
					t.Fatalf("arg of %d bytes", len(a))
				}
			}
		}
	})
}

func BenchmarkPipeline(b *testing.B) {
	var req, resp strings.Builder
	for range 100 {
		req.WriteString(cmdOf("SET", "user:1000:name", "alice") + cmdOf("GET", "user:1000:name"))
		resp.WriteString("+OK\r\n$5\r\nalice\r\n")
	}
	q, r := []byte(req.String()), []byte(resp.String())
	b.SetBytes(int64(len(q) + len(r)))
	b.ReportAllocs()
	p := newParser(testConn(), dissect.EmitFunc(func(*entry.Entry) {}))
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Data(dissect.ClientToServer, q, ts)
		p.Data(dissect.ServerToClient, r, ts)
	}
}

func BenchmarkLargeValue(b *testing.B) {
	q := []byte(cmdOf("GET", "blob"))
	r := []byte(bulk(strings.Repeat("v", 64<<10)))
	b.SetBytes(int64(len(q) + len(r)))
	b.ReportAllocs()
	p := newParser(testConn(), dissect.EmitFunc(func(*entry.Entry) {}))
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Data(dissect.ClientToServer, q, ts)
		for off := 0; off < len(r); off += 1448 {
			p.Data(dissect.ServerToClient, r[off:min(off+1448, len(r))], ts)
		}
	}
}

func BenchmarkDetect(b *testing.B) {
	q := []byte(cmdOf("SET", "user:1000:name", "alice"))
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		Detect(q)
	}
}
