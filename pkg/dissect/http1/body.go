package http1

import (
	"bytes"
	"encoding/base64"
	"unicode/utf8"
	"unsafe"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// bodyKind is how the end of a body is found.
type bodyKind uint8

const (
	bodyNone    bodyKind = iota
	bodyLength           // Content-Length bytes
	bodyChunked          // chunked transfer coding
	bodyClose            // everything until the connection closes
)

// chunkState is where the chunked decoder stands.
type chunkState uint8

const (
	chSize         chunkState = iota // hex digits of a chunk size
	chExt                            // chunk extensions, up to the line end
	chSizeLF                         // the LF ending a size line
	chData                           // chunk data
	chDataCR                         // the CRLF after chunk data
	chDataLF                         //
	chTrailerStart                   // the start of a trailer line, or the final CRLF
	chTrailerCR                      // a CR at the start of a line: the final CRLF
	chTrailer                        // inside a trailer line
)

// Body errors, as they appear in Entry.Error.
const (
	errChunked  = "invalid chunked encoding"
	errTrailers = "trailers too large"
)

// bodyReader follows the framing of one body and keeps its first bytes.
type bodyReader struct {
	kind   bodyKind
	remain int64 // bodyLength: bytes left; bodyChunked: bytes left in the chunk
	cs     chunkState
	digits int // hex digits of the current chunk size
	ext    int // bytes of chunk extensions on the current size line
	size   int64
	max    int    // bytes of the body to keep
	want   int    // bodyLength: the bytes it will keep
	keep   []byte // the kept bytes; reused from message to message
	holed  bool   // bytes were lost inside the body; keep stopped there

	trailers []byte // raw trailer lines of a chunked body
}

// start prepares r for a new body.
func (r *bodyReader) start(kind bodyKind, length int64, limit int) {
	*r = bodyReader{kind: kind, remain: length, max: limit, keep: r.keep[:0], trailers: r.trailers[:0]}
	switch kind {
	case bodyChunked:
		r.remain = 0
	case bodyLength:
		r.want = int(min(length, int64(limit)))
	}
}

// read consumes body bytes from data. It returns how many it used, whether
// the body is complete, and a framing error, if any.
func (r *bodyReader) read(data []byte) (n int, done bool, err string) {
	switch r.kind {
	case bodyLength:
		n = int(min(r.remain, int64(len(data))))
		r.capture(data[:n])
		r.remain -= int64(n)
		return n, r.remain == 0, ""
	case bodyChunked:
		return r.chunked(data)
	case bodyClose:
		r.capture(data)
		return len(data), false, ""
	}
	return 0, true, ""
}

func (r *bodyReader) capture(b []byte) {
	r.size += int64(len(b))
	if room := r.max - len(r.keep); room > 0 && !r.holed {
		if len(r.keep) == 0 && len(b) > 0 && cap(r.keep) < r.want {
			// The body has begun, and comes in an append per segment:
			// size what is kept once, rather than by doublings.
			r.keep = bodyBuffer(r.want)
		}
		r.keep = append(r.keep, b[:min(room, len(b))]...)
	}
}

// chunked runs the chunked decoder over data.
func (r *bodyReader) chunked(data []byte) (int, bool, string) {
	i := 0
	for i < len(data) {
		c := data[i]
		switch r.cs {
		case chSize:
			switch v := unhex(c); {
			case v >= 0 && r.digits < 15:
				r.remain = r.remain<<4 | int64(v)
				r.digits++
			case v >= 0 || r.digits == 0:
				return i, false, errChunked
			case c == ';' || c == ' ' || c == '\t':
				r.cs = chExt
			case c == '\r':
				r.cs = chSizeLF
			case c == '\n':
				r.endSizeLine()
			default:
				return i, false, errChunked
			}
			i++
		case chExt:
			j := bytes.IndexByte(data[i:], '\n')
			if j < 0 {
				j = len(data) - i
			}
			if r.ext += j; r.ext > maxChunkExt {
				return i, false, errChunked
			}
			if i += j; i < len(data) {
				i++
				r.endSizeLine()
			}
		case chSizeLF:
			if c != '\n' {
				return i, false, errChunked
			}
			i++
			r.endSizeLine()
		case chData:
			n := int(min(r.remain, int64(len(data)-i)))
			r.capture(data[i : i+n])
			i += n
			if r.remain -= int64(n); r.remain == 0 {
				r.cs = chDataCR
			}
		case chDataCR, chDataLF:
			switch {
			case c == '\r' && r.cs == chDataCR:
				r.cs = chDataLF
			case c == '\n':
				r.cs = chSize
			default:
				return i, false, errChunked
			}
			i++
		case chTrailerStart, chTrailerCR:
			switch {
			case c == '\n':
				return i + 1, true, ""
			case c == '\r' && r.cs == chTrailerStart:
				r.cs = chTrailerCR
				i++
			case r.cs == chTrailerCR:
				return i, false, errChunked
			default:
				r.cs = chTrailer
			}
		case chTrailer:
			end := len(data)
			if j := bytes.IndexByte(data[i:], '\n'); j >= 0 {
				end = i + j + 1
				r.cs = chTrailerStart
			}
			if len(r.trailers)+end-i > maxHead {
				return i, false, errTrailers
			}
			r.trailers = append(r.trailers, data[i:end]...)
			i = end
		}
	}
	return i, false, ""
}

func (r *bodyReader) endSizeLine() {
	r.digits, r.ext = 0, 0
	if r.remain == 0 {
		r.cs = chTrailerStart
	} else {
		r.cs = chData
	}
}

// skip accounts for n bytes lost inside the body, when the framing allows
// stepping over them without losing sync. It reports whether it could, and
// whether the body is then complete.
func (r *bodyReader) skip(n int) (ok, done bool) {
	switch {
	case r.kind == bodyClose:
	case r.kind == bodyLength && r.remain >= int64(n):
		r.remain -= int64(n)
		done = r.remain == 0
	case r.kind == bodyChunked && r.cs == chData && r.remain >= int64(n):
		if r.remain -= int64(n); r.remain == 0 {
			r.cs = chDataCR
		}
	default:
		return false, false
	}
	r.size += int64(n)
	r.holed = true
	return true, done
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// fillBody stores what r kept in b: the true size, the kept bytes (content
// decoded when coding is one the parser removes), as text or base64.
//
// own, when not nil, is the recycled exchange's buffer for the body: the
// text lands there, b.Data points into it, and no string is allocated.
func (d *decoder) fillBody(b *entry.Body, r *bodyReader, coding string, own *[]byte) {
	b.Size = r.size
	data := r.keep
	truncated := r.size > int64(len(data))
	if coding != "" && len(data) > 0 {
		if out, complete, ok := d.decode(coding, data, r.max); ok {
			data = out
			b.Decoded = coding
			truncated = truncated || !complete
		}
	}
	b.Truncated = truncated
	if len(data) == 0 {
		return
	}
	if truncated {
		data = trimPartialRune(data)
	}
	if utf8.Valid(data) {
		b.Data = ownString(own, data, r)
		return
	}
	b.Encoding = "base64"
	b.Data = base64.StdEncoding.EncodeToString(data)
}

// ownString returns data as a string: a copy, or without own, a view of
// own that takes its bytes. When data is r's kept bytes, r and own trade
// buffers instead of copying.
func ownString(own *[]byte, data []byte, r *bodyReader) string {
	if own == nil {
		return string(data)
	}
	if len(r.keep) > 0 && unsafe.SliceData(data) == unsafe.SliceData(r.keep) {
		*own, r.keep = r.keep, (*own)[:0]
	} else {
		*own = append((*own)[:0], data...)
	}
	return unsafe.String(unsafe.SliceData(*own), len(data))
}

// trimPartialRune drops a UTF-8 sequence cut short at the end of b, so that
// text cut at the body limit still reads as text.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return b
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}
