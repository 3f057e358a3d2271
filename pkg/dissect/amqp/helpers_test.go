package amqp

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
func chunkings() map[string]func(int) []int { return dissecttest.Chunkings(5) }

func testConn(maxBody int) *dissect.Conn {
	c := dissecttest.Conn(5672)
	c.Opts.MaxBody = maxBody
	return c
}

func run(steps []step, ch func(int) []int, maxBody int) ([]*entry.Entry, dissect.ParserStats) {
	var c dissecttest.Collector
	p := newParser(testConn(maxBody), &c)
	dissecttest.Feed(p, steps, ch, t0)
	return c.Entries, p.Stats()
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
