package redis

import (
	"bytes"
	"time"
)

// Bounds of one direction's reader.
const (
	maxLine  = 64 << 10 // a type line, or an inline command (Redis's own inline limit)
	maxDepth = 32       // nesting of aggregates
	maxKept  = 10       // elements of a top-level aggregate kept for the entry
	maxElem  = 256      // bytes kept of one element
	maxCount = 1 << 32  // a declared length or count beyond this is a protocol error
)

// RESP type bytes (RESP2 and RESP3), and 'i' for an inline command.
const (
	tSimple    = '+'
	tError     = '-'
	tInteger   = ':'
	tBulk      = '$'
	tArray     = '*'
	tNull      = '_'
	tDouble    = ','
	tBool      = '#'
	tBlobError = '!'
	tVerbatim  = '='
	tBigNum    = '('
	tMap       = '%'
	tSet       = '~'
	tAttr      = '|'
	tPush      = '>'
	tStreamEnd = '.'
	tChunk     = ';'
	tInline    = 'i'
)

// elem is one kept element: a scalar's text (bounded) or an aggregate's
// element count.
type elem struct {
	kind  byte
	null  bool
	off   int   // text in the reader's arena
	n     int   // bytes kept
	full  int64 // true length of the text, or the element count of an aggregate
	count bool  // full is an element count (aggregate)
}

// value is what a reader keeps of one complete top-level value.
type value struct {
	kind  byte
	null  bool
	count int64 // elements of a top-level aggregate (map pairs count twice)
	elems []elem
	arena []byte
	size  int64 // bytes on the wire, attributes included
	start time.Time
}

// text returns the kept text of element i.
func (v *value) text(i int) []byte {
	e := &v.elems[i]
	return v.arena[e.off : e.off+e.n]
}

// aggregate reports whether the top-level value is an aggregate.
func (v *value) aggregate() bool {
	switch v.kind {
	case tArray, tMap, tSet, tPush, tInline:
		return true
	}
	return false
}

// level is one open aggregate.
type level struct {
	left int64 // elements still to come; -1 for a streamed aggregate
	attr bool  // an attribute: its completion is not an element of its parent
}

// reader decodes the RESP values of one direction, pushed a segment at a
// time, without holding more than one line: a bulk string's body is
// counted, and only its first maxElem bytes are kept, so memory is bounded
// whatever a value's size. Each complete top-level value goes to onValue.
type reader struct {
	client  bool // client direction: inline commands are allowed
	onValue func(v *value, end time.Time)

	line      []byte // a line split across segments
	bulk      int64  // bytes of a bulk string still to come, CRLF included
	bulkBody  int64  // body length of that bulk string
	bulkKeep  int    // index of the kept element it fills, or -1
	streamStr bool   // inside a streamed string ($?): ;N chunks follow
	stack     [maxDepth]level
	depth     int
	attrs     int // open attribute levels
	v         value
	started   bool

	desync bool // framing lost: skipping to a plausible value start
	errors int64
}

func newReader(client bool, onValue func(*value, time.Time)) reader {
	r := reader{
		client:  client,
		onValue: onValue,
		v:       value{elems: make([]elem, 0, maxKept), arena: make([]byte, 0, maxKept*maxElem)},
	}
	r.reset()
	return r
}

