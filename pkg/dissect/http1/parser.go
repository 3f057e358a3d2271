package http1

import (
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Errors, as they appear in Entry.Error.
const (
	errNoResponse        = "no response"
	errGap               = "capture gap"
	errHeadTooLarge      = "header too large"
	errBadLength         = "invalid content-length"
	errBadTE             = "invalid transfer-encoding"
	errIncompleteRequest = "incomplete request"
	errIncompleteResp    = "incomplete response"
)

// outcome is what the response to an Upgrade or CONNECT request decided.
type outcome uint8

const (
	pending  outcome = iota // no final response yet
	stayed                  // the connection goes on speaking HTTP/1
	switched                // the connection left HTTP/1 (101, or CONNECT 2xx)
)

// exchange is one request and its response, built in place in the entry they
// become: one allocation holds the entry and its HTTP objects.
type exchange struct {
	e    entry.Entry
	http entry.HTTP
	req  entry.HTTPRequest
	resp entry.HTTPResponse

	head     bool // a HEAD request: the response has no body
	connect  bool // a CONNECT request: a 2xx opens a tunnel
	upgrade  bool // the request asks for a protocol upgrade
	cost     int  // memory it holds while queued
	outcome  outcome
	reqDone  bool
	respDone bool
	emitted  bool
	respEnd  time.Time

	// Header maps of a recycled exchange, emptied, for the next one.
	spareReq, spareResp map[string]string
	// The heads' bytes, when recycled: the entry's strings point into them.
	reqHead, respHead []byte
	reqBody, respBody []byte // likewise for the kept body bytes
	keep              bool   // handed to an upgrade hook: never recycled
}

// exchanges recycles the exchanges of parsers whose emitter keeps nothing
// of an entry (Conn.Reuse): one allocation and two maps fewer per entry.
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// recycle empties x into the pool, keeping its header maps.
func recycle(x *exchange) {
	if x.keep {
		return
	}
	req, resp := x.req.Headers, x.resp.Headers
	if req == nil {
		req = x.spareReq
	}
	if resp == nil {
		resp = x.spareResp
	}
	reqHead, respHead := reuse(x.reqHead), reuse(x.respHead)
	reqBody, respBody := reuseBody(x.reqBody), reuseBody(x.respBody)
	*x = exchange{}
	clear(req)
	clear(resp)
	x.spareReq, x.spareResp = req, resp
	x.reqHead, x.respHead = reqHead, respHead
	x.reqBody, x.respBody = reqBody, respBody
	exchanges.Put(x)
}

// own returns buf for fillBody when exchanges are recycled, else nil.
func (p *parser) own(buf *[]byte) *[]byte {
	if !p.reuse {
		return nil
	}
	return buf
}

// headString returns raw as a string. Exchanges that are recycled copy it
// into buf, theirs, and point the string there: the entry is emitted
// before buf is reused (Conn.Reuse), and a head costs no allocation.
func (p *parser) headString(buf *[]byte, raw []byte) string {
	if !p.reuse || len(raw) == 0 {
		return string(raw)
	}
	*buf = append((*buf)[:0], raw...)
	return unsafe.String(unsafe.SliceData(*buf), len(raw))
}

// headerMap returns *spare, emptied, or a new map for n headers.
func headerMap(spare *map[string]string, n int) map[string]string {
	if m := *spare; m != nil {
		*spare = nil
		return m
	}
	return make(map[string]string, n)
}

func (x *exchange) fail(err string) {
	if x.e.Error == "" {
		x.e.Error = err
	}
}

// parser is the StreamParser of one HTTP/1 connection.
type parser struct {
	conn     *dissect.Conn
	emit     dissect.Emitter
	upgrades map[string]UpgradeFunc
	maxBody  int
	redact   bool
	reuse    bool        // exchanges go back to the pool once emitted
	tmpl     entry.Entry // the connection's common entry fields

	cli, srv half
	queue    queue                // requests waiting for a response, oldest first
	up       dissect.StreamParser // takes the connection over after an upgrade; nil discards
	ending   bool                 // End is running: no more holding back
	ended    bool
	stats    dissect.ParserStats
	dec      decoder
}

var (
	_ dissect.StreamParser  = (*parser)(nil)
	_ dissect.StatsReporter = (*parser)(nil)
)

func newParser(c *dissect.Conn, emit dissect.Emitter, upgrades map[string]UpgradeFunc) *parser {
	if c.Opts == nil {
		cc := *c
		opts := dissect.DefaultOptions()
		cc.Opts = &opts
		c = &cc
	}
	p := &parser{
		conn:     c,
		emit:     emit,
		upgrades: upgrades,
		maxBody:  max(c.Opts.MaxBody, 0),
		redact:   c.Opts.Redact,
		reuse:    c.Reuse,
		tmpl:     *c.NewEntry(entry.ProtoHTTP, time.Time{}),
	}
	// The capture may begin mid-connection: the first start line is
	// checked as strictly as one found by resync.
	p.cli = half{p: p, dir: dissect.ClientToServer, lineStart: true, strict: true}
	p.srv = half{p: p, dir: dissect.ServerToClient, lineStart: true, strict: true}
	return p
}

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	if p.ended || len(data) == 0 {
		return
	}
	h := p.half(dir)
	h.last = ts
	h.feed(data, ts)
}

