package grpc

import (
	"encoding/binary"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Bounds of the schema-less rendering.
const (
	// maxDepth bounds nesting: a length-delimited field this deep is shown
	// as a string or bytes, never parsed further.
	maxDepth = 8
	// hexPreview is how many bytes of an opaque value are shown in hex.
	hexPreview = 32
	// maxFieldNumber is the largest field number protobuf allows.
	maxFieldNumber = 1<<29 - 1
)

// Protobuf wire types.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

const hexDigits = "0123456789abcdef"

// RenderProto renders a protobuf message without its schema, such as
// `1: "alice" 2: 42 3: {1: 7 2: "x"} 4: 0x3ff0000000000000`. Varints are
// unsigned decimal, fixed64 and fixed32 are hex, and a length-delimited field
// is a quoted string when it is printable UTF-8, else a nested message when it
// parses completely as one, else a hex preview such as `<0a0bff>`. Groups
// render like nested messages.
//
// The output holds at most maxOut bytes; truncated reports that it covers
// only part of b, either because of maxOut or because b does not parse to
// its end (a message cut short by a capture limit renders its complete
// fields and what it holds of the last one). Input that is not a message at
// all renders as a string or hex.
func RenderProto(b []byte, maxOut int) (text string, truncated bool) {
	out, truncated := AppendProto(nil, b, maxOut)
	return string(out), truncated
}

// AppendProto appends the rendering of RenderProto to dst, so that a caller
// rendering many messages can reuse one buffer. At most maxOut bytes are
// appended.
func AppendProto(dst, b []byte, maxOut int) (out []byte, truncated bool) {
	if len(b) == 0 {
		return dst, false
	}
	if maxOut <= 0 {
		return dst, true
	}
	base := len(dst)
	r := renderer{max: maxOut, out: dst[base:]}
	if cap(r.out) == 0 {
		r.out = make([]byte, 0, min(maxOut, 4*len(b)+8))
	}
	n, fields, ok := scanFields(b, 0, 0)
	cut := cutField(b[n:]) > 0
	switch {
	case ok && n == len(b):
		r.fields(b, 0, 0)
	case cut && (b[0] < 0x20 || !printable(b)):
		// Whole fields, then one that runs past the end: a message kept
		// only in part. (The tags of fields 1 to 3 are control bytes,
		// which text rarely starts with.)
		r.fields(b[:n], 0, 0)
		r.cut(b[n:])
		r.truncated = true
	case printable(b):
		r.quoted(b)
	case fields > 0:
		// A prefix of whole fields, then bytes that are not a field.
		r.fields(b[:n], 0, 0)
		r.truncated = true
	default:
		r.hex(b)
	}
	if len(r.out) > maxOut {
		// Closing braces and previews may overrun the budget a little.
		r.out = r.out[:runeStart(r.out, maxOut)]
		r.truncated = true
	}
	if base == 0 {
		return r.out, r.truncated
	}
	return append(dst[:base], r.out...), r.truncated
}

// renderer appends to out until it holds max bytes.
type renderer struct {
	out       []byte
	max       int
	truncated bool
}

// full reports (and records) that the output budget is spent.
func (r *renderer) full() bool {
	if len(r.out) >= r.max {
		r.truncated = true
		return true
	}
	return false
}

// fields renders the fields of b, a sequence already validated by
// scanFields with the same depth and group, and returns the bytes used.
func (r *renderer) fields(b []byte, depth int, group uint64) int {
	i := 0
	for i < len(b) && !r.full() {
		tag, n := uvarint(b[i:])
		i += n
		num, wt := tag>>3, tag&7
		if wt == wireEndGroup && num == group {
			return i
		}
		if len(r.out) > 0 && r.out[len(r.out)-1] != '{' {
			r.out = append(r.out, ' ')
		}
		r.out = strconv.AppendUint(r.out, num, 10)
		r.out = append(r.out, ':', ' ')
		switch wt {
		case wireVarint:
			v, n := uvarint(b[i:])
			i += n
			r.out = strconv.AppendUint(r.out, v, 10)
		case wireFixed64:
			r.fixed(binary.LittleEndian.Uint64(b[i:]), 16)
			i += 8
		case wireFixed32:
			r.fixed(uint64(binary.LittleEndian.Uint32(b[i:])), 8)
			i += 4
		case wireBytes:
			l, n := uvarint(b[i:])
			i += n
			r.value(b[i:i+int(l)], depth+1)
			i += int(l)
		case wireStartGroup:
			r.out = append(r.out, '{')
			i += r.fields(b[i:], depth+1, num)
			r.out = append(r.out, '}')
		}
	}
	return i
}

// cutField returns the length of the tag and length prefix when b starts
// with a length-delimited field whose value runs past the end of b, as the
// last field of a message kept only in part does; 0 otherwise.
func cutField(b []byte) int {
	tag, n := uvarint(b)
	if n == 0 || tag&7 != wireBytes || tag>>3 == 0 || tag>>3 > maxFieldNumber {
		return 0
	}
	l, m := uvarint(b[n:])
	if m == 0 || l <= uint64(len(b)-n-m) {
		return 0
	}
	return n + m
}

// cut renders the part of a length-delimited field that b holds, if b
// starts with one that runs past its end.
func (r *renderer) cut(b []byte) {
	n := cutField(b)
	if n == 0 || r.full() {
		return
	}
	if len(r.out) > 0 {
		r.out = append(r.out, ' ')
	}
	tag, _ := uvarint(b)
	r.out = strconv.AppendUint(r.out, tag>>3, 10)
	r.out = append(r.out, ':', ' ')
	if v := b[n:]; printable(v) {
		r.quoted(v)
	} else {
		r.hex(v)
	}
}

// value renders one length-delimited value.
func (r *renderer) value(v []byte, depth int) {
	switch {
	case len(v) == 0:
		r.out = append(r.out, '"', '"')
	case printable(v):
		r.quoted(v)
	case depth < maxDepth && isMessage(v, depth):
		r.out = append(r.out, '{')
		r.fields(v, depth, 0)
		r.out = append(r.out, '}')
	default:
		r.hex(v)
	}
}

// isMessage reports whether v parses completely as a non-empty message.
func isMessage(v []byte, depth int) bool {
	n, fields, ok := scanFields(v, depth, 0)
	return ok && n == len(v) && fields > 0
}

// quoted appends s as a Go-quoted string, cut to the output budget.
func (r *renderer) quoted(s []byte) {
	room := r.max - len(r.out) - 2
	if room < 0 {
		room = 0
	}
	if len(s) > room {
		s = s[:runeStart(s, room)]
		r.truncated = true
	}
	r.out = strconv.AppendQuote(r.out, string(s))
}

// hex appends a bounded hex preview such as <0a0b> or <0a0b... (40 bytes)>.
func (r *renderer) hex(v []byte) {
	r.out = append(r.out, '<')
	for i, c := range v {
		if i == hexPreview {
			r.out = append(r.out, "... ("...)
			r.out = strconv.AppendInt(r.out, int64(len(v)), 10)
			r.out = append(r.out, " bytes)"...)
			break
		}
		r.out = append(r.out, hexDigits[c>>4], hexDigits[c&0xf])
	}
	r.out = append(r.out, '>')
}

// fixed appends v as 0x followed by digits hex digits.
func (r *renderer) fixed(v uint64, digits int) {
	r.out = append(r.out, '0', 'x')
	for s := (digits - 1) * 4; s >= 0; s -= 4 {
		r.out = append(r.out, hexDigits[(v>>uint(s))&0xf])
	}
}

// scanFields walks the fields of b at one nesting level without rendering.
// It stops at the end of b, at the end-group tag of group (group != 0), or at
// the first malformed field. It returns the bytes of whole fields consumed
// (including the end-group tag), their count, and whether the walk ended
// cleanly: at the end of b for a message, at the end tag for a group.
func scanFields(b []byte, depth int, group uint64) (n, fields int, ok bool) {
	i := 0
	for i < len(b) {
		tag, l := uvarint(b[i:])
		if l == 0 {
			return i, fields, false
		}
		num, wt := tag>>3, tag&7
		if num == 0 || num > maxFieldNumber {
			return i, fields, false
		}
		if wt == wireEndGroup {
			if num == group {
				return i + l, fields, true
			}
			return i, fields, false
		}
		size := fieldSize(b[i+l:], wt, num, depth)
		if size < 0 {
			return i, fields, false
		}
		i += l + size
		fields++
	}
	return i, fields, group == 0
}

// fieldSize returns the size of a field's value of wire type wt at the start
// of b, or -1 when it is malformed or runs past the end of b.
func fieldSize(b []byte, wt, num uint64, depth int) int {
	switch wt {
	case wireVarint:
		if _, n := uvarint(b); n > 0 {
			return n
		}
	case wireFixed64:
		if len(b) >= 8 {
			return 8
		}
	case wireFixed32:
		if len(b) >= 4 {
			return 4
		}
	case wireBytes:
		l, n := uvarint(b)
		if n > 0 && l <= uint64(len(b)-n) {
			return n + int(l)
		}
	case wireStartGroup:
		if depth+1 >= maxDepth {
			return -1
		}
		if n, _, ok := scanFields(b, depth+1, num); ok {
			return n
		}
	}
	return -1
}

// uvarint decodes a protobuf varint at the start of b. It returns the value
// and its length, or length 0 when b holds no complete, canonical-width
// varint (at most 10 bytes, the last carrying at most one bit).
func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0
		}
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// printable reports whether b is valid UTF-8 text with no control
// characters other than tab, newline and carriage return.
func printable(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
		i += n
	}
	return true
}

// runeStart returns the largest index <= n that starts a rune of s.
func runeStart(s []byte, n int) int {
	if n >= len(s) {
		return len(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}