// feed consumes one segment.
func (r *reader) feed(data []byte, ts time.Time) {
	for len(data) > 0 {
		if r.desync {
			data = r.resync(data)
			continue
		}
		if !r.started {
			r.started = true
			r.v.start = ts
		}
		if r.bulk > 0 {
			data = r.bulkBytes(data, ts)
			continue
		}
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(r.line)+len(data) > maxLine {
				r.fail()
				return
			}
			r.line = append(r.line, data...)
			r.v.size += int64(len(data))
			return
		}
		line := data[:i+1]
		if len(r.line) > 0 {
			if len(r.line)+len(line) > maxLine {
				r.fail()
				return
			}
			r.line = append(r.line, line...)
			line = r.line
		}
		r.v.size += int64(i + 1)
		data = data[i+1:]
		r.handleLine(trimEOL(line), ts)
		r.line = r.line[:0]
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// bulkBytes consumes the body of a bulk string, keeping its first bytes
// when the element is kept.
func (r *reader) bulkBytes(data []byte, ts time.Time) []byte {
	n := int(min(r.bulk, int64(len(data))))
	pos := r.bulkBody + 2 - r.bulk // offset of data[0] in body+CRLF
	if r.bulkKeep >= 0 && pos < r.bulkBody {
		e := &r.v.elems[r.bulkKeep]
		take := int(min(int64(n), r.bulkBody-pos, int64(maxElem-e.n)))
		if take > 0 {
			r.v.arena = append(r.v.arena, data[:take]...)
			e.n += take
		}
	}
	r.bulk -= int64(n)
	r.v.size += int64(n)
	if r.bulk == 0 {
		if r.streamStr {
			// A chunk ended; the streamed string goes on until ;0.
		} else {
			r.elementDone(ts)
		}
	}
	return data[n:]
}

// handleLine handles one line (without its EOL).
func (r *reader) handleLine(line []byte, ts time.Time) {
	if len(line) == 0 {
		if r.depth == 0 && !r.streamStr && r.client {
			r.reset() // an empty inline command: Redis ignores it
			return
		}
		r.fail()
		return
	}
	if r.streamStr {
		r.chunk(line, ts)
		return
	}
	t, rest := line[0], line[1:]
	switch t {
	case tSimple, tError, tInteger, tDouble, tBool, tBigNum:
		r.scalar(t, rest, ts)
	case tNull:
		r.begin(t, true, 0, false)
		r.elementDone(ts)
	case tBulk, tVerbatim, tBlobError:
		r.bulkHeader(t, rest, ts)
	case tArray, tMap, tSet, tPush, tAttr:
		r.aggregate(t, rest, ts)
	case tStreamEnd:
		if r.depth == 0 || r.stack[r.depth-1].left != -1 || len(rest) != 0 {
			r.fail()
			return
		}
		r.depth--
		r.elementDone(ts)
	default:
		if r.depth == 0 && r.client {
			r.inline(line, ts)
			return
		}
		r.fail()
	}
}

// kept reports whether an element starting now is kept, and where.
func (r *reader) kept() bool {
	return r.attrs == 0 && (r.depth == 0 || r.depth == 1) && len(r.v.elems) < maxKept
}

// begin records the start of an element: the top-level value's type, or a
// kept element. It returns the kept element's index, or -1.
func (r *reader) begin(t byte, null bool, full int64, count bool) int {
	if r.attrs > 0 {
		return -1
	}
	if r.depth == 0 {
		r.v.kind, r.v.null = t, null
		if count {
			r.v.count = full
		}
	}
	if !r.kept() || (r.depth == 0 && count) {
		return -1
	}
	r.v.elems = append(r.v.elems, elem{kind: t, null: null, off: len(r.v.arena), full: full, count: count})
	return len(r.v.elems) - 1
}

func (r *reader) keepText(i int, b []byte) {
	if i < 0 {
		return
	}
	e := &r.v.elems[i]
	b = b[:min(len(b), maxElem)]
	r.v.arena = append(r.v.arena, b...)
	e.n = len(b)
}

func (r *reader) scalar(t byte, text []byte, ts time.Time) {
	if t == tInteger {
		if _, ok := parseInt(text); !ok {
			r.fail()
			return
		}
	}
	r.keepText(r.begin(t, false, int64(len(text)), false), text)
	r.elementDone(ts)
}

func (r *reader) bulkHeader(t byte, rest []byte, ts time.Time) {
	if t == tBulk && len(rest) == 1 && rest[0] == '?' {
		r.streamStr = true
		r.bulkKeep = r.begin(t, false, 0, false)
		return
	}
	n, ok := parseInt(rest)
	if !ok || n < -1 || n >= maxCount || (n == -1 && t != tBulk) {
		r.fail()
		return
	}
	if n == -1 { // RESP2 null bulk string
		r.begin(t, true, 0, false)
		r.elementDone(ts)
		return
	}
	r.bulkKeep = r.begin(t, false, n, false)
	r.bulk, r.bulkBody = n+2, n
}

// chunk handles a line inside a streamed string: ;N then N bytes, ;0 ends.
func (r *reader) chunk(line []byte, ts time.Time) {
	n, ok := parseInt(line[1:])
	if line[0] != tChunk || !ok || n < 0 || n >= maxCount {
		r.fail()
		return
	}
	if n == 0 {
		r.streamStr = false
		r.elementDone(ts)
		return
	}
	if r.bulkKeep >= 0 {
		r.v.elems[r.bulkKeep].full += n
	}
	r.bulk, r.bulkBody = n+2, n
}

func (r *reader) aggregate(t byte, rest []byte, ts time.Time) {
	var n int64
	if len(rest) == 1 && rest[0] == '?' && t != tAttr {
		n = -1
	} else {
		var ok bool
		n, ok = parseInt(rest)
		if !ok || n < -1 || n >= maxCount || (n == -1 && t != tArray) {
			r.fail()
			return
		}
		if n == -1 { // RESP2 null array
			r.begin(t, true, 0, false)
			r.elementDone(ts)
			return
		}
	}
	elems := n
	if n > 0 && (t == tMap || t == tAttr) {
		elems = 2 * n
	}
	if t != tAttr {
		r.begin(t, false, elems, true)
	}
	if n == 0 {
		if t == tAttr {
			return // an empty attribute: the value still follows
		}
		r.elementDone(ts)
		return
	}
	if r.depth == maxDepth {
		r.fail()
		return
	}
	r.stack[r.depth] = level{left: elems, attr: t == tAttr}
	r.depth++
	if t == tAttr {
		r.attrs++
	}
}

// inline splits an inline command into its words.
func (r *reader) inline(line []byte, ts time.Time) {
	r.v.kind = tInline
	for w := range words(line) {
		r.v.count++
		r.depth = 1 // words are elements of the command
		r.keepText(r.begin(tBulk, false, int64(len(w)), false), w)
		r.depth = 0
	}
	if r.v.count == 0 {
		r.reset()
		return
	}
	r.valueDone(ts)
}

// elementDone is called when an element at the current depth is complete:
// it counts it in its aggregate and completes the aggregates it fills.
func (r *reader) elementDone(ts time.Time) {
	for r.depth > 0 {
		lv := &r.stack[r.depth-1]
		if lv.left > 0 {
			lv.left--
		}
		if lv.left != 0 {
			return
		}
		r.depth--
		if lv.attr {
			r.attrs--
			return // the attributed value follows
		}
	}
	if r.attrs == 0 {
		r.valueDone(ts)
	}
}

func (r *reader) valueDone(ts time.Time) {
	r.onValue(&r.v, ts)
	r.reset()
}

// reset clears the value in progress.
func (r *reader) reset() {
	r.v.kind, r.v.null, r.v.count, r.v.size = 0, false, 0, 0
	r.v.elems = r.v.elems[:0]
	r.v.arena = r.v.arena[:0]
	r.started = false
	r.depth, r.attrs = 0, 0
	r.bulk, r.bulkBody, r.bulkKeep = 0, 0, -1
	r.streamStr = false
	r.line = r.line[:0]
}

// fail drops the value in progress: the bytes are not RESP where they
// should be. Skipping resumes at a plausible value start.
func (r *reader) fail() {
	r.errors++
	r.reset()
	r.desync = true
}

// gap drops the value in progress after lost bytes.
func (r *reader) gap() {
	r.reset()
	r.desync = true
}

// resync skips to the start of something that looks like a value: the
// current position if it does, else the next line. It returns what is left.
func (r *reader) resync(data []byte) []byte {
	for {
		if r.valueStart(data) {
			r.desync = false
			return data
		}
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil
		}
		data = data[i+1:]
		if len(data) == 0 {
			return nil
		}
	}
}

