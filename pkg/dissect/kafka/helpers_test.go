package kafka

import (
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

type step = dissecttest.Step

var cs, sc = dissecttest.CS, dissecttest.SC

// chunkings keeps this package's random seed.
func chunkings() map[string]func(int) []int { return dissecttest.Chunkings(11) }

func testConn() *dissect.Conn { return dissecttest.Conn(9092) }

func run(steps []step, ch func(int) []int, ids *topicIDs) ([]*entry.Entry, dissect.ParserStats) {
	var c dissecttest.Collector
	if ids == nil {
		ids = newTopicIDs()
	}
	p := newParser(testConn(), &c, ids)
	dissecttest.Feed(p, steps, ch, t0)
	return c.Entries, p.Stats()
}

// encodeRequest frames a request as a client sends it.
func encodeRequest(r kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("shark-test")).AppendRequest(nil, r, corr)
}

// encodeResponse frames a response as a broker sends it: size, correlation
// id, tagged fields when flexible (never for ApiVersions), body.
func encodeResponse(r kmsg.Response, corr int32) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if r.IsFlexible() && r.Key() != 18 {
		b = append(b, 0)
	}
	b = r.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// batch encodes a record batch (magic 2) holding count records of the
// given codec; the records themselves are opaque filler.
func batch(count int32, codec int16, control bool, filler int) []byte {
	attrs := codec
	if control {
		attrs |= 0x20
	}
	var b []byte
	b = binary.BigEndian.AppendUint64(b, 100) // base offset
	b = binary.BigEndian.AppendUint32(b, 0)   // length, below
	b = binary.BigEndian.AppendUint32(b, 0)   // leader epoch
	b = append(b, 2)                          // magic
	b = binary.BigEndian.AppendUint32(b, 0)   // crc
	b = binary.BigEndian.AppendUint16(b, uint16(attrs))
	b = binary.BigEndian.AppendUint32(b, uint32(count-1))
	b = binary.BigEndian.AppendUint64(b, 1)
	b = binary.BigEndian.AppendUint64(b, 2)
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // producer id
	b = binary.BigEndian.AppendUint16(b, ^uint16(0))
	b = binary.BigEndian.AppendUint32(b, ^uint32(0))
	b = binary.BigEndian.AppendUint32(b, uint32(count))
	b = append(b, make([]byte, filler)...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return b
}

// legacyMessage encodes a magic 0 message.
func legacyMessage(codec byte, value string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, 7)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0) // crc
	b = append(b, 0, codec)
	b = binary.BigEndian.AppendUint32(b, ^uint32(0)) // null key
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	b = append(b, value...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// row is what a test compares of an entry.
type row struct {
	Method, Path, Status, Error string
	Key, Version                int16
	Corr                        int32
	ClientID                    string
	Topics                      []string
	Partitions                  int
	GroupID                     string
	ErrorCode                   int16
	KafkaError                  string
	Batches                     int
	Records, RecordBytes        int64
	Compression                 string
}

func rowOf(e *entry.Entry) row {
	r := row{Method: e.Method, Path: e.Path, Status: e.Status, Error: e.Error}
	if k := e.Kafka; k != nil {
		r.Key, r.Version, r.Corr, r.ClientID = k.APIKey, k.APIVersion, k.CorrelationID, k.ClientID
		r.Topics, r.Partitions, r.GroupID, r.ErrorCode, r.KafkaError = k.Topics, k.Partitions, k.GroupID, k.ErrorCode, k.Error
		r.Batches, r.Records, r.RecordBytes, r.Compression = k.Batches, k.Records, k.RecordBytes, k.Compression
		if k.Topic != "" && (len(k.Topics) == 0 || k.Topics[0] != k.Topic) {
			r.Error += " topic mismatch"
		}
	}
	return r
}
