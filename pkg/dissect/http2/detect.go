package http2

import (
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"golang.org/x/net/http2/hpack"
)

// Detection and resynchronisation bounds.
const (
	// detectScan is how many starting offsets Detect tries when the bytes do
	// not start on a frame boundary (a capture that began mid-frame).
	detectScan = 4 << 10
	// maxExtensionFrame bounds the length of an unknown (extension) frame
	// type accepted inside a chain of plausible frames.
	maxExtensionFrame = 16 << 10
)

// Detect recognises HTTP/2 from the first bytes of one direction.
//
// The client connection preface is a certain Yes from the client. Without it
// (the capture began mid-connection), the bytes are HTTP/2 when at least two
// plausible frame headers chain from some offset within the first 4 KiB: a
// known type, lengths and stream ids that obey the type's rules (SETTINGS on
// stream 0 with a length that is a multiple of 6, PING of 8 bytes, ...), and
// flags limited to the defined ones. The sender is the client when the first
// telling frame is a request: a HEADERS block that starts with a request
// pseudo-header (:method, :path, :scheme, :authority). It is the server when
// that frame is a response (:status), a PUSH_PROMISE, or a HEADERS or DATA
// frame on an even (server-initiated) stream. When no frame tells, Detect
// says fromClient=false; the parser then orients itself by the first header
// block it decodes (a request seen from the "server" swaps the sides).
func Detect(data []byte) (v dissect.Verdict, fromClient bool) {
	if len(data) < len(clientPreface) {
		if string(data) == clientPreface[:len(data)] {
			return dissect.Maybe, true
		}
	} else if string(data[:len(clientPreface)]) == clientPreface {
		return dissect.Yes, true
	}
	if tlsRecord(data) {
		// A TLS record's header read as a frame's is a length over a
		// megabyte; the hello inside chains plausible frames by chance.
		return dissect.No, false
	}
	if off, ok := findSync(data, detectScan); ok {
		b := data[off:]
		r := roleUnknown
		if off > 0 {
			// The bytes began inside a frame: the first header found may
			// be payload that happens to chain into the real frames. It
			// votes only when no later frame does.
			r = fromClientHint(b[min(len(b), frameHeaderLen+int(parseFrameHeader(b).length)):])
		}
		if r == roleUnknown {
			r = fromClientHint(b)
		}
		return dissect.Yes, r == roleRequest
	}
	if r := loneHeaders(data); r != roleUnknown {
		return dissect.Yes, r == roleRequest
	}
	if mayStartFrames(data) {
		return dissect.Maybe, false
	}
	return dissect.No, false
}

// tlsRecord reports whether data starts with a TLS record header: a
// content type from change_cipher_spec to heartbeat, then version 3.0 to
// 3.4 (SSL 3.0 to TLS 1.3).
func tlsRecord(data []byte) bool {
	return len(data) >= 3 && data[0] >= 20 && data[0] <= 24 && data[1] == 3 && data[2] <= 4
}

// loneHeaders judges data that is exactly one whole HEADERS frame, as a
// request or response alone in its segment is: its header block must open
// with a pseudo-header from the static table (:method GET, :status 200, ...).
// Without this, a capture that began between exchanges, where each side
// sends one frame before the other answers, stayed undecided until the
// connection handler gave up on it.
func loneHeaders(data []byte) role {
	if len(data) < frameHeaderLen {
		return roleUnknown
	}
	h := parseFrameHeader(data)
	if h.typ != frameHeaders || !h.has(flagEndHeaders) || !h.plausible() ||
		frameHeaderLen+int(h.length) != len(data) {
		return roleUnknown
	}
	return headersRole(h, data[frameHeaderLen:])
}

// findSync returns the first offset, among the first scan, from which at
// least two plausible frame headers chain with none implausible in between.
func findSync(b []byte, scan int) (int, bool) {
	for i := 0; i+2*frameHeaderLen <= len(b) && i < scan; i++ {
		if b[i+3] > lastKnownFrame || !parseFrameHeader(b[i:]).plausible() {
			continue
		}
		if n, broken, _ := chain(b[i:]); n >= 2 && !broken {
			return bestChain(b, i), true
		}
	}
	return 0, false
}

// chain follows frame headers from the start of b until b ends. It returns
// how many plausible frames of known types it passed, broken when it
// stopped on a header that is not plausible, and where the last frame ends
// (possibly past the end of b). Extension frame types of modest length are
// stepped over without being counted.
func chain(b []byte) (n int, broken bool, end int) {
	for end+frameHeaderLen <= len(b) {
		h := parseFrameHeader(b[end:])
		switch {
		case h.plausible():
			n++
		case h.typ > lastKnownFrame && !h.rbit && h.length <= maxExtensionFrame:
		default:
			return n, true, end
		}
		end += frameHeaderLen + int(h.length)
	}
	return n, false, end
}

