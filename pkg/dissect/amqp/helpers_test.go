package amqp

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
			r := rand.New(rand.NewPCG(uint64(n), 5))
			var out []int
			for n > 0 {
				k := 1 + r.IntN(min(n, 29))
				out = append(out, k)
				n -= k
			}
			return out
		},
	}
}

type collector struct{ entries []*entry.Entry }

func (c *collector) Emit(e *entry.Entry) { c.entries = append(c.entries, e) }

func testConn(maxBody int) *dissect.Conn {
	opts := dissect.DefaultOptions()
	opts.MaxBody = maxBody
	return &dissect.Conn{
		Transport: "tcp",
		Client:    netip.MustParseAddrPort("10.0.0.1:40000"),
		Server:    netip.MustParseAddrPort("10.0.0.2:5672"),
		FlowID:    "f1",
		Opts:      &opts,
	}
}

func run(steps []step, ch chunker, maxBody int) ([]*entry.Entry, dissect.ParserStats) {
	var c collector
	p := newParser(testConn(maxBody), &c)
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

// Frame and argument builders.

func frameOf(typ byte, ch uint16, payload []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, ch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(append(b, payload...), frameEnd)
}

func methodFrame(ch, class, id uint16, args ...[]byte) []byte {
	return frameOf(frameMethod, ch, cat(u16(class), u16(id), cat(args...)))
}

func headerFrame(ch uint16, size int, flags uint16, props ...[]byte) []byte {
	return frameOf(frameHeader, ch, cat(u16(classBasic), u16(0), u64(uint64(size)), u16(flags), cat(props...)))
}

func bodyFrame(ch uint16, data string) []byte { return frameOf(frameBody, ch, []byte(data)) }

func u8(v byte) []byte     { return []byte{v} }
func u16(v uint16) []byte  { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte  { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte  { return binary.BigEndian.AppendUint64(nil, v) }
func sstr(s string) []byte { return append([]byte{byte(len(s))}, s...) }
func lstr(s string) []byte { return append(u32(uint32(len(s))), s...) }

// table encodes name/value pairs; values are strings ('S') or nested
// raw field values when they start with a type octet in fieldRaw.
func table(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, sstr(kv[i])...)
		b = append(b, 'S')
		b = append(b, lstr(kv[i+1])...)
	}
	return append(u32(uint32(len(b))), b...)
}

// row is what a test compares of an entry.
type row struct {
	Method, Path, Status, Error string
	Channel                     uint16
	Exchange, RoutingKey, Queue string
	Reply                       string
	ReplyCode                   int
	ReplyText                   string
	ConsumerTag                 string
	DeliveryTag                 uint64
	Body                        string
	BodySize                    int64
	Truncated                   bool
	Encoding                    string
	Props                       map[string]string
	Req, Resp                   int64
}

func rowOf(e *entry.Entry) row {
	r := row{Method: e.Method, Path: e.Path, Status: e.Status, Error: e.Error, Req: e.Size.Request, Resp: e.Size.Response}
	if a := e.AMQP; a != nil {
		r.Channel, r.Exchange, r.RoutingKey, r.Queue = a.Channel, a.Exchange, a.RoutingKey, a.Queue
		r.Reply, r.ReplyCode, r.ReplyText, r.ConsumerTag, r.DeliveryTag = a.Reply, a.ReplyCode, a.ReplyText, a.ConsumerTag, a.DeliveryTag
		r.Props = a.Properties
		if b := a.Body; b != nil {
			r.Body, r.BodySize, r.Truncated, r.Encoding = b.Data, b.Size, b.Truncated, b.Encoding
		}
	}
	return r
}
