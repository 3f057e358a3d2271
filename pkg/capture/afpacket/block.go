package afpacket

import "encoding/binary"

// TPACKET_V3 layouts (linux/if_packet.h), in host byte order.
const (
	// tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1.
	blockDescLen   = 48
	offBlockStatus = 8
	offNumPkts     = 12
	offFirstPkt    = 16

	// tpacket3_hdr fields we read; the header is 48 bytes.
	pktHdrLen    = 48
	offNextPkt   = 0
	offSec       = 4
	offNsec      = 8
	offSnapLen   = 12
	offWireLen   = 16
	offMac       = 24
	pktFieldsEnd = 28 // tp_mac and tp_net end here

	tpStatusKernel = 0
	tpStatusUser   = 1
)

var ne = binary.NativeEndian

// rawPacket is one packet of a block as the kernel describes it.
type rawPacket struct {
	sec, nsec uint32
	wireLen   int
	data      []byte
}

// walker reads the packets of one retired block. Every offset in it is the
// kernel's: each is checked against the block, and the first bad one ends
// the walk, marked corrupt, rather than reading outside the block.
type walker struct {
	blk     []byte
	off     int    // offset of the next packet header
	left    uint32 // packets not read yet
	corrupt bool
	lost    uint32 // packets the block holds past the corruption
}

func newWalker(blk []byte) walker {
	if len(blk) < blockDescLen {
		return walker{corrupt: true}
	}
	n := ne.Uint32(blk[offNumPkts:])
	first := ne.Uint32(blk[offFirstPkt:])
	if n == 0 {
		return walker{}
	}
	if first < blockDescLen || uint64(first)+pktFieldsEnd > uint64(len(blk)) {
		return walker{corrupt: true, lost: n}
	}
	return walker{blk: blk, off: int(first), left: n}
}

// next fills p with the next packet; false at the end of the block or at
// a corrupt packet header.
func (w *walker) next(p *rawPacket) bool {
	if w.left == 0 || w.corrupt {
		return false
	}
	h := w.off
	hdr := w.blk[h:]
	snap := uint64(ne.Uint32(hdr[offSnapLen:]))
	mac := uint64(ne.Uint16(hdr[offMac:]))
	end := mac + snap
	if mac < pktFieldsEnd || end > uint64(len(hdr)) {
		return w.fail(w.left)
	}
	w.left--
	if w.left > 0 {
		// A further packet must start after this header, inside the block.
		next := uint64(ne.Uint32(hdr[offNextPkt:]))
		if next < pktFieldsEnd || next+pktFieldsEnd > uint64(len(hdr)) {
			return w.fail(w.left + 1) // this packet too: it is not handed out
		}
		w.off = h + int(next)
	}
	p.sec = ne.Uint32(hdr[offSec:])
	p.nsec = ne.Uint32(hdr[offNsec:])
	p.wireLen = int(min(ne.Uint32(hdr[offWireLen:]), 1<<30))
	p.data = hdr[mac:end:end]
	if p.wireLen < len(p.data) {
		p.wireLen = len(p.data)
	}
	return true
}

func (w *walker) fail(lost uint32) bool {
	w.corrupt, w.left, w.lost = true, 0, lost
	return false
}
