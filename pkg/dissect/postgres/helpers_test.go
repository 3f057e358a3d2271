package postgres

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

type step struct {
	dir  dissect.Dir
	data []byte
	gap  int
	ms   int
}

func cs(ms int, parts ...[]byte) step {
	return step{dir: dissect.ClientToServer, data: cat(parts...), ms: ms}
}
func sc(ms int, parts ...[]byte) step {
	return step{dir: dissect.ServerToClient, data: cat(parts...), ms: ms}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

type chunker func(n int) []int

func chunkings() map[string]chunker {
	return map[string]chunker{
		"whole": func(n int) []int { return []int{n} },
		"bytewise": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = 1
			}
			return out
		},
		"random": func(n int) []int {
			r := rand.New(rand.NewPCG(uint64(n), 3))
			var out []int
			for n > 0 {
				k := 1 + r.IntN(min(n, 23))
				out = append(out, k)
				n -= k
			}
			return out
		},
	}
}

type collector struct{ entries []*entry.Entry }

func (c *collector) Emit(e *entry.Entry) { c.entries = append(c.entries, e) }

func testConn() *dissect.Conn {
	opts := dissect.DefaultOptions()
	return &dissect.Conn{
		Transport: "tcp",
		Client:    netip.MustParseAddrPort("10.0.0.1:40000"),
		Server:    netip.MustParseAddrPort("10.0.0.2:5432"),
		FlowID:    "f1",
		Opts:      &opts,
	}
}

func run(steps []step, ch chunker) ([]*entry.Entry, dissect.ParserStats) {
	var c collector
	p := newParser(testConn(), &c)
	for _, s := range steps {
		if s.gap > 0 {
			p.Gap(s.dir, s.gap)
			continue
		}
		b := s.data
		for _, n := range ch(len(b)) {
			p.Data(s.dir, b[:n], at(s.ms))
			b = b[n:]
		}
	}
	p.End(at(1 << 20))
	return c.entries, p.Stats()
}

// Message builders.

func msg(t byte, payload ...[]byte) []byte {
	body := cat(payload...)
	b := []byte{t, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

func untyped(payload ...[]byte) []byte {
	body := cat(payload...)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	return append(b, body...)
}

func cstr(s string) []byte { return append([]byte(s), 0) }
func i16(v int) []byte     { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func i32(v int) []byte     { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

func startupMsg(params ...string) []byte {
	var b []byte
	for _, p := range params {
		b = append(b, cstr(p)...)
	}
	return untyped(i32(codeProtocol3), b, []byte{0})
}

func sslRequest() []byte       { return untyped(i32(codeSSL)) }
func query(sql string) []byte  { return msg('Q', cstr(sql)) }
func authOK() []byte           { return msg('R', i32(0)) }
func ready(status byte) []byte { return msg('Z', []byte{status}) }
func complete(tag string) []byte {
	return msg('C', cstr(tag))
}
func rowDesc() []byte {
	return msg('T', i16(1), cstr("n"), i32(0), i16(0), i32(23), i16(4), i32(-1), i16(0))
}
func dataRow(v string) []byte {
	return msg('D', i16(1), i32(len(v)), []byte(v))
}
func errorResp(code, text string) []byte {
	return msg('E', []byte{'S'}, cstr("ERROR"), []byte{'V'}, cstr("ERROR"), []byte{'C'}, cstr(code), []byte{'M'}, cstr(text), []byte{0})
}
func parseMsg(name, sql string, nparams int) []byte {
	b := cat(cstr(name), cstr(sql), i16(nparams))
	for range nparams {
		b = append(b, i32(0)...)
	}
	return msg('P', b)
}
func bindMsg(portal, name string, params ...string) []byte {
	b := cat(cstr(portal), cstr(name), i16(0), i16(len(params)))
	for _, p := range params {
		b = append(b, i32(len(p))...)
		b = append(b, p...)
	}
	return msg('B', b, i16(0))
}
func describePortal(name string) []byte { return msg('D', []byte{'P'}, cstr(name)) }
func executeMsg(portal string) []byte   { return msg('E', cstr(portal), i32(0)) }
func syncMsg() []byte                   { return msg('S') }

// row is what a test compares of an entry.
type row struct {
	Method, Path, Status, Error       string
	Query, Command, SQLState, PGError string
	Rows                              int64
	Protocol, Statement               string
	Params                            int
	User, Database, Application       string
	Req, Resp                         int64
	ElapsedMS                         int64
}

func rowOf(e *entry.Entry) row {
	r := row{Method: e.Method, Path: e.Path, Status: e.Status, Error: e.Error,
		Req: e.Size.Request, Resp: e.Size.Response, ElapsedMS: e.ElapsedUS / 1000}
	if pg := e.Postgres; pg != nil {
		r.Query, r.Command, r.SQLState, r.PGError, r.Rows = pg.Query, pg.Command, pg.SQLState, pg.Error, pg.Rows
		r.Protocol, r.Statement, r.Params = pg.Protocol, pg.Statement, pg.Params
		r.User, r.Database, r.Application = pg.User, pg.Database, pg.Application
	}
	return r
}
