package redis

import (
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

type step = dissecttest.Step

// cs and sc take the RESP text of one direction.
func cs(ms int, data string) step { return dissecttest.CS(ms, []byte(data)) }
func sc(ms int, data string) step { return dissecttest.SC(ms, []byte(data)) }

// chunkings keeps this package's random seed.
func chunkings() map[string]func(int) []int { return dissecttest.Chunkings(7) }

func testConn() *dissect.Conn { return dissecttest.Conn(6379) }

// run feeds steps to a new parser, each split by ch, then ends it.
func run(steps []step, ch func(int) []int) ([]*entry.Entry, dissect.ParserStats) {
	var c dissecttest.Collector
	p := newParser(testConn(), &c)
	dissecttest.Feed(p, steps, ch, t0)
	return c.Entries, p.Stats()
}

// cmdOf encodes a command as a RESP array of bulk strings.
func cmdOf(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// row is what a test compares of an entry.
type row struct {
	Method, Path, Status, Error string
	Args                        []string
	Reply, Type, Channel        string
	Proto                       int
	ElapsedMS                   int64
	Req, Resp                   int64
}

func rowOf(e *entry.Entry) row {
	r := row{Method: e.Method, Path: e.Path, Status: e.Status, Error: e.Error,
		ElapsedMS: e.ElapsedUS / 1000, Req: e.Size.Request, Resp: e.Size.Response}
	if e.Redis != nil {
		r.Args, r.Reply, r.Type, r.Channel, r.Proto = e.Redis.Args, e.Redis.Reply, e.Redis.Type, e.Redis.Channel, e.Redis.Protocol
	}
	return r
}
