package dns

import (
	"strings"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Pairing bounds: a flow keeps at most maxPending unanswered queries, and a
// query unanswered for queryTimeout of packet time is reported alone.
const (
	maxPending   = 1024
	queryTimeout = 5 * time.Second
)

// Errors of unpaired entries.
const (
	errNoResponse = "no response"
	errNoQuery    = "no query"
)

// key pairs a response with its query. The name is compared without case
// (RFC 4343), since resolvers may randomise it (0x20 encoding).
type key struct {
	id    uint16
	qtype uint16
	name  string
}

func keyOf(m *message) key {
	k := key{id: m.id}
	switch {
	case m.hasQ:
		k.qtype, k.name = m.q.qtype, m.q.name
	case len(m.answers) > 0:
		// An mDNS response carries no question; its first answer names
		// what was asked.
		k.qtype, k.name = typeCode(m.answers[0].Type), m.answers[0].Name
	}
	k.name = lowerASCII(k.name)
	return k
}

// typeCode maps a mnemonic back to its number, for mDNS pairing only.
func typeCode(name string) uint16 { return typeCodes[name] }

var typeCodes = func() map[string]uint16 {
	m := make(map[string]uint16, len(typeNames))
	for code, name := range typeNames {
		m[name] = code
	}
	return m
}()

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// pending is a query waiting for its response.
type pending struct {
	key  key
	m    *message
	ts   time.Time
	done bool
}

// tracker pairs the queries and responses of one flow and emits entries.
// Queries wait in a map, and in a FIFO by arrival for timeouts and
// eviction; the FIFO may hold answered queries until they reach its head.
type tracker struct {
	conn      *dissect.Conn
	emit      dissect.Emitter
	transport string
	byKey     map[key]*pending
	fifo      []*pending
	head      int
	stats     dissect.ParserStats
}

func newTracker(c *dissect.Conn, emit dissect.Emitter, transport string) *tracker {
	return &tracker{conn: c, emit: emit, transport: transport, byKey: make(map[key]*pending)}
}

// message routes one decoded message by its QR bit.
func (t *tracker) message(m *message, ts time.Time) {
	t.expire(ts)
	if m.response() {
		t.response(m, ts)
		return
	}
	t.query(m, ts)
}

func (t *tracker) query(m *message, ts time.Time) {
	k := keyOf(m)
	if _, dup := t.byKey[k]; dup {
		return // a retransmission: latency counts from the first copy
	}
	if len(t.byKey) >= maxPending {
		t.evictOldest()
	}
	p := &pending{key: k, m: m, ts: ts}
	t.byKey[k] = p
	t.fifo = append(t.fifo, p)
	t.compact()
}

func (t *tracker) response(m *message, ts time.Time) {
	k := keyOf(m)
	p, ok := t.byKey[k]
	if !ok {
		t.send(t.entry(nil, time.Time{}, m, ts))
		return
	}
	delete(t.byKey, k)
	p.done = true
	t.send(t.entry(p.m, p.ts, m, ts))
}

func (t *tracker) send(e *entry.Entry) {
	t.stats.Entries++
	t.emit.Emit(e)
}

// expire reports the queries older than queryTimeout at packet time now.
func (t *tracker) expire(now time.Time) {
	for t.head < len(t.fifo) {
		p := t.fifo[t.head]
		if !p.done {
			if now.Sub(p.ts) < queryTimeout {
				return
			}
			t.unanswered(p)
		}
		t.fifo[t.head] = nil
		t.head++
	}
}

// evictOldest makes room by reporting the oldest waiting query.
func (t *tracker) evictOldest() {
	for t.head < len(t.fifo) {
		p := t.fifo[t.head]
		t.fifo[t.head] = nil
		t.head++
		if !p.done {
			t.unanswered(p)
			return
		}
	}
}

func (t *tracker) unanswered(p *pending) {
	delete(t.byKey, p.key)
	p.done = true
	t.send(t.entry(p.m, p.ts, nil, time.Time{}))
}

// compact keeps the FIFO within a small multiple of the waiting queries.
func (t *tracker) compact() {
	if t.head > 0 && t.head >= len(t.fifo)/2 {
		n := copy(t.fifo, t.fifo[t.head:])
		clear(t.fifo[n:])
		t.fifo, t.head = t.fifo[:n], 0
	}
	if len(t.fifo) <= 4*maxPending {
		return
	}
	live := t.fifo[:0]
	for _, p := range t.fifo {
		if !p.done {
			live = append(live, p)
		}
	}
	clear(t.fifo[len(live):])
	t.fifo = live
}

// end reports every waiting query, oldest first.
func (t *tracker) end() {
	for _, p := range t.fifo[t.head:] {
		if !p.done {
			t.unanswered(p)
		}
	}
	t.fifo, t.head = nil, 0
}

// entry builds the entry of a query q (sent at qts) and its response r
// (complete at rts); either may be nil, not both.
func (t *tracker) entry(q *message, qts time.Time, r *message, rts time.Time) *entry.Entry {
	first, ts := q, qts
	if first == nil {
		first, ts = r, rts
	}
	e := t.conn.NewEntry(entry.ProtoDNS, ts)
	d := &entry.DNS{ID: first.id, Transport: t.transport}
	if first.hasQ {
		d.QName, d.QType, d.QClass = first.q.name, typeName(first.q.qtype), className(first.q.qclass)
	} else if len(first.answers) > 0 {
		d.QName, d.QType = first.answers[0].Name, first.answers[0].Type
	}
	e.DNS = d
	e.Method, e.Path = d.QType, d.QName
	if q != nil {
		e.Size.Request = int64(q.size)
		d.Flags = q.flags()
		e.Error = q.problem
	}
	switch {
	case r == nil:
		e.Error = errNoResponse
	case q == nil:
		e.Error = errNoQuery
	}
	if r != nil {
		t.addResponse(e, q, qts, r, rts)
	}
	return e
}

func (t *tracker) addResponse(e *entry.Entry, q *message, qts time.Time, r *message, rts time.Time) {
	d := e.DNS
	e.Size.Response = int64(r.size)
	d.RCode = rcodeName(r.rcodeExt)
	e.Status = d.RCode
	d.Flags = r.flags()
	d.Answers, d.Authority = r.answers, r.auth
	if q != nil {
		e.ElapsedUS = max(rts.Sub(qts).Microseconds(), 0)
	}
	if r.problem != "" && e.Error == "" {
		e.Error = r.problem
	}
	t.stats.Dropped += int64(r.dropped)
}
