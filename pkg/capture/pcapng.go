package capture

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unsafe"
)

// pcapng block types (draft-ietf-opsawg-pcapng).
const (
	ngBlockSHB = 0x0a0d0d0a // section header, same bytes in either order
	ngBlockIDB = 0x00000001 // interface description
	ngBlockPB  = 0x00000002 // obsolete packet block
	ngBlockSPB = 0x00000003 // simple packet block
	ngBlockEPB = 0x00000006 // enhanced packet block

	ngByteOrderMagic = 0x1a2b3c4d

	ngOptEnd      = 0
	ngOptIfName   = 2
	ngOptTSResol  = 9
	ngOptTSOffset = 14

	// ngMaxInterfaces and ngMaxNameLen bound the interface table a file
	// can make us grow.
	ngMaxInterfaces = 1 << 16
	ngMaxNameLen    = 128
)

// Minimum block lengths: the fixed fields plus the trailing length.
const (
	ngMinSHB = 28
	ngMinIDB = 20
	ngMinEPB = 32
	ngMinSPB = 16
	ngMinPB  = 32
)

// pcapngReader reads pcapng, section after section. Interface ids in a
// section are relative to it; Packet.Interface indexes all interfaces
// seen so far, across sections.
type pcapngReader struct {
	s      *stream
	closer io.Closer
	order  byteOrder
	ifaces []Interface
	clocks []tsClock // parallel to ifaces
	base   int       // index in ifaces of this section's interface 0
	lastTS time.Time // for simple packet blocks, which carry no timestamp
}

func newPcapngReader(s *stream, closer io.Closer) (*pcapngReader, error) {
	r := &pcapngReader{s: s, closer: closer}
	if err := r.section(true); err != nil {
		return nil, err
	}
	return r, nil
}

// section reads a section header block, which sets the byte order of the
// blocks that follow and restarts interface numbering.
func (r *pcapngReader) section(first bool) error {
	// Callers have peeked the block type already, so this is never a
	// clean io.EOF.
	h, err := r.s.begin(12, "pcapng section header")
	if err != nil {
		return err
	}
	switch magic := littleEndian.u32(h[8:]); magic {
	case ngByteOrderMagic:
		r.order = littleEndian
	case 0x4d3c2b1a:
		r.order = bigEndian
	default:
		sentinel := ErrCorrupt
		if first {
			sentinel = ErrNotCapture
		}
		return fmt.Errorf("pcapng section header at offset %d has byte-order magic 0x%08x, want 0x%08x: %w",
			r.s.off, magic, ngByteOrderMagic, sentinel)
	}
	b, err := r.block(h, "pcapng section header", ngMinSHB)
	if err != nil {
		return err
	}
	if major := r.order.u16(b[12:]); major != 1 {
		return fmt.Errorf("pcapng version %d.%d is not supported (want 1.x): %w", major, r.order.u16(b[14:]), ErrCorrupt)
	}
	r.base = len(r.ifaces)
	return nil
}

// block validates the length of the block whose header h was peeked and
// returns the whole block, held in the read buffer until the next call.
func (r *pcapngReader) block(h []byte, what string, minLen uint32) ([]byte, error) {
	n := r.order.u32(h[4:])
	if n < minLen || n%4 != 0 || n > maxBlockLen {
		return nil, fmt.Errorf("%s at offset %d has length %d (want a multiple of 4 in [%d, %d]): %w",
			what, r.s.off, n, minLen, maxBlockLen, ErrCorrupt)
	}
	b, err := r.s.take(int(n), what)
	if err != nil {
		return nil, err
	}
	prefetch(uintptr(unsafe.Pointer(unsafe.SliceData(b))) + uintptr(len(b))) // the next block (see pcapReader.Next)
	if tail := r.order.u32(b[n-4:]); tail != n {
		return nil, fmt.Errorf("%s at offset %d ends with length %d, want %d: %w", what, r.s.off, tail, n, ErrCorrupt)
	}
	return b, nil
}

// Next implements Source.
func (r *pcapngReader) Next(p *Packet) error {
	if r.s.closed.Load() {
		return r.s.fail(errClosed)
	}
	if r.s.err != nil {
		return r.s.err
	}
	for {
		done, err := r.step(p)
		if err != nil {
			return r.s.fail(err)
		}
		if done {
			return nil
		}
	}
}

// step reads one block; done reports that it filled p.
func (r *pcapngReader) step(p *Packet) (done bool, err error) {
	h, err := r.s.begin(8, "pcapng block header")
	if err != nil {
		return false, err
	}
	switch typ := r.order.u32(h); typ {
	case ngBlockSHB:
		return false, r.section(false)
	case ngBlockEPB:
		b, err := r.block(h, "pcapng enhanced packet block", ngMinEPB)
		if err != nil {
			return false, err
		}
		return true, r.enhanced(b, p)
	case ngBlockSPB:
		b, err := r.block(h, "pcapng simple packet block", ngMinSPB)
		if err != nil {
			return false, err
		}
		return true, r.simple(b, p)
	case ngBlockPB:
		b, err := r.block(h, "pcapng packet block", ngMinPB)
		if err != nil {
			return false, err
		}
		return true, r.obsolete(b, p)
	case ngBlockIDB:
		b, err := r.block(h, "pcapng interface description block", ngMinIDB)
		if err != nil {
			return false, err
		}
		return false, r.iface(b)
	default:
		// Statistics, name resolution, decryption secrets, custom and
		// unknown blocks: skipped whatever their size.
		n := r.order.u32(h[4:])
		if n < 12 || n%4 != 0 {
			return false, fmt.Errorf("pcapng block of type %#x at offset %d has length %d: %w", typ, r.s.off, n, ErrCorrupt)
		}
		return false, r.s.skip(int64(n), "pcapng block")
	}
}

