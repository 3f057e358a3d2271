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
	if off, ok := findSync(data, detectScan); ok {
		return dissect.Yes, fromClientHint(data[off:]) == roleRequest
	}
	if mayStartFrames(data) {
		return dissect.Maybe, false
	}
	return dissect.No, false
}

// findSync returns the first offset, among the first scan, from which at
// least two plausible frame headers chain with none implausible in between.
func findSync(b []byte, scan int) (int, bool) {
	for i := 0; i+2*frameHeaderLen <= len(b) && i < scan; i++ {
		if !parseFrameHeader(b[i:]).plausible() {
			continue
		}
		if n, broken, _ := chain(b[i:]); n >= 2 && !broken {
			return refine(b, i), true
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

// refine prefers, to the boundary at i, a later one inside the first frame
// at i whose chain joins i's at that frame's end: the bytes are then better
// explained by several frames than by one. When a capture starts inside a
// frame, a header made up of payload bytes tends to swallow the real
// headers that follow, and its chain to join theirs.
func refine(b []byte, i int) int {
	for {
		end := i + frameHeaderLen + int(parseFrameHeader(b[i:]).length)
		j := i + 1
		for ; j < end && j+frameHeaderLen <= len(b); j++ {
			if parseFrameHeader(b[j:]).plausible() && joins(b, j, end) {
				break
			}
		}
		if j >= end || j+frameHeaderLen > len(b) {
			return i
		}
		i = j
	}
}

// joins reports whether plausible frames chain from j to exactly end.
func joins(b []byte, j, end int) bool {
	for j < end {
		if j+frameHeaderLen > len(b) {
			return false
		}
		h := parseFrameHeader(b[j:])
		if !h.plausible() {
			return false
		}
		j += frameHeaderLen + int(h.length)
	}
	return j == end
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
