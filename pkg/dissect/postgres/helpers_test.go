package postgres

import (
	"encoding/binary"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

type step = dissecttest.Step

var cs, sc = dissecttest.CS, dissecttest.SC

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// chunkings keeps this package's random seed.
func chunkings() map[string]func(int) []int { return dissecttest.Chunkings(3) }

func testConn() *dissect.Conn { return dissecttest.Conn(5432) }

func run(steps []step, ch func(int) []int) ([]*entry.Entry, dissect.ParserStats) {
	var c dissecttest.Collector
	p := newParser(testConn(), &c)
	dissecttest.Feed(p, steps, ch, t0)
	return c.Entries, p.Stats()
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
