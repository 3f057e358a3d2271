package store

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// segment is one pcapng file of the ring and its index.
type segment struct {
	seq         uint64
	path        string
	size        int64 // bytes written, buffered ones included
	packets     uint64
	first, last time.Time
	// pods counts packets per store interface id.
	pods map[int]uint64
	// flows holds the keys of the segment's flows.
	flows bloom

	// Open segments only.
	f   *os.File
	w   *NgWriter
	ids map[int]int // store interface id → this file's interface id

	// order lists the store interface ids in the file's order: exports
	// name interfaces from it rather than from the file, whose reader may
	// cut long names.
	order []int
}

func newSegment(seq uint64, path string, size int64) (*segment, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	w, err := NewNgWriter(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return &segment{
		seq:   seq,
		path:  path,
		size:  w.Len(),
		pods:  make(map[int]uint64),
		flows: newBloom(size),
		f:     f,
		w:     w,
		ids:   make(map[int]int),
	}, nil
}

// ifaceID returns the file's id of store interface id, declaring it on
// first use.
func (g *segment) ifaceID(id int, iface capture.Interface) (int, error) {
	if sid, ok := g.ids[id]; ok {
		return sid, nil
	}
	sid, err := g.w.AddInterface(iface)
	if err != nil {
		return 0, err
	}
	g.ids[id] = sid
	g.order = append(g.order, id)
	return sid, nil
}

// note indexes one written packet.
func (g *segment) note(p *capture.Packet, id int, flow uint64) {
	if g.packets == 0 || p.Timestamp.Before(g.first) {
		g.first = p.Timestamp
	}
	if p.Timestamp.After(g.last) {
		g.last = p.Timestamp
	}
	g.packets++
	g.pods[id]++
	if flow != 0 {
		g.flows.add(flow)
	}
}

// close flushes and closes the file; the index stays.
func (g *segment) close() error {
	if g.f == nil {
		return nil
	}
	err := g.w.Flush()
	g.size = g.w.Len()
	if cerr := g.f.Close(); err == nil {
		err = cerr
	}
	g.f, g.w, g.ids = nil, nil, nil
	if err != nil {
		return fmt.Errorf("store: closing %s: %w", g.path, err)
	}
	return nil
}

// overlaps reports whether the segment may hold packets in [from, to]
// (zero times are unbounded).
func (g *segment) overlaps(from, to time.Time) bool {
	if g.packets == 0 {
		return false
	}
	return (from.IsZero() || !g.last.Before(from)) && (to.IsZero() || !g.first.After(to))
}

// hasPod reports whether the segment holds packets of any of ids (nil:
// any).
func (g *segment) hasPod(ids map[int]bool) bool {
	if ids == nil {
		return true
	}
	for id := range g.pods {
		if ids[id] {
			return true
		}
	}
	return false
}

// bloom is a Bloom filter of flow keys, sized to its segment: one bit per
// 16 bytes of segment, so at least four bits per packet even for a flood of
// one-packet flows, and far more for real traffic. Its memory is 1/128 of
// the segment size.
type bloom []uint64

func newBloom(segmentSize int64) bloom {
	words := max(segmentSize/16/64, 64)
	return make(bloom, words)
}

func (b bloom) positions(key uint64) [3]uint64 {
	n := uint64(len(b)) * 64
	h1 := mix64(key)
	h2 := mix64(h1) | 1
	return [3]uint64{h1 % n, (h1 + h2) % n, (h1 + 2*h2) % n}
}

func (b bloom) add(key uint64) {
	for _, p := range b.positions(key) {
		b[p/64] |= 1 << (p % 64)
	}
}

func (b bloom) has(key uint64) bool {
	for _, p := range b.positions(key) {
		if b[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// tupleKey is a symmetric, never-zero key of a TCP or UDP flow: both
// directions of a flow get the same key.
func tupleKey(proto uint8, a netip.Addr, ap uint16, b netip.Addr, bp uint16) uint64 {
	k := endKey(a.As16(), ap) + endKey(b.As16(), bp) + uint64(proto)*0xc2b2ae3d27d4eb4f
	if k == 0 {
		k = 1
	}
	return k
}

func endKey(a [16]byte, port uint16) uint64 {
	var x uint64 = 0x9e3779b97f4a7c15
	for i := 0; i < 16; i += 8 {
		x ^= uint64(a[i]) | uint64(a[i+1])<<8 | uint64(a[i+2])<<16 | uint64(a[i+3])<<24 |
			uint64(a[i+4])<<32 | uint64(a[i+5])<<40 | uint64(a[i+6])<<48 | uint64(a[i+7])<<56
		x *= 0xff51afd7ed558ccd
		x ^= x >> 33
	}
	x ^= uint64(port)
	x *= 0xc4ceb9fe1a85ec53
	return x ^ x>>29
}
