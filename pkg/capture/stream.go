package capture

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

const (
	// readBufferSize is the one buffer every file reader works in. Records
	// are returned as slices of it, so it must hold the largest record.
	readBufferSize = 1 << 20
	// MaxPacketLen is the largest captured packet a reader accepts; it is
	// the largest snap length tcpdump and Wireshark use. Longer records are
	// reported as corrupt rather than allocated.
	MaxPacketLen = 256 << 10
	// maxBlockLen caps the pcapng blocks we parse in memory (a packet plus
	// generous room for options). Blocks we skip may be of any length.
	maxBlockLen = MaxPacketLen + 64<<10
)

// errCutOff is what every truncation error wraps, so that callers can test
// for either ErrTruncated or io.ErrUnexpectedEOF.
var errCutOff = fmt.Errorf("%w (%w)", ErrTruncated, io.ErrUnexpectedEOF)

// stream frames records out of a buffered reader without copying: a record
// is peeked, handed out as a slice of the buffer, and discarded only when
// the next one is asked for. Peek returns as soon as enough bytes have
// arrived, so a live pipe yields each record as soon as it is complete.
type stream struct {
	br      *chunkReader
	pending int   // length of the record handed out last, not yet discarded
	off     int64 // stream offset of the first byte not yet discarded
	err     error // sticky: once set, every later call returns it
	closed  atomic.Bool
}

func newStream(br *chunkReader) *stream { return &stream{br: br} }

// release discards the record handed out by the previous call.
func (s *stream) release() {
	if s.pending > 0 {
		// The bytes are buffered (they were peeked), so this cannot fail.
		n, _ := s.br.Discard(s.pending)
		s.off += int64(n)
		s.pending = 0
		s.br.settle()
	}
}

// held is Holder.Held for the readers.
func (s *stream) held() *Region {
	if s.pending == 0 {
		return nil
	}
	return s.br.Held()
}

// begin releases the previous record and peeks the first n bytes of the
// next one. A clean end of input between records is io.EOF.
func (s *stream) begin(n int, what string) ([]byte, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	s.release()
	b, err := s.br.Peek(n)
	if err == nil {
		return b, nil
	}
	if errors.Is(err, io.EOF) && len(b) == 0 {
		return nil, io.EOF
	}
	return nil, s.readErr(err, what, len(b), n)
}

// take peeks the whole n-byte record that begin started and marks it to be
// discarded on the next call.
func (s *stream) take(n int, what string) ([]byte, error) {
	b, err := s.br.Peek(n)
	if err != nil {
		return nil, s.readErr(err, what, len(b), n)
	}
	s.pending = n
	return b, nil
}

// skip discards an n-byte record without buffering it, however long.
func (s *stream) skip(n int64, what string) error {
	s.release()
	start := s.off
	for left := n; left > 0; {
		got, err := s.br.Discard(int(min(left, readBufferSize)))
		s.off += int64(got)
		left -= int64(got)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s at offset %d cut off after %d of %d bytes: %w", what, start, n-left, n, errCutOff)
			}
			return fmt.Errorf("reading %s at offset %d: %w", what, start, err)
		}
	}
	return nil
}

func (s *stream) readErr(err error, what string, got, want int) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s at offset %d cut off after %d of %d bytes: %w", what, s.off, got, want, errCutOff)
	}
	return fmt.Errorf("reading %s at offset %d: %w", what, s.off, err)
}

// fail makes err sticky (io.EOF included) and returns it. No record is
// handed out after it, so the read buffer is let go.
func (s *stream) fail(err error) error {
	s.pending = 0
	s.err = err
	s.br.done()
	return err
}

// byteOrder reads integers in a capture's byte order. A bool and two
// inlined branches beat the binary.ByteOrder interface on the hot path.
type byteOrder bool

const (
	littleEndian byteOrder = false
	bigEndian    byteOrder = true
)

func (o byteOrder) u16(b []byte) uint16 {
	_ = b[1]
	if o == bigEndian {
		return uint16(b[0])<<8 | uint16(b[1])
	}
	return uint16(b[1])<<8 | uint16(b[0])
}

func (o byteOrder) u32(b []byte) uint32 {
	_ = b[3]
	if o == bigEndian {
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return uint32(b[3])<<24 | uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
}

func (o byteOrder) u64(b []byte) uint64 {
	_ = b[7]
	if o == bigEndian {
		return uint64(o.u32(b))<<32 | uint64(o.u32(b[4:]))
	}
	return uint64(o.u32(b[4:]))<<32 | uint64(o.u32(b))
}
