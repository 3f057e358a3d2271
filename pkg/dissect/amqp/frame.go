package amqp

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
)

// Frame types and the frame-end octet.
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xCE
)

// protocolHeader opens an AMQP 0-9-1 connection.
var protocolHeader = []byte("AMQP\x00\x00\x09\x01")

// Bounds of one direction's reader.
const (
	maxFrame     = 1 << 27  // a declared frame size beyond this is not the protocol
	maxKeepFrame = 64 << 10 // method and header frame bytes kept
)

// frame is one complete frame, its payload kept up to the reader's limit.
type frame struct {
	typ     byte
	channel uint16
	size    int // payload size
	payload []byte
	start   time.Time
	end     time.Time
}

// frameReader frames one direction, pushed a segment at a time; it holds
// at most one header and the kept part of one payload.
type frameReader struct {
	keepBody int // body frame bytes kept (the body capture limit)

	hdr    [7]byte
	nhdr   int
	f      frame
	left   int // payload bytes still to come, then 1 for the frame end
	keep   int
	buf    []byte
	proto  int  // bytes of a protocol header matched so far
	begun  bool // past the protocol header, or none was there
	desync bool
}

// feed consumes one segment. onFrame gets each complete frame; onHeader is
// called when a protocol header was read. It returns false when the bytes
// break framing.
func (r *frameReader) feed(data []byte, ts time.Time, onFrame func(*frame), onHeader func()) bool {
	r.f.end = ts
	for len(data) > 0 {
		if r.desync {
			i := resync(data)
			if i < 0 {
				return true
			}
			data, r.desync = data[i:], false
		}
		if !r.begun || r.proto > 0 || (r.nhdr == 0 && r.left == 0 && data[0] == 'A') {
			var ok bool
			if data, ok = r.header(data, onHeader); !ok {
				return false
			}
			continue
		}
		if r.left == 0 {
			if r.nhdr == 0 {
				r.f.start = ts
			}
			n := copy(r.hdr[r.nhdr:], data)
			r.nhdr += n
			data = data[n:]
			if r.nhdr < len(r.hdr) {
				return true
			}
			if !r.frameHeader() {
				return false
			}
		}
		var ok bool
		if data, ok = r.payload(data, onFrame); !ok {
			return false
		}
	}
	return true
}

// header consumes a protocol header ("AMQP" and four version octets) if
// the stream starts with one; a stream captured mid-connection does not.
func (r *frameReader) header(data []byte, onHeader func()) ([]byte, bool) {
	for len(data) > 0 && r.proto < len(protocolHeader) {
		if r.proto < 4 && data[0] != protocolHeader[r.proto] {
			if r.proto > 0 {
				return data, false
			}
			r.begun = true // no header: frames from here
			return data, true
		}
		r.proto++
		data = data[1:]
	}
	if r.proto == len(protocolHeader) {
		r.proto = 0
		r.begun = true
		if onHeader != nil {
			onHeader()
		}
	}
	return data, true
}

func (r *frameReader) frameHeader() bool {
	r.f.typ = r.hdr[0]
	r.f.channel = binary.BigEndian.Uint16(r.hdr[1:])
	size := binary.BigEndian.Uint32(r.hdr[3:])
	if r.f.typ != frameMethod && r.f.typ != frameHeader && r.f.typ != frameBody && r.f.typ != frameHeartbeat || size > maxFrame {
		return false
	}
	r.f.size = int(size)
	r.left = r.f.size + 1
	switch r.f.typ {
	case frameBody:
		r.keep = min(r.f.size, r.keepBody)
	default:
		r.keep = min(r.f.size, maxKeepFrame)
	}
	r.buf = r.buf[:0]
	r.f.payload = nil
	return true
}

// payload consumes payload bytes and the frame end, keeping the first
// r.keep bytes; a frame wholly inside data is passed on without a copy.
func (r *frameReader) payload(data []byte, onFrame func(*frame)) ([]byte, bool) {
	if r.left == r.f.size+1 && len(data) >= r.left {
		if data[r.f.size] != frameEnd {
			return data, false
		}
		r.f.payload = data[:r.keep]
		data = data[r.left:]
		r.done(onFrame)
		return data, true
	}
	body := r.left - 1 // payload bytes still to come
	n := min(body, len(data))
	consumed := r.f.size - body
	if room := r.keep - consumed; room > 0 {
		r.buf = append(r.buf, data[:min(room, n)]...)
	}
	r.left -= n
	data = data[n:]
	if r.left == 1 && len(data) > 0 {
		if data[0] != frameEnd {
			return data, false
		}
		r.f.payload = r.buf
		r.done(onFrame)
		data = data[1:]
	}
	return data, true
}

func (r *frameReader) done(onFrame func(*frame)) {
	r.left, r.nhdr = 0, 0
	onFrame(&r.f)
	r.f.payload = nil
	if cap(r.buf) > 2*maxKeepFrame {
		r.buf = nil
	}
}

