package kafka

import (
	"encoding/binary"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Errors, as they appear in Entry.Error.
const (
	errNoResponse = "no response"
	errMalformed  = "malformed message"
)

// maxPending bounds the requests waiting for their responses.
const maxPending = 1024

// maxVersion is the highest API version taken as plausible.
const maxVersion = 40

// parser is the StreamParser of one Kafka connection: a decoder coroutine
// per direction, and the requests waiting for responses by correlation id.
type parser struct {
	conn *dissect.Conn
	emit dissect.Emitter
	tmpl entry.Entry
	ids  *topicIDs

	half    [2]*coroutine
	desync  [2]bool
	pending map[int32]*exchange
	order   []*exchange // requests in the order sent (some answered since), for eviction
	ended   bool
	stats   dissect.ParserStats
}

var (
	_ dissect.StreamParser  = (*parser)(nil)
	_ dissect.StatsReporter = (*parser)(nil)
)

func newParser(c *dissect.Conn, emit dissect.Emitter, ids *topicIDs) *parser {
	if c.Opts == nil {
		cc := *c
		opts := dissect.DefaultOptions()
		cc.Opts = &opts
		c = &cc
	}
	return &parser{conn: c, emit: emit, tmpl: *c.NewEntry(entry.ProtoKafka, time.Time{}), ids: ids,
		pending: make(map[int32]*exchange)}
}

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	d := dir & 1
	for !p.ended && len(data) > 0 {
		if p.desync[d] {
			i := p.resync(d, data)
			if i < 0 {
				p.stats.Skipped += int64(len(data))
				return
			}
			p.stats.Skipped += int64(i)
			data = data[i:]
			p.desync[d] = false
		}
		h := p.coroutine(d)
		if h.feed(data, ts) {
			return
		}
		// The decoder met bytes that are not a message: find the next one.
		data = h.src.seg
		p.lose(d)
	}
}

func (p *parser) coroutine(d dissect.Dir) *coroutine {
	if p.half[d] == nil {
		if d == dissect.ClientToServer {
			p.half[d] = newCoroutine(p.requests)
		} else {
			p.half[d] = newCoroutine(p.responses)
		}
	}
	return p.half[d]
}

// lose ends d's decoder; decoding resumes at a plausible message start.
func (p *parser) lose(d dissect.Dir) {
	if h := p.half[d]; h != nil {
		h.close()
		p.stats.Skipped += h.src.skipped
		p.half[d] = nil
	}
	p.desync[d] = true
	p.stats.Resyncs++
}

// Gap implements dissect.StreamParser.
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.ended || n <= 0 {
		return
	}
	p.stats.Skipped += int64(n)
	p.lose(dir & 1)
}

// End implements dissect.StreamParser.
func (p *parser) End(time.Time) {
	if p.ended {
		return
	}
	p.ended = true
	for d, h := range p.half {
		if h != nil {
			h.close()
			p.half[d] = nil
		}
	}
	for _, x := range p.order {
		if p.waiting(x) {
			delete(p.pending, x.k.CorrelationID)
			x.e.Error = errNoResponse
			p.send(x)
		}
	}
	p.order = nil
}

// Stats implements dissect.StatsReporter.
func (p *parser) Stats() dissect.ParserStats { return p.stats }

func (p *parser) send(x *exchange) {
	k := &x.k
	if len(k.Topics) == 0 {
		k.Topics = x.respTopics
		if k.Partitions == 0 {
			k.Partitions = x.respParts
		}
	}
	if len(k.Topics) > 0 {
		k.Topic = k.Topics[0]
	}
	if x.e.Path == "" {
		x.e.Path = k.Topic
		if k.GroupID != "" {
			x.e.Path = k.GroupID
		}
	}
	if k.ErrorCode != 0 {
		k.Error = errorName(k.ErrorCode)
	}
	switch {
	case x.e.Error != "" || x.noReply:
	case k.ErrorCode != 0:
		x.e.Status = k.Error
	default:
		x.e.Status = "OK"
	}
	p.stats.Entries++
	p.emit.Emit(&x.e)
}

// requests decodes the client's messages until framing is lost.
func (p *parser) requests(s *source) {
	for s.ready() {
		start := s.ts
		s.left, s.bad = 4, false
		size := int64(s.i32())
		if s.stopped || size < 10 || size > maxMessage {
			return
		}
		s.left = size
		x := p.header(s, start, size)
		if x == nil {
			return
		}
		if x.decoded() {
			p.request(s, x)
		}
		if s.bad {
			p.stats.Dropped++
			x.e.Error = errMalformed
		}
		s.skip(s.left)
		if s.stopped {
			return
		}
		p.sent(x)
	}
}