// Gap implements dissect.StreamParser.
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.ended || n <= 0 {
		return
	}
	p.half(dir).gap(n)
}

// End implements dissect.StreamParser: it completes a close-delimited
// response and emits every request still waiting, with Error "no response".
func (p *parser) End(ts time.Time) {
	if p.ended {
		return
	}
	p.ending = true
	if p.cli.state == stHold {
		p.cli.release(stayed)
	}
	p.cli.end()
	p.srv.end()
	p.abandonAll(errNoResponse)
	p.ended = true
	if p.up != nil {
		p.up.End(ts)
	}
}

// Stats implements dissect.StatsReporter.
func (p *parser) Stats() dissect.ParserStats { return p.stats }

func (p *parser) half(dir dissect.Dir) *half {
	if dir == dissect.ClientToServer {
		return &p.cli
	}
	return &p.srv
}

func (p *parser) newExchange(start time.Time) *exchange {
	var x *exchange
	if p.reuse {
		x = exchanges.Get().(*exchange)
	} else {
		x = new(exchange)
	}
	// Field by field: copying the whole template costs a bulk write
	// barrier while the GC runs.
	t := &p.tmpl
	x.e.V, x.e.Proto, x.e.Src, x.e.Dst, x.e.Source, x.e.FlowID = t.V, t.Proto, t.Src, t.Dst, t.Source, t.FlowID
	x.e.TS = start.UTC()
	x.e.HTTP = &x.http
	x.http.Request = &x.req
	return x
}

// finish emits x once both sides are complete.
func (p *parser) finish(x *exchange) {
	if !x.reqDone || !x.respDone || x.emitted {
		return
	}
	x.emitted = true
	if x.http.Response != nil && !x.respEnd.IsZero() {
		x.e.ElapsedUS = max(0, x.respEnd.Sub(x.e.TS).Microseconds())
	}
	p.stats.Entries++
	p.emit.Emit(&x.e)
	if p.reuse {
		recycle(x)
	}
}

// enqueue adds a request waiting for its response; cost is the memory it
// may hold. Past the bounds, the oldest are given up on: a server never
// leaves that many unanswered.
func (p *parser) enqueue(x *exchange, cost int) {
	for p.queue.len() > 0 && (p.queue.len() >= maxOutstanding || p.queue.bytes+cost > maxQueued) {
		p.abandon(p.queue.pop(), errNoResponse)
	}
	x.cost = cost
	p.queue.push(x)
}

// abandon completes x without a response.
func (p *parser) abandon(x *exchange, err string) {
	x.respDone = true
	x.fail(err)
	p.decided(x, stayed)
	p.finish(x)
}

// abandonAll abandons every request waiting for a response.
func (p *parser) abandonAll(err string) {
	for x := p.queue.pop(); x != nil; x = p.queue.pop() {
		p.abandon(x, err)
	}
}

// decided records what the response to x decided, and lets the client go on
// if it was holding back the bytes that followed x.
func (p *parser) decided(x *exchange, o outcome) {
	x.outcome = o
	if p.cli.state == stHold && p.cli.holdFor == x {
		p.cli.release(o)
	}
}

