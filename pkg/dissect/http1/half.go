package http1

import (
	"bytes"
	"sync"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

// state is where one direction of the connection stands.
type state uint8

const (
	stHead     state = iota // at a message boundary, or inside a head
	stSync                  // framing lost: looking for a start line
	stBody                  // inside a body
	stHold                  // client: holding bytes until an Upgrade or CONNECT is decided
	stSwitched              // the bytes belong to the upgraded protocol's parser
	stDiscard               // the bytes are not HTTP/1 and have no parser (tunnel)
)

// reuseCap bounds the buffers a direction keeps between messages, so that an
// idle connection does not pin memory after one large message.
const reuseCap = 4 << 10

// half parses one direction of the connection: requests from the client,
// responses from the server.
type half struct {
	p   *parser
	dir dissect.Dir

	state     state
	strict    bool // the start line was found by resync: check it strictly
	lost      bool // framing was lost and no head parsed since (Resyncs counted)
	lineStart bool // stSync: the next byte starts a line

	buf     []byte // a head split across Data calls
	line    int    // in the head: where the current line starts
	scan    int    // in the head: how far line ends were looked for
	firstOK bool   // the start line was checked

	start  time.Time // when the current message's first byte was seen
	wire   int64     // bytes of the current message so far
	x      *exchange // the exchange of the current message; nil for a dropped response
	coding string    // content coding of the current body
	body   bodyReader

	hold     []byte    // stHold: client bytes held back
	holdTS   time.Time // when the first held byte was seen
	holdLost int       // bytes not held, over maxHold
	holdFor  *exchange // the Upgrade or CONNECT request whose response decides

	last time.Time // when the latest bytes were seen
}

// feed runs data through the state machine. Every state consumes at least
// one byte or moves to a state that does.
func (h *half) feed(data []byte, ts time.Time) {
	for len(data) > 0 {
		var n int
		switch h.state {
		case stHead:
			n = h.readHead(data, ts)
		case stSync:
			n = h.sync(data)
		case stBody:
			n = h.readBody(data, ts)
		case stHold:
			h.holdData(data, ts)
			return
		case stSwitched:
			h.p.up.Data(h.dir, data, ts)
			return
		default:
			return
		}
		data = data[n:]
	}
}

// readHead consumes the bytes of a head. A head that lies within one Data
// call is parsed where it is; one split across calls is gathered in buf.
func (h *half) readHead(data []byte, ts time.Time) int {
	old := len(h.buf)
	b := data
	if old == 0 {
		// Blank lines between messages are ignored (RFC 9112 §2.2).
		if i := skipBlank(data); i > 0 {
			return i
		}
		h.start, h.wire, h.line, h.scan, h.firstOK = ts, 0, 0, 0, false
		b = data[:min(len(data), maxHead)]
	} else {
		h.buf = append(h.buf, data[:min(len(data), maxHead-old)]...)
		b = h.buf
	}
	used := len(b) - old
	if !h.firstOK {
		nl := bytes.IndexByte(b[h.scan:], '\n')
		if nl < 0 {
			// Checked once: the line is validated when it ends.
			if len(b) > maxStartLine || old == 0 && !plausibleStart(b, h.dir, h.strict) {
				return h.reject(old)
			}
			h.scan = len(b)
			h.stash(b, old)
			return used
		}
		nl += h.scan
		if !h.validStart(trimCR(b[:nl])) {
			return h.reject(old)
		}
		h.firstOK, h.line, h.scan = true, nl+1, nl+1
	}
	end := h.headEnd(b)
	if end < 0 {
		if len(b) >= maxHead {
			h.tooLarge(b, ts)
			return used
		}
		h.stash(b, old)
		return used
	}
	// raw may lie in buf: the head functions copy it before anything
	// can append to buf again.
	raw := b[:end]
	used = end - old
	h.wire = int64(end)
	h.buf = reuse(h.buf)
	h.strict, h.lost = false, false
	if h.dir == dissect.ClientToServer {
		h.p.requestHead(h, raw, ts)
	} else {
		h.p.responseHead(h, raw, ts)
	}
	return used
}

// stash keeps the unfinished head b; old bytes of it are already in buf.
func (h *half) stash(b []byte, old int) {
	if old == 0 {
		h.buf = append(h.buf[:0], b...)
	}
}

// reject gives up on a message whose start line is not one, and resyncs.
// Bytes of it gathered by earlier calls hold no line end, so no start line:
// they are skipped.
func (h *half) reject(old int) int {
	h.p.stats.Skipped += int64(old)
	h.resync(false)
	return 0
}

// tooLarge handles a head that reached maxHead without ending.
func (h *half) tooLarge(b []byte, ts time.Time) {
	line := trimCR(b[:bytes.IndexByte(b, '\n')])
	h.wire = int64(len(b))
	h.buf = reuse(h.buf)
	h.p.headTooLarge(h, string(line), ts) // resyncs
}

// validStart checks the start line of a message.
func (h *half) validStart(line []byte) bool {
	if h.dir == dissect.ClientToServer {
		return validRequestLine(line, h.strict)
	}
	return validStatusLine(line)
}

// plausibleStart reports whether b, which holds no line end yet, may still
// become a start line.
func plausibleStart(b []byte, dir dissect.Dir, strict bool) bool {
	if len(b) > maxStartLine {
		return false
	}
	if dir == dissect.ServerToClient {
		m, _ := scanStatusLine(b)
		return m != noMatch
	}
	if strict {
		m, _ := scanRequestLine(b)
		return m != noMatch
	}
	method := b
	if sp := bytes.IndexByte(b, ' '); sp >= 0 {
		method = b[:sp]
	}
	return len(method) > 0 && len(method) <= 32 && isToken(method)
}

// headEnd looks for the blank line ending the head in b, resuming where the
// last call stopped. It returns the index just past it, or -1.
func (h *half) headEnd(b []byte) int {
	for {
		j := bytes.IndexByte(b[h.scan:], '\n')
		if j < 0 {
			h.scan = len(b)
			return -1
		}
		nl := h.scan + j
		if n := nl - h.line; n == 0 || n == 1 && b[h.line] == '\r' {
			return nl + 1
		}
		h.line, h.scan = nl+1, nl+1
	}
}

func skipBlank(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// reuse empties a buffer for the next message, dropping it when it grew
// large.
func reuse(b []byte) []byte {
	if cap(b) > reuseCap {
		return nil
	}
	return b[:0]
}

// largeBodies holds body buffers too large for a connection to keep
// (reuseCap) but needed again soon: a run of bodies cut at the body limit
// would otherwise allocate one each.
var largeBodies sync.Pool // of *[]byte

// maxPooledBody bounds the buffers largeBodies holds.
const maxPooledBody = 1 << 20

// reuseBody is reuse for a buffer of kept body bytes that nothing refers
// to any more: a large one goes to largeBodies.
func reuseBody(b []byte) []byte {
	if c := cap(b); c > reuseCap {
		if c <= maxPooledBody {
			p := new([]byte) // here, not b's address: b would move to the heap on every call
			*p = b[:0]
			largeBodies.Put(p)
		}
		return nil
	}
	return b[:0]
}

// bodyBuffer returns an empty buffer for n bytes of body.
func bodyBuffer(n int) []byte {
	if n > reuseCap {
		if p, _ := largeBodies.Get().(*[]byte); p != nil && cap(*p) >= n {
			return *p
		}
	}
	return make([]byte, 0, n)
}

// resync makes the direction look for the next start line; atLine says
// whether the next byte starts a line.
func (h *half) resync(atLine bool) {
	if !h.lost {
		h.lost = true
		h.p.stats.Resyncs++
	}
	h.state, h.lineStart, h.strict = stSync, atLine, true
	h.buf = reuse(h.buf)
}

// sync skips bytes up to the next plausible start line, found at the start
// of a line.
func (h *half) sync(data []byte) int {
	i := 0
	if !h.lineStart {
		j := bytes.IndexByte(data, '\n')
		if j < 0 {
			h.p.stats.Skipped += int64(len(data))
			return len(data)
		}
		i = j + 1
	}
	for i < len(data) {
		if h.candidate(data[i:]) {
			h.p.stats.Skipped += int64(i)
			h.state = stHead
			return i
		}
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			i = len(data)
			break
		}
		i += j + 1
	}
	h.lineStart = data[len(data)-1] == '\n'
	h.p.stats.Skipped += int64(len(data))
	return len(data)
}

// candidate reports whether b starts with a start line of this direction,
// or with a prefix of one.
func (h *half) candidate(b []byte) bool {
	nl := bytes.IndexByte(b[:min(len(b), maxStartLine+1)], '\n')
	if nl < 0 {
		return plausibleStart(b, h.dir, true)
	}
	return h.validStart(trimCR(b[:nl]))
}

// startBody starts reading a body framed as kind, keeping limit bytes.
func (h *half) startBody(kind bodyKind, length int64, coding string, limit int) {
	h.state = stBody
	h.coding = coding
	h.body.start(kind, length, limit)
}

func (h *half) readBody(data []byte, ts time.Time) int {
	n, done, err := h.body.read(data)
	h.wire += int64(n)
	switch {
	case err != "":
		h.done(ts, err)
	case done:
		h.done(ts, "")
	}
	return n
}

// done completes the current message.
func (h *half) done(ts time.Time, err string) {
	if h.dir == dissect.ClientToServer {
		h.p.requestDone(h, ts, err)
	} else {
		h.p.responseDone(h, ts, err)
	}
	h.body.keep = reuseBody(h.body.keep)
	h.body.trailers = reuse(h.body.trailers)
}

// trailers parses the trailer section of a chunked body, or returns nil.
func (h *half) trailers() map[string]string {
	t := h.body.trailers
	if h.body.kind != bodyChunked || len(t) == 0 {
		return nil
	}
	m := make(map[string]string, bytes.Count(t, []byte{'\n'}))
	parseHeaders(string(t), m, h.p.redact)
	return m
}

// abort ends the current message early with err.
func (h *half) abort(err string) {
	if h.state == stBody || h.x != nil {
		h.done(h.last, err)
	}
	h.buf = reuse(h.buf)
}

// gap handles n bytes lost from this direction.
func (h *half) gap(n int) {
	p := h.p
	switch h.state {
	case stSwitched:
		p.up.Gap(h.dir, n)
		return
	case stDiscard:
		return
	case stHold:
		h.holdLost += n
		return
	case stBody:
		if ok, done := h.body.skip(n); ok {
			// The framing tells where the body ends: step over the hole.
			h.wire += int64(n)
			if h.x != nil {
				h.x.fail(errGap)
			}
			if done {
				h.done(h.last, "")
			}
			return
		}
	}
	h.abort(errGap)
	if h.dir == dissect.ServerToClient {
		// The lost bytes may hold the responses of waiting requests:
		// pairing the next response with them could be wrong.
		p.abandonAll(errGap)
	}
	p.stats.Skipped += int64(n)
	// Gaps often end on a segment, hence message, boundary.
	h.resync(true)
}

// switchOver hands this direction to the upgraded protocol, or drops it.
func (h *half) switchOver() {
	h.x = nil
	h.buf = reuse(h.buf)
	if h.p.up != nil {
		h.state = stSwitched
	} else {
		h.state = stDiscard
	}
}

// holdData keeps client bytes that follow an Upgrade or CONNECT request
// until its response says what they are.
func (h *half) holdData(data []byte, ts time.Time) {
	if len(h.hold) == 0 {
		h.holdTS = ts
	}
	if h.holdLost > 0 {
		// Past a hole, bytes cannot be held in order: they count as lost.
		h.holdLost += len(data)
		return
	}
	n := min(len(data), maxHold-len(h.hold))
	h.hold = append(h.hold, data[:n]...)
	h.holdLost += len(data) - n
}

// release ends holding: the held bytes go to the upgraded parser, or are
// parsed as HTTP/1 again.
func (h *half) release(o outcome) {
	held, lost, ts := h.hold, h.holdLost, h.holdTS
	h.hold, h.holdLost, h.holdFor = nil, 0, nil
	if o == switched {
		h.switchOver()
		if up := h.p.up; up != nil {
			if len(held) > 0 {
				up.Data(h.dir, held, ts)
			}
			if lost > 0 {
				up.Gap(h.dir, lost)
			}
		}
		return
	}
	h.state = stHead
	h.feed(held, ts)
	if lost > 0 {
		h.gap(lost)
	}
}

// end completes what the direction was reading when the connection ended.
func (h *half) end() {
	switch {
	case h.state == stBody && h.body.kind == bodyClose:
		h.done(h.last, "") // the close delimits the body
	case h.state == stBody && h.dir == dissect.ClientToServer:
		h.done(h.last, errIncompleteRequest)
	case h.state == stBody:
		h.done(h.last, errIncompleteResp)
	case h.x != nil: // a server that sent only 1xx responses
		h.done(h.last, errNoResponse)
	case h.state == stHead && len(h.buf) > 0:
		h.p.stats.Skipped += int64(len(h.buf))
		h.buf = h.buf[:0]
	}
}