// header reads a request header: API key, version, correlation id, client
// id, and in flexible versions the tagged fields. It returns nil when the
// bytes are not a request.
func (p *parser) header(s *source, start time.Time, size int64) *exchange {
	key, version, corr := s.i16(), s.i16(), s.i32()
	name := apiName(key)
	if name == "" || version < 0 || version > maxVersion || corr < 0 {
		return nil
	}
	x := &exchange{e: p.tmpl, key: key, version: version}
	x.e.TS = start.UTC()
	x.e.Method = name
	x.e.Size.Request = 4 + size
	x.e.Kafka = &x.k
	x.k.APIKey, x.k.API, x.k.APIVersion, x.k.CorrelationID = key, name, version, corr
	if key != apiControlledShutdown || version > 0 {
		x.k.ClientID = s.str(false) // a classic nullable string in every header version
	}
	if from, ok := flexibleFrom[key]; ok && version >= from {
		x.flexible = true
		s.tags(true)
	}
	return x
}

// decoded reports whether the body of x's API is decoded.
func (x *exchange) decoded() bool {
	_, ok := flexibleFrom[x.key]
	return ok
}

// sent holds a request until its response, or emits it when none comes.
func (p *parser) sent(x *exchange) {
	if x.noReply || x.e.Error != "" {
		if x.noReply {
			x.e.Status = "noreply"
		}
		p.send(x)
		return
	}
	corr := x.k.CorrelationID
	if old, ok := p.pending[corr]; ok {
		delete(p.pending, corr) // a reused id: the older request went unanswered
		old.e.Error = errNoResponse
		p.send(old)
	}
	if len(p.pending) >= maxPending {
		p.evict()
	}
	p.pending[corr] = x
	p.order = append(p.order, x)
	if len(p.order) > 2*maxPending {
		p.compact()
	}
}

// waiting reports whether x still waits for its response.
func (p *parser) waiting(x *exchange) bool { return p.pending[x.k.CorrelationID] == x }

// evict emits the oldest waiting request as unanswered.
func (p *parser) evict() {
	for len(p.order) > 0 {
		x := p.order[0]
		p.order = p.order[1:]
		if p.waiting(x) {
			delete(p.pending, x.k.CorrelationID)
			x.e.Error = errNoResponse
			p.stats.Dropped++
			p.send(x)
			return
		}
	}
}

// compact drops the answered requests from order; at most maxPending
// remain, so it runs at most once every maxPending requests.
func (p *parser) compact() {
	kept := p.order[:0]
	for _, x := range p.order {
		if p.waiting(x) {
			kept = append(kept, x)
		}
	}
	clear(p.order[len(kept):])
	p.order = kept
}

// responses decodes the broker's messages until framing is lost.
func (p *parser) responses(s *source) {
	for s.ready() {
		s.left, s.bad = 4, false
		size := int64(s.i32())
		if s.stopped || size < 4 || size > maxMessage {
			return
		}
		s.left = size
		corr := s.i32()
		x, ok := p.pending[corr]
		if !ok {
			p.stats.Dropped++ // the request was not seen
			s.skip(s.left)
			continue
		}
		delete(p.pending, corr)
		x.e.Size.Response = 4 + size
		if x.decoded() {
			if x.flexible && x.key != apiApiVersions {
				s.tags(true) // response header v1
			}
			p.response(s, x)
		}
		if s.bad {
			x.e.Error = errMalformed
		}
		s.skip(s.left)
		if s.stopped {
			return
		}
		x.e.ElapsedUS = s.ts.Sub(x.e.TS).Microseconds()
		p.send(x)
	}
}

// resync returns the offset in data of the first plausible message start
// of direction d, or -1: for the client, a request header with a known API
// key, a sane version and a printable client id; for the broker, a
// response whose correlation id a request waits for.
func (p *parser) resync(d dissect.Dir, data []byte) int {
	for i := 0; i+8 <= len(data); i++ {
		size := int64(binary.BigEndian.Uint32(data[i:]))
		if size < 4 || size > maxMessage {
			continue
		}
		if d == dissect.ServerToClient {
			if _, ok := p.pending[int32(binary.BigEndian.Uint32(data[i+4:]))]; ok {
				return i
			}
			continue
		}
		if v, _ := detectRequest(data[i:]); v == dissect.Yes {
			return i
		}
	}
	return -1
}
