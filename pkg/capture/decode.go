package capture

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Defaults of DecoderOptions.
const (
	DefaultMaxFragmentBytes = 4 << 20
	DefaultFragmentTimeout  = 30 * time.Second
)

// DecoderOptions configures a Decoder.
type DecoderOptions struct {
	// MaxFragmentBytes caps the memory IP reassembly holds across all
	// incomplete datagrams; the oldest are dropped to stay under it. Zero
	// means DefaultMaxFragmentBytes; negative disables reassembly (every
	// fragment is dropped and counted).
	MaxFragmentBytes int
	// FragmentTimeout drops an incomplete datagram this long after its
	// first fragment, in packet time so that offline runs are
	// deterministic. Zero means DefaultFragmentTimeout.
	FragmentTimeout time.Duration
}

// DecoderStats counts what a Decoder saw. Besides Packets, a packet
// counts in one of Decoded, NotIP, NotTCPUDP, Malformed, Truncated (the
// snap length cut its headers) or Fragments. A fragment that completes a
// datagram also counts in Reassembled and in the outcome of decoding it.
type DecoderStats struct {
	Packets   uint64 // calls to Decode
	Decoded   uint64 // frames filled (Decode returned true)
	NotIP     uint64 // ARP, LLDP, other link protocols
	NotTCPUDP uint64 // IP, but ICMP, ESP, ...
	Malformed uint64 // headers that contradict themselves or the frame
	// Fragments counts IP fragments; Reassembled the datagrams they
	// completed (also counted in Decoded); FragmentsDropped the fragments
	// thrown away: timed out, over the memory cap, overlapping (RFC 5722,
	// applied to IPv4 too), inconsistent, or cut by the snap length.
	Fragments        uint64
	Reassembled      uint64
	FragmentsDropped uint64
	// Truncated counts packets the snap length cut inside the IP datagram.
	// Those whose transport header survived are decoded with
	// Frame.Truncated set; the others are counted here only.
	Truncated uint64
}

// Decoder decodes packets to TCP and UDP frames and reassembles IP
// fragments. It is not safe for concurrent use; use one per goroutine.
type Decoder struct {
	stats DecoderStats
	frag  defrag
}

// NewDecoder returns a Decoder with opts, defaults filled in.
func NewDecoder(opts DecoderOptions) *Decoder {
	if opts.MaxFragmentBytes == 0 {
		opts.MaxFragmentBytes = DefaultMaxFragmentBytes
	}
	if opts.FragmentTimeout <= 0 {
		opts.FragmentTimeout = DefaultFragmentTimeout
	}
	d := &Decoder{}
	d.frag = defrag{limit: opts.MaxFragmentBytes, timeout: int64(opts.FragmentTimeout), stats: &d.stats}
	return d
}

// Stats returns the counters so far.
func (d *Decoder) Stats() DecoderStats { return d.stats }

// Decode decodes p into f and reports whether p held a TCP or UDP segment
// (or completed a fragmented one). f's slices alias p.Data or the
// decoder's reassembly buffer and are valid until the next Decode. It
// never allocates on the unfragmented path.
func (d *Decoder) Decode(p *Packet, f *Frame) bool {
	d.stats.Packets++
	if d.frag.oldest != nil {
		d.frag.tick(p.Timestamp)
	}
	ip, version := linkPayload(p.LinkType, p.Data)
	switch version {
	case 4:
		return d.ipv4(p, f, ip)
	case 6:
		return d.ipv6(p, f, ip)
	case linkShort:
		return d.drop(p.Length > len(p.Data))
	}
	d.stats.NotIP++
	return false
}

// drop counts a packet whose headers do not fit: truncated when the snap
// length cut it, malformed otherwise.
func (d *Decoder) drop(cut bool) bool {
	if cut {
		d.stats.Truncated++
	} else {
		d.stats.Malformed++
	}
	return false
}

func (d *Decoder) malformed() bool {
	d.stats.Malformed++
	return false
}

func (d *Decoder) notTCPUDP() bool {
	d.stats.NotTCPUDP++
	return false
}

// ipLen trims b to the IP datagram's length, so that link padding is not
// taken as payload, and reports whether the snap length cut the datagram.
// A length of zero is what segmentation offload leaves in captured
// packets; the captured length stands in for it.
func ipLen(p *Packet, b []byte, n, hdr int) (_ []byte, cut, ok bool) {
	switch {
	case n == 0:
		return b, false, true
	case n < hdr:
		return nil, false, false
	case n > len(b):
		// More than captured: fine if the capture cut the frame.
		return b, true, p.Length > len(p.Data)
	}
	return b[:n], false, true
}

