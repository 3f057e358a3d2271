package capture

import (
	"fmt"
	"io"
	"time"
	"unsafe"
)

// Classic pcap magic numbers as read in the file's own byte order.
const (
	pcapMagicMicros   = 0xa1b2c3d4
	pcapMagicNanos    = 0xa1b23c4d
	pcapMagicModified = 0xa1b2cd34 // Kuznetzov's patched libpcap: longer record headers
)

const (
	pcapFileHeaderLen = 24
	pcapRecordLen     = 16
	pcapModifiedLen   = 24 // adds ifindex, protocol, pkt_type and padding
)

// pcapReader reads the classic pcap format.
type pcapReader struct {
	s       *stream
	closer  io.Closer
	order   byteOrder
	fracMul int64 // nanoseconds per unit of the timestamp fraction
	recLen  int   // record header length
	link    LinkType
	ifaces  []Interface
	records uint64
}

// pcapMagic reports whether the first four bytes are a pcap magic and
// returns the file's byte order.
func pcapMagic(b []byte) (byteOrder, bool) {
	for _, o := range [...]byteOrder{littleEndian, bigEndian} {
		switch o.u32(b) {
		case pcapMagicMicros, pcapMagicNanos, pcapMagicModified:
			return o, true
		}
	}
	return littleEndian, false
}

func newPcapReader(s *stream, order byteOrder, closer io.Closer) (*pcapReader, error) {
	r := &pcapReader{s: s, closer: closer, order: order, fracMul: 1000, recLen: pcapRecordLen}
	h, err := r.s.take(pcapFileHeaderLen, "pcap file header")
	if err != nil {
		return nil, err
	}
	switch order.u32(h) {
	case pcapMagicNanos:
		r.fracMul = 1
	case pcapMagicModified:
		r.recLen = pcapModifiedLen
	}
	if major := order.u16(h[4:]); major != 2 {
		return nil, fmt.Errorf("pcap version %d.%d is not supported (want 2.x): %w", major, order.u16(h[6:]), ErrNotCapture)
	}
	snap := order.u32(h[16:])
	r.link = normalizeLink(order.u32(h[20:]))
	if err := checkLink(r.link); err != nil {
		return nil, err
	}
	r.ifaces = []Interface{{LinkType: r.link, SnapLen: int(min(snap, 1<<31-1))}}
	return r, nil
}

// Next implements Source.
func (r *pcapReader) Next(p *Packet) error {
	if r.s.closed.Load() {
		return r.s.fail(errClosed)
	}
	if r.s.err != nil {
		return r.s.err
	}
	h, err := r.s.begin(r.recLen, "pcap record header")
	if err != nil {
		return r.s.fail(err)
	}
	o := r.order
	incl := o.u32(h[8:])
	if incl > MaxPacketLen {
		return r.s.fail(fmt.Errorf("pcap record %d at offset %d claims %d captured bytes, more than the %d a packet may have: %w",
			r.records+1, r.s.off, incl, MaxPacketLen, ErrCorrupt))
	}
	rec, err := r.s.take(r.recLen+int(incl), "pcap record")
	if err != nil {
		return r.s.fail(err)
	}
	// The next record's header is a cache miss nearly every time: the
	// packet just read is a kilobyte long on average, too far for the
	// hardware to guess. Ask for it (from its captured length, 8 bytes in)
	// while this one is decoded.
	prefetch(uintptr(unsafe.Pointer(unsafe.SliceData(rec))) + uintptr(len(rec)) + 8)
	r.records++
	p.Timestamp = time.Unix(int64(o.u32(rec)), int64(o.u32(rec[4:]))*r.fracMul).UTC()
	p.Length = int(o.u32(rec[12:]))
	p.LinkType = r.link
	p.Interface = 0
	p.Data = rec[r.recLen:]
	return nil
}

// Interfaces implements Source.
func (r *pcapReader) Interfaces() []Interface { return r.ifaces[:len(r.ifaces):len(r.ifaces)] }

// Held implements Holder.
func (r *pcapReader) Held() *Region { return r.s.held() }

// Mapped implements Mapper.
func (r *pcapReader) Mapped() bool { return r.s.br.mapped }

// Close implements Source.
func (r *pcapReader) Close() error { return closeSource(r.s, r.closer) }
