package capture

import (
	"errors"
	"io"
	"sync"
)

// chunkReader is a bufio.Reader whose buffer is never slid: when a record
// does not fit in what is left of the current chunk, its start is copied
// into a fresh chunk and reading goes on there. Bytes once returned stay
// where they are, so a consumer may keep them past the next read by
// retaining the chunk (a Region), instead of copying each packet; chunks
// come back to a pool when the last reference goes. Like bufio, Peek
// returns as soon as enough bytes have arrived, so a live pipe yields each
// record when it is complete.
type chunkReader struct {
	r    io.Reader
	cur  *Region // the chunk being read into; the reader holds a reference
	prev *Region // the chunk before, until the record taken from it is done
	rpos int     // next unread byte in cur
	w    int     // end of the bytes read into cur
	err  error   // sticky read error

	maxPeek int // the longest Peek that fits in a chunk

	m      *mapper // not nil: chunks are windows mapped from a regular file
	mapped bool    // m is not nil here or in the reader below (gzip)
}

// chunkPool recycles chunk memory: every reader's chunks are the same
// size. A pool rather than a free list per reader: the collector takes
// back what a burst left, which keeps resident memory down.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}

func newChunk() *Region { return newRegion(*chunkPool.Get().(*[]byte), freeChunk) }

// freeChunk takes back a chunk nothing refers to any more, on whatever
// goroutine released it last.
func freeChunk(b []byte) {
	b = b[:cap(b)]
	chunkPool.Put(&b)
}

func newChunkReader(r io.Reader) *chunkReader {
	return &chunkReader{r: r, cur: newChunk(), maxPeek: readBufferSize}
}

// Buffered returns how many bytes can be read without reading r.
func (c *chunkReader) Buffered() int { return c.w - c.rpos }

// Peek returns the next n bytes without consuming them; with fewer, those
// there are and the error that stopped reading. n may not exceed the chunk
// size.
func (c *chunkReader) Peek(n int) ([]byte, error) {
	if c.cur == nil {
		return nil, errClosed
	}
	if n > c.maxPeek {
		return c.cur.mem[c.rpos:c.w:c.w], errors.New("capture record larger than the read buffer")
	}
	for c.w-c.rpos < n && c.err == nil {
		if c.rpos+n > len(c.cur.mem) {
			c.next(c.w - c.rpos)
		}
		c.fill()
	}
	if c.w-c.rpos < n {
		return c.cur.mem[c.rpos:c.w:c.w], c.err
	}
	return c.cur.mem[c.rpos : c.rpos+n : c.rpos+n], nil
}

// next moves to a fresh chunk, carrying the keep unread bytes over.
func (c *chunkReader) next(keep int) {
	if c.prev != nil {
		c.prev.Release()
	}
	if c.m != nil {
		c.nextWindow(keep)
		return
	}
	fresh := newChunk()
	copy(fresh.mem, c.cur.mem[c.rpos:c.rpos+keep])
	c.prev, c.cur = c.cur, fresh
	c.rpos, c.w = 0, keep
}

// fill reads once into the free end of the chunk. A reader that returns
// nothing and no error many times over is reported, as bufio does.
func (c *chunkReader) fill() {
	if c.m != nil {
		return // a window is read in whole when it is mapped
	}
	for range 100 {
		n, err := c.r.Read(c.cur.mem[c.w:])
		c.w += n
		if err != nil {
			c.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	c.err = io.ErrNoProgress
}

// Discard skips n bytes; with fewer, those there are and the error that
// stopped reading.
func (c *chunkReader) Discard(n int) (int, error) {
	done := 0
	for {
		d := min(n-done, c.w-c.rpos)
		c.rpos += d
		done += d
		if done == n {
			return n, nil
		}
		if c.err != nil {
			return done, c.err
		}
		if c.w == len(c.cur.mem) {
			c.next(0)
		}
		c.fill()
	}
}

// Read reads into p what is buffered, or else reads once (for gzip).
func (c *chunkReader) Read(p []byte) (int, error) {
	if c.w == c.rpos {
		if c.err != nil {
			return 0, c.readErr()
		}
		if c.w == len(c.cur.mem) {
			c.next(0)
		}
		c.fill()
	}
	n := copy(p, c.cur.mem[c.rpos:c.w])
	c.rpos += n
	if n == 0 {
		return 0, c.readErr()
	}
	return n, nil
}

func (c *chunkReader) readErr() error {
	err := c.err
	c.err = nil // as bufio: an error is returned once to Read
	return err
}

// Held returns the chunk the last peeked bytes lie in.
func (c *chunkReader) Held() *Region { return c.cur }

// settle drops the chunk before the current one: the record taken from it
// is done.
func (c *chunkReader) settle() {
	if c.prev != nil {
		c.prev.Release()
		c.prev = nil
	}
}

// done releases the reader's chunks: no record is handed out any more.
func (c *chunkReader) done() {
	c.settle()
	if c.cur != nil {
		c.cur.Release()
		c.cur = nil
	}
	c.m.finish()
}