// lose drops the frame in progress; framing resumes at a plausible frame.
func (r *frameReader) lose() {
	r.left, r.nhdr, r.proto = 0, 0, 0
	r.buf = r.buf[:0]
	r.begun, r.desync = true, true
}

// resync returns the offset of the first plausible frame start in data: a
// known type, a sane size, and the frame end where the size says (so the
// whole frame must be in data); -1 when there is none.
func resync(data []byte) int {
	for i := 0; i+8 <= len(data); i++ {
		switch data[i] {
		case frameMethod, frameHeader, frameBody, frameHeartbeat:
		default:
			continue
		}
		size := int(binary.BigEndian.Uint32(data[i+3:]))
		if size < maxFrame && i+7+size < len(data) && data[i+7+size] == frameEnd {
			return i
		}
	}
	return -1
}

// cursor reads method arguments and properties; past the end every read
// fails and ok turns false.
type cursor struct {
	b    []byte
	ok   bool
	bits byte // the octet of packed bits being read
	nbit int  // bits of it used; 8 or more reads a new octet
}

func newCursor(b []byte) cursor { return cursor{b: b, ok: true, nbit: 8} }

func (c *cursor) take(n int) []byte {
	c.nbit = 8
	if !c.ok || len(c.b) < n {
		c.ok = false
		c.b = nil
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) octet() byte {
	if v := c.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (c *cursor) short() uint16 {
	if v := c.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (c *cursor) long() uint32 {
	if v := c.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (c *cursor) longlong() uint64 {
	if v := c.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (c *cursor) shortstr() []byte { return c.take(int(c.octet())) }

func (c *cursor) longstr() []byte {
	n := c.long()
	if n > uint32(len(c.b)) {
		c.ok = false
		return nil
	}
	return c.take(int(n))
}

// bit reads the next of a run of packed bits.
func (c *cursor) bit() bool {
	if c.nbit >= 8 {
		c.bits = c.octet()
		c.nbit = 0
		if !c.ok {
			return false
		}
	}
	v := c.bits&(1<<c.nbit) != 0
	c.nbit++
	return v
}

// Bounds of the properties an entry keeps.
const (
	maxProps     = 32
	maxPropValue = 256
	maxDepth     = 8 // nesting of tables and arrays
)

// table reads a field table; when props is not nil, its scalar fields are
// added as prefix+name, bounded.
func (c *cursor) table(props map[string]string, prefix string) {
	b := c.longstr()
	if !c.ok {
		return
	}
	t := newCursor(b)
	t.fields(props, prefix, 0)
	if !t.ok {
		c.ok = false
	}
}

func (c *cursor) fields(props map[string]string, prefix string, depth int) {
	for c.ok && len(c.b) > 0 {
		name := c.shortstr()
		v := c.value(depth)
		if c.ok && props != nil && len(props) < maxProps {
			props[prefix+bounded(name)] = v
		}
	}
}

// value reads one field value and renders it as text; tables and arrays
// are skipped and shown by kind.
func (c *cursor) value(depth int) string {
	switch c.octet() {
	case 't':
		return strconv.FormatBool(c.octet() != 0)
	case 'b':
		return strconv.Itoa(int(int8(c.octet())))
	case 'B':
		return strconv.Itoa(int(c.octet()))
	case 's':
		return strconv.Itoa(int(int16(c.short())))
	case 'u':
		return strconv.Itoa(int(c.short()))
	case 'I':
		return strconv.Itoa(int(int32(c.long())))
	case 'i':
		return strconv.FormatUint(uint64(c.long()), 10)
	case 'l':
		return strconv.FormatInt(int64(c.longlong()), 10)
	case 'f':
		return strconv.FormatFloat(float64(math.Float32frombits(c.long())), 'g', -1, 32)
	case 'd':
		return strconv.FormatFloat(math.Float64frombits(c.longlong()), 'g', -1, 64)
	case 'D':
		scale := c.octet()
		v := int32(c.long())
		return strconv.Itoa(int(v)) + "e-" + strconv.Itoa(int(scale))
	case 'S', 'x':
		return bounded(c.longstr())
	case 'T':
		return time.Unix(int64(c.longlong()), 0).UTC().Format(time.RFC3339)
	case 'V':
		return ""
	case 'F':
		c.nested(depth, false)
		return "(table)"
	case 'A':
		c.nested(depth, true)
		return "(array)"
	}
	c.ok = false
	return ""
}

// nested skips a table or an array, checking its structure.
func (c *cursor) nested(depth int, array bool) {
	b := c.longstr()
	if !c.ok {
		return
	}
	if depth >= maxDepth {
		return // too deep to check; skipped whole
	}
	n := newCursor(b)
	for n.ok && len(n.b) > 0 {
		if !array {
			n.shortstr()
		}
		n.value(depth + 1)
	}
	c.ok = n.ok
}

func bounded(b []byte) string {
	if len(b) > maxPropValue {
		return string(b[:maxPropValue]) + "…"
	}
	return string(b)
}