func (d *Decoder) ipv4(p *Packet, f *Frame, b []byte) bool {
	if len(b) < 20 {
		return d.drop(p.Length > len(p.Data))
	}
	hdr := int(b[0]&0x0f) << 2
	if b[0]>>4 != 4 || hdr < 20 {
		return d.malformed()
	}
	b, cut, ok := ipLen(p, b, int(binary.BigEndian.Uint16(b[2:])), hdr)
	if !ok {
		return d.malformed()
	}
	if hdr > len(b) {
		return d.drop(cut)
	}
	proto := b[9]
	if proto != IPProtoTCP && proto != IPProtoUDP {
		return d.notTCPUDP()
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	if frag := binary.BigEndian.Uint16(b[6:]) & 0x3fff; frag != 0 {
		key := fragKey{src: src, dst: dst, id: uint32(binary.BigEndian.Uint16(b[4:])), proto: proto}
		return d.fragment(p, f, key, int(frag&0x1fff)<<3, frag&0x2000 != 0, b[hdr:], cut)
	}
	return d.transport(p, f, src, dst, proto, b[hdr:], cut, p.Length, int(binary.BigEndian.Uint16(b[2:]))-hdr)
}

// IPv6 extension headers we step over.
const (
	ip6HopByHop = 0
	ip6Routing  = 43
	ip6Fragment = 44
	ip6AH       = 51
	ip6DestOpts = 60

	maxIP6Headers = 8 // more is an attack or garbage, not traffic
)

func (d *Decoder) ipv6(p *Packet, f *Frame, b []byte) bool {
	if len(b) < 40 {
		return d.drop(p.Length > len(p.Data))
	}
	if b[0]>>4 != 6 {
		return d.malformed()
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if n > 0 {
		n += 40 // zero is a jumbogram or an offloaded segment: keep all
	}
	b, cut, ok := ipLen(p, b, n, 40)
	if !ok {
		return d.malformed()
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	return d.ipv6Chain(p, f, src, dst, b[40:], b[6], cut, false, n-40)
}

// ipv6Chain walks the extension headers from b, whose type is next, to
// the transport header. reassembled forbids a second fragment header.
// rest is how many bytes the IP header says follow from b's start.
func (d *Decoder) ipv6Chain(p *Packet, f *Frame, src, dst netip.Addr, b []byte, next uint8, cut, reassembled bool, rest int) bool {
	for range maxIP6Headers {
		switch next {
		case IPProtoTCP, IPProtoUDP:
			wire := p.Length
			if reassembled {
				wire = d.frag.wire
			}
			return d.transport(p, f, src, dst, next, b, cut, wire, rest)
		case ip6HopByHop, ip6Routing, ip6DestOpts, ip6AH:
			if len(b) < 8 {
				return d.drop(cut)
			}
			n := (int(b[1]) + 1) << 3
			if next == ip6AH {
				n = (int(b[1]) + 2) << 2
			}
			if n > len(b) {
				return d.drop(cut)
			}
			next, b, rest = b[0], b[n:], rest-n
		case ip6Fragment:
			if reassembled {
				return d.malformed()
			}
			if len(b) < 8 {
				return d.drop(cut)
			}
			fo := binary.BigEndian.Uint16(b[2:])
			if fo&0xfff9 == 0 { // offset 0, no more fragments: atomic (RFC 6946)
				next, b, rest = b[0], b[8:], rest-8
				continue
			}
			switch b[0] {
			case IPProtoTCP, IPProtoUDP, ip6Routing, ip6DestOpts, ip6AH:
			default:
				return d.notTCPUDP()
			}
			key := fragKey{src: src, dst: dst, id: binary.BigEndian.Uint32(b[4:]), proto: b[0]}
			return d.fragment(p, f, key, int(fo&0xfff8), fo&1 != 0, b[8:], cut)
		default:
			return d.notTCPUDP() // ESP, ICMPv6, no next header, unknown
		}
	}
	return d.malformed()
}

// fragment hands a fragment to reassembly and decodes the datagram it
// completes, if any.
func (d *Decoder) fragment(p *Packet, f *Frame, key fragKey, off int, more bool, data []byte, cut bool) bool {
	d.stats.Fragments++
	if cut { // a cut fragment can never complete its datagram
		d.stats.Truncated++
		d.stats.FragmentsDropped++
		return false
	}
	d.frag.tick(p.Timestamp)
	seg, ok := d.frag.add(key, off, more, data, p.Length)
	if !ok {
		return false
	}
	d.stats.Reassembled++
	if key.src.Is4() {
		return d.transport(p, f, key.src, key.dst, key.proto, seg, false, d.frag.wire, len(seg))
	}
	return d.ipv6Chain(p, f, key.src, key.dst, seg, key.proto, false, true, len(seg))
}

// transport decodes a TCP or UDP segment into f. wire is the length on
// the wire of the frames that carried it; segLen is the segment's length
// by the IP header, which says more than len(seg) when the capture cut it.
func (d *Decoder) transport(p *Packet, f *Frame, src, dst netip.Addr, proto uint8, seg []byte, cut bool, wire, segLen int) bool {
	var payload []byte
	if proto == IPProtoTCP {
		if len(seg) < 20 {
			return d.drop(cut)
		}
		off := int(seg[12]>>4) << 2
		if off < 20 {
			return d.malformed()
		}
		if off > len(seg) {
			return d.drop(cut)
		}
		payload = seg[off:]
	} else {
		if len(seg) < 8 {
			return d.drop(cut)
		}
		switch n := int(binary.BigEndian.Uint16(seg[4:])); {
		case n >= 8 && n <= len(seg):
			seg = seg[:n]
		case n == 0: // jumbogram: the IP length rules
		case n < 8 || !cut:
			return d.malformed()
		}
		payload = seg[8:]
	}
	*f = Frame{
		Timestamp: p.Timestamp,
		Interface: p.Interface,
		WireLen:   wire,
		Src:       src,
		Dst:       dst,
		Proto:     proto,
		SrcPort:   binary.BigEndian.Uint16(seg),
		DstPort:   binary.BigEndian.Uint16(seg[2:]),
		Segment:   seg,
		Payload:   payload,
		Truncated: cut,
	}
	f.PayloadLen = len(payload)
	f.Segments = p.Segments
	if cut && proto == IPProtoTCP && segLen > len(seg) {
		f.PayloadLen += segLen - len(seg)
	}
	if proto == IPProtoTCP {
		f.Seq = binary.BigEndian.Uint32(seg[4:])
		f.Ack = binary.BigEndian.Uint32(seg[8:])
		f.Flags = seg[13]
		f.Window = binary.BigEndian.Uint16(seg[14:])
	}
	if cut {
		d.stats.Truncated++
	}
	d.stats.Decoded++
	return true
}
