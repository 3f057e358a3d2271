package http2

import (
	"encoding/binary"
	"strconv"
)

// clientPreface starts every HTTP/2 connection from the client (RFC 9113
// section 3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

const frameHeaderLen = 9

// Frame types (RFC 9113 section 6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
	lastKnownFrame    = frameContinuation
)

// Frame flags.
const (
	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

// definedFlags are the flags each known frame type may carry.
var definedFlags = [...]uint8{
	frameData:         flagEndStream | flagPadded,
	frameHeaders:      flagEndStream | flagEndHeaders | flagPadded | flagPriority,
	framePriority:     0,
	frameRSTStream:    0,
	frameSettings:     flagAck,
	framePushPromise:  flagEndHeaders | flagPadded,
	framePing:         flagAck,
	frameGoAway:       0,
	frameWindowUpdate: 0,
	frameContinuation: flagEndHeaders,
}

// Settings parameters this dissector acts on.
const settingsHeaderTableSize = 0x1

// frameHeader is the fixed 9-byte header of a frame.
type frameHeader struct {
	length uint32
	typ    uint8
	flags  uint8
	stream uint32
	rbit   bool // the reserved bit of the stream id; receivers ignore it
}

func parseFrameHeader(b []byte) frameHeader {
	sid := binary.BigEndian.Uint32(b[5:9])
	return frameHeader{
		length: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:    b[3],
		flags:  b[4],
		stream: sid & 0x7fffffff,
		rbit:   sid&0x80000000 != 0,
	}
}

func (h frameHeader) has(f uint8) bool { return h.flags&f != 0 }

// prefixLen is the length of the fields before the payload proper: the pad
// length, the priority fields of HEADERS, the promised stream of
// PUSH_PROMISE.
func (h frameHeader) prefixLen() uint32 {
	var n uint32
	switch h.typ {
	case frameData, frameHeaders, framePushPromise:
		if h.has(flagPadded) {
			n++
		}
	}
	switch {
	case h.typ == frameHeaders && h.has(flagPriority):
		n += 5
	case h.typ == framePushPromise:
		n += 4
	}
	return n
}

// valid reports whether h obeys the rules of its type that a receiver checks
// from the header alone (stream id zero or not, fixed lengths). Unknown types
// are valid: receivers skip them.
func (h frameHeader) valid() bool {
	switch h.typ {
	case frameData, frameHeaders, framePushPromise, frameContinuation:
		return h.stream != 0 && h.length >= h.prefixLen()
	case framePriority:
		return h.stream != 0 && h.length == 5
	case frameRSTStream:
		return h.stream != 0 && h.length == 4
	case frameSettings:
		return h.stream == 0 && (h.has(flagAck) && h.length == 0 || !h.has(flagAck) && h.length%6 == 0)
	case framePing:
		return h.stream == 0 && h.length == 8
	case frameGoAway:
		return h.stream == 0 && h.length >= 8
	case frameWindowUpdate:
		return h.length == 4
	}
	return true
}

// plausible is the stricter test used without framing context (detection,
// resynchronisation): a known type, valid, the reserved bit and undefined
// flags clear as senders leave them, and no empty frame that real peers do
// not send. Unknown types are not plausible here.
func (h frameHeader) plausible() bool {
	if h.typ > lastKnownFrame || h.rbit || h.flags&^definedFlags[h.typ] != 0 || !h.valid() {
		return false
	}
	switch h.typ {
	case frameData:
		return h.length > h.prefixLen() || h.has(flagEndStream)
	case frameHeaders, framePushPromise, frameContinuation:
		return h.length > h.prefixLen()
	}
	return true
}

// Error codes (RFC 9113 section 7).
var errCodeNames = [...]string{
	"NO_ERROR",
	"PROTOCOL_ERROR",
	"INTERNAL_ERROR",
	"FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT",
	"STREAM_CLOSED",
	"FRAME_SIZE_ERROR",
	"REFUSED_STREAM",
	"CANCEL",
	"COMPRESSION_ERROR",
	"CONNECT_ERROR",
	"ENHANCE_YOUR_CALM",
	"INADEQUATE_SECURITY",
	"HTTP_1_1_REQUIRED",
}

// errCodeName names an HTTP/2 error code, or renders an unknown one in hex.
func errCodeName(code uint32) string {
	if int(code) < len(errCodeNames) {
		return errCodeNames[code]
	}
	return "0x" + strconv.FormatUint(uint64(code), 16)
}