// requestHead starts a request from its head s (start line and header
// lines; wire bytes are counted by h).
func (p *parser) requestHead(h *half, raw []byte, ts time.Time) {
	x := p.newExchange(h.start)
	s := p.headString(&x.reqHead, raw)
	line, rest := cutLine(s)
	method, target, version := splitRequestLine(line)
	x.e.Method, x.e.Path = method, target
	x.http.Version = version
	x.req.Method, x.req.Target = method, target
	x.req.Headers = headerMap(&x.spareReq, strings.Count(rest, "\n"))
	f := parseHeaders(rest, x.req.Headers, p.redact)
	x.req.Authority = f.host
	if x.req.Authority == "" {
		x.req.Authority = authorityOf(method, target)
	}
	x.head = method == "HEAD"
	x.connect = method == "CONNECT"
	x.upgrade = f.upgrade != ""
	cost := len(s)
	if f.te || f.length > 0 {
		cost += p.maxBody
	}
	p.enqueue(x, cost)
	h.x = x

	switch {
	case f.te && !f.chunked:
		p.requestDone(h, ts, errBadTE)
	case f.te:
		h.startBody(bodyChunked, 0, f.coding, p.maxBody)
	case f.badLength:
		p.requestDone(h, ts, errBadLength)
	case f.length > 0:
		h.startBody(bodyLength, f.length, f.coding, p.maxBody)
	default:
		p.requestDone(h, ts, "")
	}
}

// requestDone completes the client's current request, with an error when its
// framing broke, and decides how the client direction goes on.
func (p *parser) requestDone(h *half, ts time.Time, err string) {
	x := h.x
	h.x = nil
	inBody := h.state == stBody
	if inBody {
		p.dec.fillBody(&x.req.Body, &h.body, h.coding, p.own(&x.reqBody))
		x.req.Trailers = h.trailers()
	}
	h.state = stHead
	x.e.Size.Request = h.wire
	x.reqDone = true
	if err != "" {
		x.fail(err)
		h.resync(atLineEnd(inBody, err))
	}
	// Read before finish: an emitted exchange may be recycled.
	outcome, holds := x.outcome, x.upgrade || x.connect
	p.finish(x)
	switch {
	case err != "":
	case outcome == switched:
		h.switchOver()
	case outcome == pending && holds && !p.ending:
		// What follows may not be HTTP/1: wait for the response to say.
		h.state = stHold
		h.holdFor = x
	}
}

// responseHead pairs a response head s with the oldest waiting request and
// starts its body.
func (p *parser) responseHead(h *half, raw []byte, ts time.Time) {
	x := h.x
	if x == nil {
		x = p.queue.pop()
	}
	var s string
	if x != nil {
		s = p.headString(&x.respHead, raw)
	} else {
		s = string(raw)
	}
	line, rest := cutLine(s)
	code, reason, _ := splitStatusLine(line)
	if x == nil {
		// A response to a request the capture did not see: skip it.
		p.stats.Dropped++
		f := parseHeaders(rest, nil, false)
		if kind, _ := responseBody(f, code, false); kind != bodyNone {
			h.startBody(kind, f.length, "", 0)
		}
		return
	}
	h.x = x
	if code >= 100 && code < 200 && code != 101 {
		x.resp.Informational++
		x.e.Size.Response += h.wire
		return
	}
	x.resp.Status, x.resp.Reason = code, reason
	x.resp.Headers = headerMap(&x.spareResp, strings.Count(rest, "\n"))
	f := parseHeaders(rest, x.resp.Headers, p.redact)
	x.http.Response = &x.resp
	x.e.Status = statusText(code)
	switch {
	case code == 101:
		p.switchProtocols(h, x, upgradeToken(f.upgrade), ts)
		return
	case x.connect && code/100 == 2:
		p.switchProtocols(h, x, "", ts)
		return
	}
	p.decided(x, stayed)
	kind, err := responseBody(f, code, x.head)
	switch {
	case err != "":
		p.responseDone(h, ts, err)
	case kind == bodyNone:
		p.responseDone(h, ts, "")
	default:
		h.startBody(kind, f.length, f.coding, p.maxBody)
	}
}

// responseBody says how the body of a response is framed (RFC 9112 §6.3).
func responseBody(f framing, code int, head bool) (bodyKind, string) {
	switch {
	case head, code == 204, code == 304, code >= 100 && code < 200:
		return bodyNone, ""
	case f.te && f.chunked:
		return bodyChunked, ""
	case f.te:
		return bodyClose, ""
	case f.badLength:
		return bodyNone, errBadLength
	case f.length == 0:
		return bodyNone, ""
	case f.length > 0:
		return bodyLength, ""
	}
	return bodyClose, ""
}