// valueStart reports whether data plausibly begins a value: a client
// command array, or for the server any type byte followed by a line that
// parses. Bytes that end too soon are taken as a start.
func (r *reader) valueStart(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	if r.client {
		return data[0] == tArray && (len(data) == 1 || isDigit(data[1]))
	}
	switch data[0] {
	case tSimple, tError, tNull:
		return true
	case tInteger, tBulk, tArray, tMap, tSet, tPush, tVerbatim, tBlobError, tAttr:
		return len(data) == 1 || isDigit(data[1]) || data[1] == '-' || data[1] == '?'
	case tDouble, tBool, tBigNum:
		return true
	}
	return false
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// parseInt parses a RESP length or integer: an optional sign and up to 19
// digits.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// words yields the arguments of an inline command: separated by blanks,
// with "double" (backslash escapes kept as written) and 'single' quotes.
func words(line []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		i := 0
		for i < len(line) {
			for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
				i++
			}
			if i == len(line) {
				return
			}
			start, end := i, i
			if q := line[i]; q == '"' || q == '\'' {
				j := i + 1
				for j < len(line) && line[j] != q {
					if line[j] == '\\' && q == '"' && j+1 < len(line) {
						j++
					}
					j++
				}
				start, end = i+1, min(j, len(line))
				i = min(j+1, len(line))
			} else {
				for i < len(line) && line[i] != ' ' && line[i] != '\t' {
					i++
				}
				end = i
			}
			if !yield(line[start:end]) {
				return
			}
		}
	}
}
