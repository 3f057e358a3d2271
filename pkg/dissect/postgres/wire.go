package postgres

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Protocol codes of the untyped first messages (protocol 3.0, section 55.7).
const (
	codeProtocol3 = 196608   // StartupMessage: 3.0
	codeSSL       = 80877103 // SSLRequest
	codeGSSENC    = 80877104 // GSSENCRequest
	codeCancel    = 80877102 // CancelRequest
)

// Bounds on what is kept of one message; the rest is counted and skipped.
const (
	maxMsgLen = 1 << 30 // a declared length beyond this is not the protocol
	maxSQL    = 16 << 10
	maxKeep   = maxSQL + 512
	maxText   = 1 << 10 // an error message, a tag, a parameter value
)

// message is one message, its payload kept up to keepLimit(type).
type message struct {
	typ     byte // 0 for an untyped startup-phase message
	length  int  // payload length
	payload []byte
	size    int // bytes on the wire
	start   time.Time
	end     time.Time
}

// keepLimit says how many payload bytes of a message the parser reads.
// Rows, copy data and password messages are never kept.
func keepLimit(client bool, typ byte) int {
	if client {
		switch typ {
		case 0, 'Q', 'P':
			return maxKeep
		case 'B':
			return 4 << 10
		case 'E', 'D', 'C', 'F':
			return 1 << 10
		}
		return 0
	}
	switch typ {
	case 'E', 'N', 'A':
		return 4 << 10
	case 'C', 'R', 'Z', 'G', 'H', 'W':
		return 512
	}
	return 0
}

// msgReader frames the messages of one direction, pushed a segment at a
// time. It holds at most one message header and the kept part of one
// payload.
type msgReader struct {
	client  bool
	untyped bool // the next message is a startup-phase one: no type byte
	oneByte bool // the next byte answers an SSLRequest or GSSENCRequest

	hdr    [5]byte
	nhdr   int
	m      message
	left   int // payload bytes still to come
	keep   int // payload bytes to keep
	buf    []byte
	desync bool // framing lost: looking for a message start
}

func (r *msgReader) hdrLen() int {
	if r.untyped {
		return 4
	}
	return 5
}

// feed consumes one segment, calling onMsg for each complete message and
// onByte for a one-byte answer. It returns false when the bytes cannot be
// this protocol's framing (the caller resynchronises).
func (r *msgReader) feed(data []byte, ts time.Time, onMsg func(*message), onByte func(byte, time.Time)) bool {
	r.m.end = ts
	for len(data) > 0 {
		if r.desync {
			i := r.resync(data)
			if i < 0 {
				return true
			}
			data = data[i:]
			r.desync = false
		}
		if r.oneByte && r.nhdr == 0 && r.left == 0 {
			r.oneByte = false
			onByte(data[0], ts)
			data = data[1:]
			continue
		}
		if r.left == 0 && r.nhdr < r.hdrLen() {
			if r.nhdr == 0 {
				r.m.start = ts
			}
			n := copy(r.hdr[r.nhdr:r.hdrLen()], data)
			r.nhdr += n
			data = data[n:]
			if r.nhdr < r.hdrLen() {
				return true
			}
			if !r.header() {
				return false
			}
			if r.left == 0 {
				r.deliver(onMsg)
				continue
			}
		}
		data = r.payload(data, onMsg)
	}
	return true
}

// header decodes a complete header.
func (r *msgReader) header() bool {
	var n int
	if r.untyped {
		r.m.typ = 0
		n = int(binary.BigEndian.Uint32(r.hdr[:4]))
	} else {
		r.m.typ = r.hdr[0]
		n = int(binary.BigEndian.Uint32(r.hdr[1:5]))
	}
	if n < 4 || n > maxMsgLen {
		return false
	}
	r.m.length = n - 4
	r.m.size = r.hdrLen() + r.m.length
	r.left = r.m.length
	r.keep = min(keepLimit(r.client, r.m.typ), r.m.length)
	r.buf = r.buf[:0]
	r.m.payload = nil
	return true
}

// payload consumes payload bytes, keeping the first r.keep of them; a
// payload wholly inside data is passed on without a copy.
func (r *msgReader) payload(data []byte, onMsg func(*message)) []byte {
	n := min(r.left, len(data))
	if len(r.buf) == 0 && n == r.left && r.left == r.m.length {
		r.m.payload = data[:r.keep]
	} else if room := r.keep - len(r.buf); room > 0 {
		r.buf = append(r.buf, data[:min(room, n)]...)
		r.m.payload = r.buf
	}
	r.left -= n
	if r.left == 0 {
		r.deliver(onMsg)
	}
	return data[n:]
}

func (r *msgReader) deliver(onMsg func(*message)) {
	if r.m.payload == nil {
		r.m.payload = r.buf[:0]
	}
	r.nhdr = 0
	r.untyped = false
	onMsg(&r.m)
	r.m.payload = nil
	if cap(r.buf) > 2*maxKeep {
		r.buf = nil
	}
}

// lose drops the message in progress; framing resumes at a plausible
// message start.
func (r *msgReader) lose() {
	r.nhdr, r.left, r.keep = 0, 0, 0
	r.buf = r.buf[:0]
	r.untyped, r.oneByte = false, false
	r.desync = true
}

// resync returns the offset of the first plausible message start in data,
// or -1. The server's ReadyForQuery is unmistakable; for the client, a
// Query, Parse or Sync header with a sane length.
func (r *msgReader) resync(data []byte) int {
	for i := 0; i+5 <= len(data); i++ {
		n := binary.BigEndian.Uint32(data[i+1:])
		if r.client {
			switch data[i] {
			case 'Q', 'P':
				if n > 4 && n < maxMsgLen {
					return i
				}
			case 'S':
				if n == 4 {
					return i
				}
			}
			continue
		}
		if data[i] == 'Z' && n == 5 && i+5 < len(data) && bytes.IndexByte([]byte("ITE"), data[i+5]) >= 0 {
			return i
		}
	}
	return -1
}

// cstring returns the NUL-terminated string at the start of b and what
// follows it; ok is false when b holds no NUL.
func cstring(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

func u16(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(b)), true
}

func u32(b []byte) (uint32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// errorFields reads the SQLSTATE code, severity and message of an
// ErrorResponse or NoticeResponse.
func errorFields(b []byte) (code, severity, msg []byte) {
	for len(b) > 0 && b[0] != 0 {
		f := b[0]
		v, rest, _ := cstring(b[1:])
		switch f {
		case 'C':
			code = v
		case 'V':
			severity = v
		case 'S':
			if severity == nil {
				severity = v
			}
		case 'M':
			msg = v
		}
		b = rest
	}
	return code, severity, msg
}

// text bounds a string for an entry.
func text(b []byte, limit int) string {
	if len(b) > limit {
		return trimPartial(string(b[:limit])) + "…"
	}
	return string(b)
}
