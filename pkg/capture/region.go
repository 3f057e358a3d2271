package capture

import (
	"sync/atomic"
	"unsafe"
)

// Region is memory that the packets of a Source point into and that can
// outlive Next: a chunk of the read buffer. A consumer that keeps a
// packet's bytes past the next call to Next (the pipeline hands them to
// other goroutines) retains the region, and releases it once done; the
// memory is reused when the last reference goes.
type Region struct {
	mem  []byte
	refs atomic.Int32
	free func([]byte)
}

func newRegion(mem []byte, free func([]byte)) *Region {
	r := &Region{mem: mem, free: free}
	r.refs.Store(1) // the source's, while the region is current
	return r
}

// Retain adds a reference.
func (r *Region) Retain() { r.refs.Add(1) }

// Release drops a reference; the last one frees the memory, which nothing
// may touch after.
func (r *Region) Release() {
	if r.refs.Add(-1) == 0 {
		r.free(r.mem)
		r.mem = nil
	}
}

// Contains reports whether b lies within the region. Frames reassembled
// from IP fragments lie in the decoder's buffer instead.
func (r *Region) Contains(b []byte) bool {
	if len(b) == 0 || len(r.mem) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(r.mem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= start && p+uintptr(len(b)) <= start+uintptr(len(r.mem))
}

// Holder is implemented by sources whose packets may lie in a Region.
type Holder interface {
	// Held returns the region holding the data of the packet last
	// returned by Next, or nil when it lies in memory that the next call
	// to Next reuses. The source's own reference lasts only until then:
	// retain the region to keep the bytes.
	Held() *Region
}
