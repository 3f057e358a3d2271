package http2

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// bodyBuf counts the bytes of one message body and keeps its first ones.
type bodyBuf struct {
	size  int64
	keep  []byte
	holed bool // bytes were lost inside the body; keeping stopped there
}

// add counts p and keeps what fits in limit.
func (b *bodyBuf) add(p []byte, limit int) {
	b.size += int64(len(p))
	if room := limit - len(b.keep); room > 0 && !b.holed {
		if b.keep == nil {
			// Most bodies are small: do not reserve the whole limit.
			b.keep = make([]byte, 0, min(limit, max(len(p), 512)))
		}
		b.keep = append(b.keep, p[:min(room, len(p))]...)
	}
}

// hole counts n bytes lost to the capture.
func (b *bodyBuf) hole(n int) {
	b.size += int64(n)
	b.holed = true
}

// body renders the kept bytes as an entry body: content coding removed
// within limit when it is gzip or deflate, base64 when not UTF-8.
func (b *bodyBuf) body(coding string, limit int) entry.Body {
	out := entry.Body{Size: b.size}
	data := b.keep
	complete := int64(len(data)) == b.size
	if coding = normCoding(coding); coding != "" && len(data) > 0 {
		if dec, decComplete, ok := decodeBody(coding, data, limit); ok {
			data, out.Decoded = dec, coding
			complete = complete && decComplete
		}
	}
	out.Truncated = !complete
	if len(data) == 0 {
		return out
	}
	if utf8.Valid(data) {
		out.Data = string(data)
	} else {
		out.Encoding = "base64"
		out.Data = base64.StdEncoding.EncodeToString(data)
	}
	return out
}

// normCoding returns the content coding this package decodes, or "".
func normCoding(c string) string {
	switch strings.ToLower(strings.TrimSpace(c)) {
	case "gzip", "x-gzip":
		return "gzip"
	case "deflate":
		return "deflate"
	}
	return ""
}

// Decompressors hold large windows; bodies are decoded once, at the end of
// an exchange, so they are pooled rather than kept per stream.
var gzipPool sync.Pool // *gzip.Reader

var errTooLong = errors.New("decoded body exceeds the limit")

// decodeBody removes coding from in, producing at most limit bytes. ok is
// false when in is not in that coding; complete is false when the output
// was cut at limit or the input ended early (a body kept only in part).
func decodeBody(coding string, in []byte, limit int) (out []byte, complete, ok bool) {
	src := bytes.NewReader(in)
	var r io.Reader
	switch coding {
	case "gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		if zr.Reset(src) != nil {
			gzipPool.Put(zr)
			return nil, false, false
		}
		defer gzipPool.Put(zr)
		r = zr
	case "deflate":
		// The deflate coding is zlib-wrapped, but some servers send raw
		// deflate; the zlib header tells them apart.
		if zr, err := zlib.NewReader(src); err == nil {
			r = zr
		} else {
			src.Reset(in)
			r = flate.NewReader(src)
		}
	default:
		return nil, false, false
	}
	out, err := readLimited(r, limit)
	if len(out) == 0 && err != nil {
		return nil, false, false
	}
	return out, err == nil, true
}

// readLimited reads r up to limit bytes. err is nil when r ended cleanly
// within limit.
func readLimited(r io.Reader, limit int) ([]byte, error) {
	out := make([]byte, 0, min(limit, 4<<10))
	for {
		if len(out) == limit {
			var one [1]byte
			if n, _ := io.ReadFull(r, one[:]); n > 0 {
				return out, errTooLong
			}
			return out, nil
		}
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):min(cap(out), limit)])
		out = out[:len(out)+n]
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
