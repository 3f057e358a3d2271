//go:build linux

package capture

import (
	"errors"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// mapper maps a regular file instead of reading it: read(2) copies every
// byte of the capture into the read buffer, a tenth of the CPU of
// dissecting a file. The file is mapped once (a segment), and cut into
// windows that are chunks like any other (Regions).
//
// A file that shrinks while mapped turns reads of its lost pages into
// faults; code touching packets of a mapped source recovers them with
// FaultError (see debug.SetPanicOnFault).
type mapper struct {
	f    *os.File
	size int64    // the file's size, as last looked at
	off  int64    // file offset of the current window's first byte
	seg  *segment // the mapping the current window is cut from
}

// windowSize is the span of one window. Like a read chunk, it must hold
// the largest record, plus the page of slack before a record it starts at.
const windowSize = readBufferSize

// dropBatch is how much of a segment is given back at once, behind the
// oldest window still held. Giving back memory flushes the TLB of every
// CPU running the process, an interprocessor interrupt that cost 6% of
// the CPU when each 1 MB window was unmapped on its own.
const dropBatch = 8 << 20

var pageSize = os.Getpagesize()

// newMappedReader returns a chunkReader that maps f, or nil when f is not
// a regular file, is empty, or cannot be mapped (it is then read).
func newMappedReader(f *os.File) *chunkReader {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil
	}
	// A window starts up to a page before the record it is cut for.
	c := &chunkReader{m: &mapper{f: f, size: fi.Size()}, mapped: true, maxPeek: windowSize - pageSize}
	if c.mapAt(0) != nil {
		return nil
	}
	// A source dropped without Close still gives its mapping back.
	runtime.AddCleanup(c, (*mapper).finish, c.m)
	return c
}

// nextWindow cuts the window that starts keep bytes before the end of the
// current one. At the end of the file it looks again at its size: a file
// still being written goes on being read, as with read(2).
func (c *chunkReader) nextWindow(keep int) {
	end := c.m.off + int64(c.w)
	if end >= c.m.size {
		fi, err := c.m.f.Stat()
		if err != nil {
			c.err = err
			return
		}
		if fi.Size() <= end {
			c.err = io.EOF
			return
		}
		c.m.size = fi.Size()
	}
	prev := c.cur
	if err := c.mapAt(end - int64(keep)); err != nil {
		c.err = err
		return
	}
	c.prev = prev
}

// mapAt makes the window holding file offset at current, mapping the file
// again when at lies past the current segment (the file grew).
func (c *chunkReader) mapAt(at int64) error {
	start := at &^ int64(pageSize-1)
	seg := c.m.seg
	if seg == nil || start+min(windowSize, c.m.size-start) > seg.base+int64(len(seg.mem)) {
		fresh, err := mapSegment(c.m.f, start, c.m.size)
		if err != nil {
			return err
		}
		if seg != nil {
			seg.seal()
		}
		seg, c.m.seg = fresh, fresh
	}
	n := int(min(windowSize, c.m.size-start))
	c.cur = seg.cut(int(start-seg.base), n)
	c.m.off = start
	c.rpos, c.w = int(at-start), n
	return nil
}

// finish seals the segment: the reader cuts no window any more.
func (m *mapper) finish() {
	if m != nil && m.seg != nil {
		m.seg.seal()
	}
}

// segment is one mapping of the file, from a page-aligned offset to the
// file's end. Its windows are handed out in file order and released in
// about that order; the memory behind the oldest window still held is
// given back in batches, so resident memory stays bounded whatever the
// file's size.
type segment struct {
	mem  []byte
	base int64 // file offset of mem[0]

	// The reader's alone.
	paged      int  // mem before this is paged in
	noPopulate bool // the kernel cannot page in ahead (before Linux 5.14)

	mu       sync.Mutex // guards the rest: windows are released on any goroutine
	held     []*window  // cut and not yet released, oldest first
	dropped  int        // mem before this is given back
	sealed   bool       // no window will be cut any more
	unmapped bool
}

type window struct {
	seg   *segment
	start int // offset in seg.mem
	gone  atomic.Bool
}

func mapSegment(f *os.File, base, size int64) (*segment, error) {
	if size-base > math.MaxInt {
		return nil, errors.New("capture file too large to map") // 32-bit: it is read instead
	}
	mem, err := unix.Mmap(int(f.Fd()), base, int(size-base), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	return &segment{mem: mem, base: base}, nil
}

// cut returns the window of n bytes at off as a Region. Its pages are read
// in with one call, instead of a fault per few pages as they are touched.
// A source closed before its end does not release its last windows: the
// cleanup releases them once nothing refers to them.
func (s *segment) cut(off, n int) *Region {
	if end := off + n; end > s.paged && !s.noPopulate {
		from := max(off, s.paged) &^ (pageSize - 1)
		err := unix.Madvise(s.mem[from:end], unix.MADV_POPULATE_READ)
		s.noPopulate = err == unix.EINVAL
		s.paged = end
	}
	w := &window{seg: s, start: off}
	s.mu.Lock()
	s.held = append(s.held, w)
	s.mu.Unlock()
	r := newRegion(s.mem[off:off+n:off+n], func([]byte) { w.release() })
	runtime.AddCleanup(r, (*window).release, w)
	return r
}

// release gives the window back, and with it the memory before the oldest
// window still held once that is a batch, or the whole mapping once the
// segment is sealed and nothing is held.
func (w *window) release() {
	if w.gone.Swap(true) {
		return
	}
	s := w.seg
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.held) > 0 && s.held[0].gone.Load() {
		s.held[0] = nil
		s.held = s.held[1:]
	}
	if len(s.held) == 0 {
		if s.sealed {
			s.unmap()
		}
		return // the reader holds its current window until it seals
	}
	low := s.held[0].start &^ (pageSize - 1)
	if low-s.dropped >= dropBatch {
		unix.Madvise(s.mem[s.dropped:low], unix.MADV_DONTNEED)
		s.dropped = low
	}
}

// seal marks that no window will be cut any more; with none held, the
// mapping goes at once.
func (s *segment) seal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed = true
	if len(s.held) == 0 {
		s.unmap()
	}
}

func (s *segment) unmap() {
	if !s.unmapped {
		s.unmapped = true
		unix.Munmap(s.mem)
	}
}
