package http2

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/grpc"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// gRPC bounds.
const (
	// maxMessagesKept is how many messages are rendered each way.
	maxMessagesKept = 4
	// maxMessageKeep bounds the bytes of one message kept for rendering
	// (after Options.MaxBody, which bounds it further).
	maxMessageKeep = 4 << 10
	// maxFieldsText bounds the rendering of one message.
	maxFieldsText = 1 << 10
	// maxWebTrailers bounds a grpc-web trailers frame kept for parsing.
	maxWebTrailers = 4 << 10
)

const (
	grpcFlagCompressed = 0x01
	grpcFlagTrailers   = 0x80 // grpc-web: the message carries the trailers
)

// msgReader splits one direction of a gRPC call into its length-prefixed
// messages (a flags byte and a 4-byte big-endian length), across DATA frame
// boundaries, and renders the first few.
type msgReader struct {
	hdr   [5]byte
	hdrN  int
	left  uint32 // bytes of the current message still to come
	flags byte
	size  uint32
	count int  // messages seen
	lost  bool // boundaries lost: reading stopped
	bad   bool // the bytes are not gRPC framing

	keeping bool   // the current message is one of the first few
	limit   int    // bytes of it to keep
	keep    []byte // its first bytes
	msgs    [maxMessagesKept]entry.GRPCMessage
	kept    int    // of msgs
	web     []byte // a grpc-web trailers frame
	inWeb   bool
}

// feed consumes message bytes. keepLimit bounds the bytes kept of a message
// to render; dir and coding (grpc-encoding) describe the direction; scratch
// is a buffer to render in, reused across messages.
func (m *msgReader) feed(p []byte, keepLimit int, dir, coding string, scratch *[]byte) {
	for len(p) > 0 && !m.lost {
		if m.hdrN < len(m.hdr) {
			n := copy(m.hdr[m.hdrN:], p)
			m.hdrN += n
			p = p[n:]
			if m.hdrN < len(m.hdr) {
				return
			}
			if m.start(keepLimit); m.lost {
				return
			}
			if m.keeping && uint32(len(p)) >= m.left {
				// The whole message is here: render it in place.
				n := m.left
				m.left = 0
				m.end(p[:min(int(n), m.limit)], dir, coding, scratch)
				p = p[n:]
			}
			continue
		}
		n := min(uint32(len(p)), m.left)
		chunk := p[:n]
		switch {
		case m.inWeb:
			m.web = append(m.web, chunk[:min(len(chunk), maxWebTrailers-len(m.web))]...)
		case m.keeping:
			if m.keep == nil {
				m.keep = make([]byte, 0, min(m.limit, int(m.size)))
			}
			m.keep = append(m.keep, chunk[:min(len(chunk), m.limit-len(m.keep))]...)
		}
		m.left -= n
		p = p[n:]
		if m.left == 0 {
			m.end(m.keep, dir, coding, scratch)
		}
	}
}

// start begins the message whose prefix is in m.hdr.
func (m *msgReader) start(keepLimit int) {
	m.flags = m.hdr[0]
	if m.flags&^(grpcFlagCompressed|grpcFlagTrailers) != 0 {
		// Not gRPC framing (the stream's headers could not tell).
		m.lost, m.bad = true, true
		return
	}
	m.size = binary.BigEndian.Uint32(m.hdr[1:])
	m.left = m.size
	m.inWeb = m.flags&grpcFlagTrailers != 0
	m.keep = m.keep[:0]
	if m.inWeb {
		m.web = m.web[:0]
		m.keeping = false
		return
	}
	m.count++
	m.keeping = m.count <= maxMessagesKept
	m.limit = keepLimit
}

// end completes the current message, of which data holds the first bytes
// (when it is one of the first few).
func (m *msgReader) end(data []byte, dir, coding string, scratch *[]byte) {
	m.hdrN = 0
	if m.inWeb || !m.keeping {
		return
	}
	msg := entry.GRPCMessage{
		Dir:        dir,
		Size:       int(m.size),
		Compressed: m.flags&grpcFlagCompressed != 0,
	}
	complete := len(data) == int(m.size)
	if msg.Compressed {
		raw := data
		data, complete = nil, false
		if c := normCoding(coding); c != "" && len(raw) > 0 {
			if dec, decComplete, ok := decodeBody(c, raw, m.limit); ok {
				data, complete = dec, decComplete && len(raw) == int(m.size)
			}
		}
	}
	out, truncated := grpc.AppendProto((*scratch)[:0], data, maxFieldsText)
	*scratch = out
	msg.Fields = string(out)
	msg.Truncated = truncated || !complete && msg.Size > 0
	m.msgs[m.kept] = msg
	m.kept++
}

// hole stops the reader: message boundaries are lost with the bytes.
func (m *msgReader) hole() { m.lost = true }

// framed reports whether the bytes read so far were whole gRPC messages.
func (m *msgReader) framed() bool { return !m.lost && m.hdrN == 0 && m.left == 0 }

// looksGRPC judges a stream whose headers did not say whether it is a gRPC
// call (they referenced HPACK entries the capture missed). It is when it
// carries a grpc-status, or when both bodies are whole gRPC messages, at
// least one sent, and the request is a POST to a /service/method path, or
// to a path that could not be decoded either.
func (s *stream) looksGRPC() bool {
	if grpcStatus(s.resp.Trailers, s.resp.Headers) >= 0 {
		return true
	}
	req, resp := &s.msgs[dissect.ClientToServer], &s.msgs[dissect.ServerToClient]
	if !req.framed() || !resp.framed() || req.count == 0 || s.req.Method != "POST" {
		return false
	}
	path := s.req.Target
	return path == "" || len(path) >= 4 && path[0] == '/' && path[1] != '/' &&
		strings.Count(path, "/") == 2 && path[len(path)-1] != '/'
}

// webTrailers parses the grpc-web trailers frame, if one was seen, as
// "name: value" lines.
func (m *msgReader) webTrailers() map[string]string {
	if len(m.web) == 0 {
		return nil
	}
	t := make(map[string]string)
	for _, line := range strings.Split(string(m.web), "\n") {
		name, value, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if ok {
			addHeader(t, strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value))
		}
	}
	return t
}

// isGRPC reports whether a content-type names gRPC: application/grpc, with
// an optional +codec or parameters, and binary grpc-web.
func isGRPC(ct string) bool {
	const p = "application/grpc"
	if len(ct) < len(p) || !strings.EqualFold(ct[:len(p)], p) {
		return false
	}
	rest := ct[len(p):]
	if rest == "" || rest[0] == '+' || rest[0] == ';' {
		return true
	}
	return strings.HasPrefix(rest, "-web") && !strings.HasPrefix(rest, "-web-text")
}

// splitMethod splits a gRPC path "/pkg.Svc/Method".
func splitMethod(path string) (service, method string) {
	path = strings.TrimPrefix(path, "/")
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return path, ""
}

// grpcStatus reads grpc-status: from the trailers, else from the headers of
// a Trailers-Only response. It returns -1 when there is none.
func grpcStatus(trailers, headers map[string]string) int {
	v, ok := trailers["grpc-status"]
	if !ok {
		v, ok = headers["grpc-status"]
	}
	if !ok {
		return -1
	}
	code, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || code < 0 {
		return -1
	}
	return code
}

// percentDecode decodes the percent-encoding of grpc-message. Malformed
// escapes are kept as they are.
func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if hi, lo := unhex(s[i+1]), unhex(s[i+2]); hi >= 0 && lo >= 0 {
				b = append(b, byte(hi<<4|lo))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
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
