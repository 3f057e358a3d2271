//go:build linux

package capture

import (
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
)

// mapper maps a regular file window by window instead of reading it:
// read(2) copies every byte of the capture into the read buffer, a tenth
// of the CPU of dissecting a file. A window is a chunk like any other (a
// Region), and the last release unmaps it.
//
// A file that shrinks while mapped turns reads of its lost pages into
// faults; code touching packets of a mapped source recovers them with
// FaultError (see debug.SetPanicOnFault).
type mapper struct {
	f    *os.File
	size int64 // the file's size, as last looked at
	off  int64 // file offset of the current window's first byte
}

// windowSize is the span of one mapping. Like a read chunk, it must hold
// the largest record, plus the page of slack before a record it starts at.
const windowSize = readBufferSize

// newMappedReader returns a chunkReader that maps f, or nil when f is not
// a regular file, is empty, or cannot be mapped (it is then read).
func newMappedReader(f *os.File) *chunkReader {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil
	}
	// A window starts up to a page before the record it is mapped for.
	c := &chunkReader{m: &mapper{f: f, size: fi.Size()}, mapped: true, maxPeek: windowSize - os.Getpagesize()}
	if c.mapAt(0) != nil {
		return nil
	}
	return c
}

// nextWindow maps the window that starts keep bytes before the end of the
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

// mapAt makes the window holding file offset at current.
func (c *chunkReader) mapAt(at int64) error {
	start := at &^ int64(os.Getpagesize()-1)
	n := int(min(windowSize, c.m.size-start))
	// MAP_POPULATE: one call sets up the whole window, instead of a fault
	// per few pages as they are first touched.
	mem, err := syscall.Mmap(int(c.m.f.Fd()), start, n, syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_POPULATE)
	if err != nil {
		return err
	}
	c.cur = newMapping(mem)
	c.m.off = start
	c.rpos, c.w = int(at-start), n
	return nil
}

// newMapping returns the Region of a mapping. A source closed before its
// end does not release its last windows: the cleanup unmaps them once
// nothing refers to them.
func newMapping(mem []byte) *Region {
	m := &mapping{mem: mem}
	r := newRegion(mem, func([]byte) { m.unmap() })
	runtime.AddCleanup(r, (*mapping).unmap, m)
	return r
}

type mapping struct {
	mem  []byte
	gone atomic.Bool
}

func (m *mapping) unmap() {
	if !m.gone.Swap(true) {
		syscall.Munmap(m.mem)
	}
}
