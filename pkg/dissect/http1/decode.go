package http1

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"sync"
)

// Decompressors are large (a 32 KiB window and Huffman tables) and bodies
// are decoded rarely compared to the bytes parsed, so they are pooled rather
// than kept per connection.
var (
	gzipPool  sync.Pool // *gzip.Reader
	zlibPool  sync.Pool // io.ReadCloser that is a zlib.Resetter
	flatePool sync.Pool // io.ReadCloser that is a flate.Resetter
)

// decoder removes content codings from kept body bytes, within a bound.
type decoder struct {
	out []byte // reused output buffer, at most the body limit
	src bytes.Reader
}

// decode removes coding from in, producing at most limit bytes. It reports
// whether the output is complete (the whole input decoded, nothing cut), and
// ok=false when in is not in that coding at all. The output is valid until
// the next call.
func (d *decoder) decode(coding string, in []byte, limit int) (out []byte, complete, ok bool) {
	d.src.Reset(in)
	r, put := d.reader(coding)
	if r == nil {
		return nil, false, false
	}
	defer put()
	out, err := d.readAll(r, limit)
	if len(out) == 0 && err != nil && !errors.Is(err, io.EOF) {
		return nil, false, false
	}
	return out, err == nil, true
}

// readAll reads r into d.out, up to limit bytes. err is nil when r ended
// cleanly within limit, errTooLong when it had more.
func (d *decoder) readAll(r io.Reader, limit int) ([]byte, error) {
	out := d.out[:0]
	defer func() { d.out = out[:0] }()
	for {
		if len(out) == limit {
			var one [1]byte
			if n, _ := io.ReadFull(r, one[:]); n > 0 {
				return out, errTooLong
			}
			return out, nil
		}
		if len(out) == cap(out) {
			grown := make([]byte, len(out), min(limit, max(2*cap(out), 4<<10)))
			copy(grown, out)
			out = grown
		}
		n, err := r.Read(out[len(out):min(cap(out), limit)])
		out = out[:len(out)+n]
		switch {
		case err == io.EOF:
			return out, nil
		case err != nil:
			return out, err
		}
	}
}

var errTooLong = errors.New("decoded body exceeds the limit")

// reader returns a pooled decompressor over d.src and the func that returns
// it to its pool; nil when the stream does not start like coding.
func (d *decoder) reader(coding string) (io.Reader, func()) {
	switch coding {
	case "gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		if zr.Reset(&d.src) != nil {
			gzipPool.Put(zr)
			return nil, nil
		}
		zr.Multistream(true)
		return zr, func() { gzipPool.Put(zr) }
	case "deflate":
		// The deflate coding is zlib-wrapped, but some servers send raw
		// deflate; the zlib header tells them apart.
		if r := d.zlib(); r != nil {
			return r, func() { zlibPool.Put(r) }
		}
		d.src.Seek(0, io.SeekStart)
		fr, _ := flatePool.Get().(io.ReadCloser)
		if fr == nil {
			fr = flate.NewReader(&d.src)
		} else {
			fr.(flate.Resetter).Reset(&d.src, nil)
		}
		return fr, func() { flatePool.Put(fr) }
	}
	return nil, nil
}

func (d *decoder) zlib() io.ReadCloser {
	zr, _ := zlibPool.Get().(io.ReadCloser)
	var err error
	if zr == nil {
		zr, err = zlib.NewReader(&d.src)
	} else {
		err = zr.(zlib.Resetter).Reset(&d.src, nil)
	}
	if err != nil {
		if zr != nil {
			zlibPool.Put(zr)
		}
		return nil
	}
	return zr
}