// responseDone completes the server's current response.
func (p *parser) responseDone(h *half, ts time.Time, err string) {
	x := h.x
	h.x = nil
	inBody := h.state == stBody
	h.state = stHead
	if err != "" {
		h.resync(atLineEnd(inBody, err))
	}
	if x == nil {
		return
	}
	if inBody {
		p.dec.fillBody(&x.resp.Body, &h.body, h.coding, p.own(&x.respBody))
		x.resp.Trailers = h.trailers()
	}
	x.e.Size.Response += h.wire
	x.respDone = true
	x.respEnd = ts
	x.fail(err)
	p.finish(x)
}

// atLineEnd says whether a message that ended with err ended at a line end:
// a complete head (with bad framing) does, a broken body or a head over the
// limit do not.
func atLineEnd(inBody bool, err string) bool {
	return !inBody && err != errHeadTooLarge
}

// switchProtocols ends HTTP/1 on the connection after x's response: a 101
// naming proto, or a CONNECT tunnel (proto ""). The parser of proto, if one
// was given to NewProtocol, gets every later byte; otherwise they are
// dropped.
func (p *parser) switchProtocols(h *half, x *exchange, proto string, ts time.Time) {
	x.http.Upgrade = proto
	x.e.Size.Response += h.wire
	x.respDone = true
	x.respEnd = ts
	x.outcome = switched
	h.x = nil
	if f := p.upgrade(proto); f != nil {
		x.keep = true // the hook may keep strings of it
		p.up = f(p.conn, p.emit, &x.e)
	}
	p.finish(x)
	// Requests sent after x can get no HTTP/1 response any more.
	p.abandonAll(errNoResponse)
	switch c := &p.cli; {
	case c.state == stHold:
		c.release(switched)
	case c.x == x:
		// Still reading x's request: requestDone switches the direction.
	default:
		c.abort(errNoResponse)
		c.switchOver()
	}
	h.switchOver()
}

// upgrade returns the hook for an Upgrade token, trying "name/version" as
// given, then the name alone.
func (p *parser) upgrade(proto string) UpgradeFunc {
	if proto == "" {
		return nil
	}
	if f := p.upgrades[proto]; f != nil {
		return f
	}
	if i := strings.IndexByte(proto, '/'); i > 0 {
		return p.upgrades[proto[:i]]
	}
	return nil
}

// upgradeToken is the first protocol of an Upgrade header, in lower case.
func upgradeToken(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(trimOWS(v))
}

// headTooLarge makes what it can of a head over the limit: the request,
// paired with its response as usual, or the response of the oldest request.
func (p *parser) headTooLarge(h *half, line string, ts time.Time) {
	if h.dir == dissect.ClientToServer {
		method, target, version := splitRequestLine(line)
		x := p.newExchange(h.start)
		x.e.Method, x.e.Path = method, target
		x.http.Version = version
		x.req.Method, x.req.Target = method, target
		p.enqueue(x, len(line))
		h.x = x
		p.requestDone(h, ts, errHeadTooLarge)
		return
	}
	x := h.x
	if x == nil {
		x = p.queue.pop()
	}
	if x == nil {
		p.stats.Dropped++
		h.resync(false)
		return
	}
	code, reason, _ := splitStatusLine(line)
	x.resp.Status, x.resp.Reason = code, reason
	x.http.Response = &x.resp
	x.e.Status = statusText(code)
	p.decided(x, stayed)
	h.x = x
	p.responseDone(h, ts, errHeadTooLarge)
}

// authorityOf takes the authority from an absolute-form or authority-form
// request-target, for requests without a Host header.
func authorityOf(method, target string) string {
	if method == "CONNECT" {
		return target
	}
	i := strings.Index(target, "://")
	if i <= 0 {
		return ""
	}
	a := target[i+3:]
	if j := strings.IndexAny(a, "/?#"); j >= 0 {
		a = a[:j]
	}
	if j := strings.LastIndexByte(a, '@'); j >= 0 {
		a = a[j+1:]
	}
	return a
}

// queue is a FIFO of exchanges, a ring that grows up to maxOutstanding.
type queue struct {
	buf   []*exchange
	head  int
	n     int
	bytes int // sum of the queued exchanges' cost
}

func (q *queue) len() int { return q.n }

func (q *queue) push(x *exchange) {
	if q.n == len(q.buf) {
		grown := make([]*exchange, max(4, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			grown[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = x
	q.n++
	q.bytes += x.cost
}

func (q *queue) pop() *exchange {
	if q.n == 0 {
		return nil
	}
	x := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	q.bytes -= x.cost
	return x
}
