package redis

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// step is one event of a conversation: bytes of one direction, or a gap.
type step struct {
	dir  dissect.Dir
	data string
	gap  int
	ms   int
}

func cs(ms int, data string) step { return step{dir: dissect.ClientToServer, data: data, ms: ms} }
func sc(ms int, data string) step { return step{dir: dissect.ServerToClient, data: data, ms: ms} }

// chunker splits n bytes into the lengths of successive Data calls.
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
			r := rand.New(rand.NewPCG(uint64(n), 7))
			var out []int
			for n > 0 {
				k := 1 + r.IntN(min(n, 17))
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
		Server:    netip.MustParseAddrPort("10.0.0.2:6379"),
		FlowID:    "f1",
		Opts:      &opts,
	}
}

// run feeds steps to a new parser, each split by ch, then ends it.
func run(steps []step, ch chunker) ([]*entry.Entry, dissect.ParserStats) {
	var c collector
	p := newParser(testConn(), &c)
	for _, s := range steps {
		if s.gap > 0 {
			p.Gap(s.dir, s.gap)
			continue
		}
		b := []byte(s.data)
		for _, n := range ch(len(b)) {
			p.Data(s.dir, b[:n], at(s.ms))
			b = b[n:]
		}
	}
	p.End(at(1 << 20))
	return c.entries, p.Stats()
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
