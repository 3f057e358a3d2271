package websocket

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

// Frame limits (RFC 6455 section 5.5).
const (
	maxControlPayload = 125
	maxHeader         = 14 // 2 + 8 (64-bit length) + 4 (masking key)
	// maxDeflated bounds the compressed bytes of one message kept to
	// inflate it.
	maxDeflated = 256 << 10
)

// message is a data message being reassembled, or a control frame.
type message struct {
	active      bool
	opcode      byte
	compressed  bool
	overflow    bool // compressed bytes past maxDeflated were dropped
	frames      int
	start, last time.Time
	wire        int64  // bytes on the wire, headers included
	size        int64  // payload bytes
	keep        []byte // the unmasked payload kept, up to limit
	limit       int
	err         string
}

// reset readies m for the next message, keeping its buffer unless a large
// message grew it.
func (m *message) reset() {
	keep := m.keep[:0]
	if cap(keep) > 64<<10 {
		keep = nil
	}
	*m = message{keep: keep}
}

// half reads the frames of one direction.
type half struct {
	dir  dissect.Dir
	hdr  [maxHeader]byte
	nhdr int

	// The frame whose payload is being read.
	mask      [4]byte
	masked    bool
	fin       bool
	remaining uint64 // payload bytes still to come
	pos       int    // payload bytes read, modulo 4, for the mask
	cur       *message

	msg message // a data message (text or binary), maybe fragmented
	ctl message // a control frame (close, ping, pong)

	lost     bool // framing lost: bytes are only counted
	inflater inflater
}

// feed parses data as frames.
func (h *half) feed(p *parser, data []byte, ts time.Time) {
	for len(data) > 0 {
		if h.lost {
			p.stats.Skipped += int64(len(data))
			return
		}
		if h.cur == nil {
			data = h.header(p, data, ts)
			continue
		}
		n := len(data)
		if uint64(n) > h.remaining {
			n = int(h.remaining)
		}
		h.payload(data[:n], ts)
		data = data[n:]
		h.remaining -= uint64(n)
		if h.remaining == 0 {
			h.frameDone(p)
		}
	}
}

// headerLen is the length of the header whose first two bytes are b0, b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// header collects a frame header and starts the frame.
func (h *half) header(p *parser, data []byte, ts time.Time) []byte {
	want := 2
	if h.nhdr >= 2 {
		want = headerLen(h.hdr[1])
	}
	for h.nhdr < want && len(data) > 0 {
		n := copy(h.hdr[h.nhdr:want], data)
		h.nhdr += n
		data = data[n:]
		if h.nhdr == 2 {
			want = headerLen(h.hdr[1])
		}
	}
	if h.nhdr < want {
		return data
	}
	h.nhdr = 0
	h.start(p, want, ts)
	return data
}

// start begins the frame whose header of n bytes is in h.hdr.
func (h *half) start(p *parser, n int, ts time.Time) {
	b0, b1 := h.hdr[0], h.hdr[1]
	op := b0 & 0x0F
	h.fin = b0&0x80 != 0
	h.masked = b1&0x80 != 0
	length := uint64(b1 & 0x7F)
	off := 2
	switch length {
	case 126:
		length = uint64(h.hdr[2])<<8 | uint64(h.hdr[3])
		off = 4
	case 127:
		length = 0
		for _, c := range h.hdr[2:10] {
			length = length<<8 | uint64(c)
		}
		off = 10
	}
	if h.masked {
		copy(h.mask[:], h.hdr[off:off+4])
	}
	control := op&0x8 != 0
	if !validFrame(op, b0, length, control, p.deflate.enabled) {
		h.broken(p, ts, n)
		return
	}
	m := h.messageFor(p, op, b0, control, ts)
	m.frames++
	m.wire += int64(n)
	m.last = ts
	h.cur, h.remaining, h.pos = m, length, 0
	if length == 0 {
		h.frameDone(p)
	}
}

// validFrame applies the framing rules a real peer never breaks, so that a
// stream that is not WebSocket (or lost its framing) stops being parsed.
func validFrame(op, b0 byte, length uint64, control, deflate bool) bool {
	switch {
	case op > opBinary && op < opClose, op > opPong:
		return false // reserved opcodes
	case b0&0x30 != 0:
		return false // RSV2, RSV3: no extension defines them
	case b0&0x40 != 0 && (!deflate || control || op == opContinuation):
		return false // RSV1 is permessage-deflate's, on a first frame
	case control && (b0&0x80 == 0 || length > maxControlPayload):
		return false
	case length>>63 != 0:
		return false
	}
	return true
}

// messageFor returns the message a new frame's payload belongs to.
func (h *half) messageFor(p *parser, op, b0 byte, control bool, ts time.Time) *message {
	if control {
		m := &h.ctl
		m.active, m.opcode, m.start = true, op, ts
		m.limit = maxControlPayload
		return m
	}
	m := &h.msg
	if op == opContinuation && m.active {
		return m
	}
	if m.active {
		// A new message before the last one's final fragment.
		m.err = errIncomplete
		p.finish(h, m)
	}
	m.active, m.opcode, m.start = true, op, ts
	m.compressed = b0&0x40 != 0
	m.limit = p.maxBody
	if m.compressed {
		m.limit = maxDeflated
	}
	if op == opContinuation {
		m.err = errOrphan
	}
	return m
}

// payload unmasks and keeps what fits of a piece of the frame's payload.
func (h *half) payload(b []byte, ts time.Time) {
	m := h.cur
	m.size += int64(len(b))
	m.wire += int64(len(b))
	m.last = ts
	pos := h.pos
	h.pos = (h.pos + len(b)) & 3
	room := m.limit - len(m.keep)
	if len(b) > room {
		m.overflow = m.overflow || m.compressed
		b = b[:max(room, 0)]
	}
	if h.masked {
		start := len(m.keep)
		m.keep = append(m.keep, b...)
		unmask(m.keep[start:], h.mask, pos)
	} else {
		m.keep = append(m.keep, b...)
	}
}

// unmask XORs b with the masking key, starting at key offset pos.
func unmask(b []byte, key [4]byte, pos int) {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
}

// frameDone ends the current frame; a final one completes its message.
func (h *half) frameDone(p *parser) {
	m := h.cur
	h.cur = nil
	if h.fin {
		p.finish(h, m)
	}
}

// broken gives up on a direction whose frames make no sense.
func (h *half) broken(p *parser, ts time.Time, n int) {
	h.lost = true
	p.stats.Resyncs++
	p.stats.Skipped += int64(n)
	if h.msg.active {
		h.msg.err = errBadFrame
		h.msg.last = ts
		p.finish(h, &h.msg)
	}
}
