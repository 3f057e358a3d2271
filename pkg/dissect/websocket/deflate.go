package websocket

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

const (
	// window is the LZ77 window a compressed message may refer back to.
	window = 32 << 10
	// maxInflate bounds the bytes one message is inflated to; past it the
	// payload is cut, and with context takeover later messages of that
	// direction are no longer decodable.
	maxInflate = 1 << 20
)

// deflateParams is the permessage-deflate agreement of the 101 response.
type deflateParams struct {
	enabled bool
	// noContext[dir] says the sender of dir resets its compressor per
	// message (client_no_context_takeover, server_no_context_takeover).
	noContext [2]bool
}

// parseDeflate reads a Sec-WebSocket-Extensions header of the 101
// response, such as "permessage-deflate; server_no_context_takeover".
func parseDeflate(v string) deflateParams {
	var d deflateParams
	for ext := range strings.SplitSeq(v, ",") {
		params := strings.Split(ext, ";")
		if !strings.EqualFold(strings.TrimSpace(params[0]), "permessage-deflate") {
			continue
		}
		d.enabled = true
		for _, param := range params[1:] {
			name, _, _ := strings.Cut(param, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "client_no_context_takeover":
				d.noContext[dissect.ClientToServer] = true
			case "server_no_context_takeover":
				d.noContext[dissect.ServerToClient] = true
			}
		}
		break
	}
	return d
}

// inflater inflates the compressed messages of one direction, keeping the
// last window of output as the dictionary of the next message when the
// sender keeps its context.
type inflater struct {
	fr     io.ReadCloser
	src    bytes.Reader
	hist   []byte // recent output, up to 2*window, when context is kept
	buf    []byte // read scratch
	broken bool   // a message was lost: the context is unknown
}

var errLimit = errors.New("inflate limit")

// inflate inflates one message's payload (its deflate blocks without the
// final empty block) into at most keep bytes; total is the whole inflated
// size, up to maxInflate.
func (f *inflater) inflate(in []byte, keepContext bool, keep int) (out []byte, total int64, err error) {
	if f.broken {
		return nil, 0, errLimit
	}
	// RFC 7692 section 7.2.2: the sender removed the sync flush's tail.
	f.src.Reset(append(in, 0x00, 0x00, 0xFF, 0xFF))
	var dict []byte
	if keepContext {
		dict = f.hist
	}
	if f.fr == nil {
		f.fr = flate.NewReaderDict(&f.src, dict)
		f.buf = make([]byte, 4<<10)
	} else if err := f.fr.(flate.Resetter).Reset(&f.src, dict); err != nil {
		return nil, 0, err
	}
	for {
		n, rerr := f.fr.Read(f.buf)
		total += int64(n)
		if room := keep - len(out); room > 0 {
			out = append(out, f.buf[:min(n, room)]...)
		}
		if keepContext {
			f.remember(f.buf[:n])
		}
		switch {
		case total > maxInflate:
			f.broken = keepContext
			return out, total, errLimit
		case rerr == io.EOF, rerr == io.ErrUnexpectedEOF && f.src.Len() == 0:
			return out, total, nil
		case rerr != nil:
			f.broken = keepContext
			return out, total, rerr
		}
	}
}

// remember appends b to the history, keeping at least the last window.
func (f *inflater) remember(b []byte) {
	if len(f.hist)+len(b) > 2*window {
		keep := f.hist[max(0, len(f.hist)-window):]
		f.hist = append(f.hist[:0], keep...)
	}
	if len(b) > window {
		b = b[len(b)-window:]
	}
	f.hist = append(f.hist, b...)
}

// payload fills body with m's payload (inflated when compressed), and
// returns an error when it could not be decoded.
func (p *parser) payload(h *half, m *message, body *entry.Body) string {
	body.Size = m.size
	data := m.keep
	truncated := m.size > int64(len(data))
	errText := ""
	if m.compressed {
		switch {
		case m.overflow:
			h.inflater.broken = h.inflater.broken || !p.deflate.noContext[h.dir]
			data, truncated, errText = nil, true, errInflateLimit
		default:
			out, total, err := h.inflater.inflate(m.keep, !p.deflate.noContext[h.dir], p.maxBody)
			switch {
			case errors.Is(err, errLimit) && total > 0:
				data, truncated = out, true
				body.Decoded = "deflate"
			case err != nil:
				data, truncated, errText = nil, true, errInflate
			default:
				data, truncated = out, total > int64(len(out))
				body.Decoded = "deflate"
			}
		}
	}
	if len(data) > p.maxBody {
		data, truncated = data[:p.maxBody], true
	}
	body.Truncated = truncated
	if len(data) == 0 {
		return errText
	}
	if truncated {
		data = trimPartialRune(data)
	}
	if utf8.Valid(data) {
		body.Data = string(data)
	} else {
		body.Encoding = "base64"
		body.Data = base64.StdEncoding.EncodeToString(data)
	}
	return errText
}

// trimPartialRune drops a UTF-8 sequence cut short at the end of b.
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