// bestChain returns, among the offsets of b from i on, the one that starts
// the longest unbroken chain of plausible frames (the later one on a tie).
//
// When a capture starts inside a frame, a header made up of payload bytes
// may chain into the real frames: its length swallows some real headers
// and lands on a later one. The real boundary then explains the same bytes
// with more frames, each a header that passed the plausibility test, which
// random bytes rarely do; so the longest chain wins. Counts are computed
// once per offset, from the end of b backwards.
func bestChain(b []byte, i int) int {
	count := make([]int16, len(b)-i+1) // frames chained from offset i+k; -1 when broken
	for k := len(b) - i - 1; k >= 0; k-- {
		if i+k+frameHeaderLen > len(b) {
			continue // too short for a header: the chain ends here, unbroken
		}
		h := parseFrameHeader(b[i+k:])
		own := int16(1)
		switch {
		case h.plausible():
		case h.typ > lastKnownFrame && !h.rbit && h.length <= maxExtensionFrame:
			own = 0
		default:
			count[k] = -1
			continue
		}
		next := uint64(k) + frameHeaderLen + uint64(h.length)
		switch {
		case next >= uint64(len(count)):
			count[k] = own
		case count[next] < 0:
			count[k] = -1
		default:
			count[k] = min(count[next]+own, 1<<14)
		}
	}
	best := 0
	for k := range count[:len(count)-1] {
		if count[k] >= count[best] && count[k] > 0 && parseFrameHeaderAt(b, i+k).plausible() {
			best = k
		}
	}
	return i + best
}

// parseFrameHeaderAt parses the header at b[off:], or returns an invalid
// one when fewer than 9 bytes are left.
func parseFrameHeaderAt(b []byte, off int) frameHeader {
	if off+frameHeaderLen > len(b) {
		return frameHeader{typ: 0xff, rbit: true}
	}
	return parseFrameHeader(b[off:])
}

// mayStartFrames reports whether data, too short to decide, could still
// turn out to be frames: its first header (complete or not) is plausible.
func mayStartFrames(b []byte) bool {
	if len(b) < frameHeaderLen {
		// Real frames are shorter than 64 KiB, and the type comes fourth.
		return len(b) == 0 || b[0] == 0 && (len(b) < 4 || b[3] <= lastKnownFrame)
	}
	n, broken, _ := chain(b)
	return n >= 1 && !broken
}

// role is what a header block, or a frame, says about its sender.
type role uint8

const (
	roleUnknown  role = iota
	roleRequest       // sent by the client
	roleResponse      // sent by the server
)

// fromClientHint returns the role of the sender of b, which starts on a
// frame boundary, from the first frame that tells.
func fromClientHint(b []byte) role {
	for i := 0; i+frameHeaderLen <= len(b); {
		h := parseFrameHeader(b[i:])
		if h.typ <= lastKnownFrame && !h.plausible() {
			break
		}
		end := i + frameHeaderLen + int(h.length)
		switch h.typ {
		case framePushPromise:
			return roleResponse
		case frameData:
			if h.stream%2 == 0 {
				return roleResponse
			}
		case frameHeaders:
			if h.stream%2 == 0 {
				return roleResponse
			}
			if end <= len(b) {
				if r := headersRole(h, b[i+frameHeaderLen:end]); r != roleUnknown {
					return r
				}
			}
		}
		i = end
	}
	return roleUnknown
}

// headersRole judges a HEADERS payload by its first header field.
func headersRole(h frameHeader, payload []byte) role {
	pre := h.prefixLen()
	pad := uint32(0)
	if h.has(flagPadded) {
		pad = uint32(payload[0])
	}
	if pre+pad > uint32(len(payload)) {
		return roleUnknown
	}
	return blockRole(payload[pre : uint32(len(payload))-pad])
}

// Static table indices of the pseudo-headers (RFC 7541 appendix A).
const (
	staticAuthority  = 1
	staticSchemeLast = 7  // :method, :path and :scheme entries are 2..7
	staticStatusLast = 14 // :status entries are 8..14
)

// blockRole judges an HPACK header block by its first field: pseudo-headers
// come first, and only requests carry :method, :path, :scheme, :authority.
// Fields that need the dynamic table cannot tell.
func blockRole(b []byte) role {
	for len(b) > 0 {
		r, ok := scanRep(b)
		if !ok {
			return roleUnknown
		}
		switch r.kind {
		case repSizeUpdate:
			b = b[r.n:]
			continue
		case repIndexed:
			return staticRole(r.index)
		}
		if r.index != 0 {
			return staticRole(r.index)
		}
		name, err := r.name(b)
		if err != nil || len(name) == 0 || name[0] != ':' {
			return roleUnknown
		}
		if name == ":status" {
			return roleResponse
		}
		return roleRequest
	}
	return roleUnknown
}

func staticRole(i uint64) role {
	switch {
	case i >= staticAuthority && i <= staticSchemeLast:
		return roleRequest
	case i > staticSchemeLast && i <= staticStatusLast:
		return roleResponse
	}
	return roleUnknown
}

// name decodes the literal name of a representation whose name is not
// indexed; b is the block the representation starts.
func (r rep) name(b []byte) (string, error) {
	s := b[r.nameOff:r.nameEnd]
	if r.nameHuff {
		return hpack.HuffmanDecodeToString(s)
	}
	return string(s), nil
}
