package capture

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// errClosed is returned by Next after Close.
var errClosed = fmt.Errorf("capture source: %w", os.ErrClosed)

// Open opens a pcap or pcapng capture, optionally gzip-compressed, and
// reads it as a stream. Path "-" reads standard input, which may be fed
// live (tcpdump -U -w -): each packet is returned as soon as its record is
// complete. Errors name the path.
func Open(path string) (Source, error) {
	if path == "-" {
		src, err := newSource(os.Stdin, nil, false)
		if err != nil {
			return nil, fmt.Errorf("stdin: %w", err)
		}
		return src, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := newMappedReader(f)
	if br == nil {
		br = newChunkReader(f)
	}
	src, err := sniff(br, f, false)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return src, nil
}

// NewReader reads a pcap or pcapng capture from r, sniffing the format
// from its first bytes. Close does not close r.
func NewReader(r io.Reader) (Source, error) {
	return newSource(r, nil, false)
}

// newSource sniffs the magic and builds the matching reader; closer, if
// not nil, is closed by the Source's Close. gzipped forbids a second gzip
// layer, which would cost another read buffer per layer.
func newSource(r io.Reader, closer io.Closer, gzipped bool) (Source, error) {
	return sniff(newChunkReader(r), closer, gzipped)
}

// sniff reads the magic at the start of br and builds the matching reader.
func sniff(br *chunkReader, closer io.Closer, gzipped bool) (Source, error) {
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading capture header: %w", err)
	}
	if len(magic) == 4 && magic[0] == 0x1f && magic[1] == 0x8b && !gzipped {
		return newGzipSource(br, closer)
	}
	if len(magic) == 4 {
		if order, ok := pcapMagic(magic); ok {
			return newPcapReader(newStream(br), order, closer)
		}
		if littleEndian.u32(magic) == ngBlockSHB {
			return newPcapngReader(newStream(br), closer)
		}
	}
	return nil, notCapture(br)
}

// newGzipSource unwraps a gzip stream (capture.pcap.gz) and sniffs again.
func newGzipSource(br *chunkReader, closer io.Closer) (Source, error) {
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("reading gzip header: %w", err)
	}
	inner := newChunkReader(zr)
	inner.mapped = br.mapped
	src, err := sniff(inner, closer, true)
	if err != nil {
		return nil, fmt.Errorf("gzip-compressed: %w", err)
	}
	return src, nil
}

// notCapture describes what the input starts with, using only bytes that
// are already buffered so that a slow stream does not block the error.
func notCapture(br *chunkReader) error {
	n := min(br.Buffered(), 8)
	if n == 0 {
		return fmt.Errorf("%w (the input is empty)", ErrNotCapture)
	}
	head, _ := br.Peek(n)
	return fmt.Errorf("%w (starts with %q)", ErrNotCapture, head)
}

// closeSource makes later reads fail and closes the underlying file. It may
// run while another goroutine is blocked in Next (that is how a cancelled
// pipeline unblocks a quiet pipe), so it touches only the atomic flag and
// the closer, never the stream's buffer state.
func closeSource(s *stream, closer io.Closer) error {
	if s.closed.Swap(true) {
		return nil
	}
	if closer != nil {
		return closer.Close()
	}
	return nil
}