// iface reads an interface description block.
func (r *pcapngReader) iface(b []byte) error {
	if len(r.ifaces) >= ngMaxInterfaces {
		return fmt.Errorf("pcapng file defines more than %d interfaces: %w", ngMaxInterfaces, ErrCorrupt)
	}
	o := r.order
	id := len(r.ifaces) - r.base
	in := Interface{LinkType: normalizeLink(uint32(o.u16(b[8:]))), SnapLen: int(min(o.u32(b[12:]), 1<<31-1))}
	if err := checkLink(in.LinkType); err != nil {
		return fmt.Errorf("pcapng interface %d: %w", id, err)
	}
	clock := tsClock{exp: 6}
	o.options(b[16:len(b)-4], func(code uint16, val []byte) {
		switch {
		case code == ngOptIfName:
			in.Name = strings.TrimRight(string(val[:min(len(val), ngMaxNameLen)]), "\x00")
		case code == ngOptTSResol && len(val) == 1:
			clock.binary, clock.exp = val[0]&0x80 != 0, val[0]&0x7f
		case code == ngOptTSOffset && len(val) == 8:
			clock.offset = int64(o.u64(val))
		}
	})
	if err := clock.init(); err != nil {
		return fmt.Errorf("pcapng interface %d: %w", id, err)
	}
	r.ifaces = append(r.ifaces, in)
	r.clocks = append(r.clocks, clock)
	return nil
}

// options calls fn for each option in b until opt_endofopt or the end.
func (o byteOrder) options(b []byte, fn func(code uint16, val []byte)) {
	for len(b) >= 4 {
		code, n := o.u16(b), int(o.u16(b[2:]))
		if code == ngOptEnd || 4+n > len(b) {
			return
		}
		fn(code, b[4:4+n])
		b = b[min(len(b), 4+(n+3)&^3):]
	}
}

// enhanced reads an enhanced packet block.
func (r *pcapngReader) enhanced(b []byte, p *Packet) error {
	o := r.order
	return r.packet(p, b, o.u32(b[8:]), o.u32(b[12:]), o.u32(b[16:]), o.u32(b[20:]), o.u32(b[24:]))
}

// obsolete reads the packet block that EPB replaced.
func (r *pcapngReader) obsolete(b []byte, p *Packet) error {
	o := r.order
	return r.packet(p, b, uint32(o.u16(b[8:])), o.u32(b[12:]), o.u32(b[16:]), o.u32(b[20:]), o.u32(b[24:]))
}

// packet fills p from the fields shared by EPB and PB; data starts at 28.
func (r *pcapngReader) packet(p *Packet, b []byte, id, tsHigh, tsLow, capLen, origLen uint32) error {
	idx, err := r.ifaceIndex(id)
	if err != nil {
		return err
	}
	if capLen > MaxPacketLen || 28+int(capLen)+4 > len(b) {
		return fmt.Errorf("pcapng packet block at offset %d claims %d captured bytes in a %d-byte block: %w",
			r.s.off, capLen, len(b), ErrCorrupt)
	}
	p.Timestamp = r.clocks[idx].time(uint64(tsHigh)<<32 | uint64(tsLow))
	r.lastTS = p.Timestamp
	p.Length = int(origLen)
	p.LinkType = r.ifaces[idx].LinkType
	p.Interface = idx
	p.Data = b[28 : 28+capLen]
	return nil
}

// simple reads a simple packet block: interface 0 of the section, no
// timestamp (we reuse the previous packet's, keeping time monotonic), and a
// captured length implied by the snap length and the block length.
func (r *pcapngReader) simple(b []byte, p *Packet) error {
	idx, err := r.ifaceIndex(0)
	if err != nil {
		return err
	}
	orig := r.order.u32(b[8:])
	n := min(int(orig), len(b)-ngMinSPB)
	if snap := r.ifaces[idx].SnapLen; snap > 0 {
		n = min(n, snap)
	}
	p.Timestamp = r.lastTS
	p.Length = int(orig)
	p.LinkType = r.ifaces[idx].LinkType
	p.Interface = idx
	p.Data = b[12 : 12+n]
	return nil
}

func (r *pcapngReader) ifaceIndex(id uint32) (int, error) {
	if int64(id) >= int64(len(r.ifaces)-r.base) {
		return 0, fmt.Errorf("pcapng packet block at offset %d refers to interface %d, but its section defines %d: %w",
			r.s.off, id, len(r.ifaces)-r.base, ErrCorrupt)
	}
	return r.base + int(id), nil
}

// Interfaces implements Source.
func (r *pcapngReader) Interfaces() []Interface { return r.ifaces[:len(r.ifaces):len(r.ifaces)] }

// Held implements Holder.
func (r *pcapngReader) Held() *Region { return r.s.held() }

// Mapped implements Mapper.
func (r *pcapngReader) Mapped() bool { return r.s.br.mapped }

// Close implements Source.
func (r *pcapngReader) Close() error { return closeSource(r.s, r.closer) }
