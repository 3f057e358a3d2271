package kafka

import (
	"encoding/binary"
	"iter"
	"time"
	"unicode/utf8"
)

// Bounds of one direction's decoding.
const (
	maxMessage = 256 << 20 // a declared message size beyond this is not the protocol
	maxString  = 256       // bytes of a string kept; the rest is skipped
	maxNeed    = 16        // the widest fixed-size value
)

// source hands the bytes of one direction to a decoder that runs as a
// coroutine (iter.Pull): the decoder reads as if from a blocking stream,
// and suspends whenever the current segment is used up, until the next
// Data call resumes it. Large fields (record batches) are skipped as they
// pass, so nothing but one small value is ever copied, whatever a
// message's size.
//
// Reads within a message are bounded by its size: a read past it (a
// malformed message) sets bad, and every later read returns zero, so the
// decoder unwinds without further checks and the rest of the message is
// skipped.
type source struct {
	seg  []byte    // unread bytes of the current segment
	ts   time.Time // capture time of the current segment
	tmp  [maxNeed]byte
	left int64 // bytes of the current message not yet read
	bad  bool

	yield   func(struct{}) bool
	stopped bool // the coroutine was stopped: unwind
	skipped int64
}

// wait suspends the decoder until more bytes arrive; false when stopped.
func (s *source) wait() bool {
	if s.stopped || !s.yield(struct{}{}) {
		s.stopped = true
		return false
	}
	return true
}

// ready waits until at least one byte is at hand; false when stopped.
func (s *source) ready() bool {
	for len(s.seg) == 0 {
		if !s.wait() {
			return false
		}
	}
	return true
}

// raw returns the next n (≤ maxNeed) bytes, valid until the next read; nil
// when stopped.
func (s *source) raw(n int) []byte {
	if len(s.seg) >= n {
		b := s.seg[:n]
		s.seg = s.seg[n:]
		return b
	}
	got := 0
	for got < n {
		if !s.ready() {
			return nil
		}
		k := copy(s.tmp[got:n], s.seg)
		s.seg = s.seg[k:]
		got += k
	}
	return s.tmp[:n]
}

// take returns the next n bytes of the message, or nil (and bad) past its
// end.
func (s *source) take(n int) []byte {
	if s.bad || s.stopped {
		return nil
	}
	if int64(n) > s.left {
		s.bad = true
		return nil
	}
	b := s.raw(n)
	if b != nil {
		s.left -= int64(n)
	}
	return b
}

// skip discards n bytes of the message (all that is left of it when n is
// larger, which marks it bad).
func (s *source) skip(n int64) {
	if n > s.left {
		n, s.bad = s.left, true
	}
	s.left -= n
	s.skipped += n
	for n > 0 && s.ready() {
		k := int(min(n, int64(len(s.seg))))
		s.seg = s.seg[k:]
		n -= int64(k)
	}
}

func (s *source) i8() int8 {
	if b := s.take(1); b != nil {
		return int8(b[0])
	}
	return 0
}

func (s *source) i16() int16 {
	if b := s.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (s *source) i32() int32 {
	if b := s.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (s *source) i64() int64 {
	if b := s.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

// uvarint reads an unsigned varint of at most 5 bytes (32 bits).
func (s *source) uvarint() uint32 {
	var v uint32
	for i := 0; i < 5; i++ {
		b := s.take(1)
		if b == nil {
			return 0
		}
		v |= uint32(b[0]&0x7F) << (7 * i)
		if b[0] < 0x80 {
			return v
		}
	}
	s.bad = true
	return 0
}

// uuid reads a topic id, rendered as Kafka does: URL-safe base64 without
// padding.
func (s *source) uuid() [16]byte {
	var id [16]byte
	if b := s.take(16); b != nil {
		copy(id[:], b)
	}
	return id
}

// length reads the length of a string, bytes or array: int16 or int32 in
// classic versions, uvarint+1 in flexible ones; -1 means null.
func (s *source) length(flexible, short bool) int64 {
	switch {
	case flexible:
		return int64(s.uvarint()) - 1
	case short:
		return int64(s.i16())
	}
	return int64(s.i32())
}

// str reads a (nullable, compact when flexible) string, keeping at most
// maxString bytes of it.
func (s *source) str(flexible bool) string {
	n := s.length(flexible, true)
	if n <= 0 {
		return ""
	}
	if n > s.left {
		s.bad = true
		return ""
	}
	keep := min(n, maxString)
	buf := make([]byte, 0, keep)
	for int64(len(buf)) < keep {
		chunk := min(keep-int64(len(buf)), maxNeed)
		b := s.take(int(chunk))
		if b == nil {
			return ""
		}
		buf = append(buf, b...)
	}
	s.skip(n - keep)
	if n > keep {
		for len(buf) > 0 && !utf8.Valid(buf) {
			buf = buf[:len(buf)-1] // do not end inside a character
		}
		return string(buf) + "…"
	}
	return string(buf)
}

// skipStr skips a string.
func (s *source) skipStr(flexible bool) {
	if n := s.length(flexible, true); n > 0 {
		s.skip(n)
	}
}

// skipBytes skips a (nullable, compact when flexible) byte string.
func (s *source) skipBytes(flexible bool) {
	if n := s.length(flexible, false); n > 0 {
		s.skip(n)
	}
}

// array reads an array's element count: -1 for null; never more than the
// bytes left, since every element takes at least one.
func (s *source) array(flexible bool) int {
	n := s.length(flexible, false)
	if n > s.left {
		s.bad = true
		return 0
	}
	return int(n)
}

// tags skips the tagged fields that end a flexible structure.
func (s *source) tags(flexible bool) {
	if !flexible {
		return
	}
	n := s.uvarint()
	for i := uint32(0); i < n && s.ok(); i++ {
		s.uvarint() // tag
		s.skip(int64(s.uvarint()))
	}
}

// ok reports whether decoding may go on.
func (s *source) ok() bool { return !s.bad && !s.stopped }

// coroutine runs decode over the bytes fed with feed, one message after
// another, until it returns or stop is called.
type coroutine struct {
	src  source
	next func() (struct{}, bool)
	stop func()
	done bool
}

func newCoroutine(decode func(s *source)) *coroutine {
	c := &coroutine{}
	seq := iter.Seq[struct{}](func(yield func(struct{}) bool) {
		c.src.yield = yield
		decode(&c.src)
	})
	c.next, c.stop = iter.Pull(seq)
	return c
}

// feed resumes the decoder with data; it reports false when the decoder
// returned (framing was lost), leaving the unread bytes in src.seg.
func (c *coroutine) feed(data []byte, ts time.Time) bool {
	if c.done {
		return false
	}
	c.src.seg, c.src.ts = data, ts
	if _, ok := c.next(); !ok {
		c.done = true
		return false
	}
	return true
}

func (c *coroutine) close() {
	if !c.done {
		c.done = true
		c.stop()
	}
}
