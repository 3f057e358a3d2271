package mysql

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

// half frames the packets of one direction: a 3-byte little-endian length
// and a sequence id, then the payload. A payload of maxPacket bytes goes on
// in the next packet; the pieces make one logical packet. Only the first
// limit bytes of a logical packet are kept.
type half struct {
	dir   dissect.Dir
	limit int

	hdr       [headerLen]byte
	nhdr      int
	inPacket  bool // reading a payload
	length    int  // the current physical packet's payload length
	remaining int  // payload bytes of it still to come
	cont      bool // the logical packet goes on in the next physical one

	// The logical packet.
	seq   byte   // sequence id of its first physical packet
	last  byte   // sequence id of its last physical packet
	buf   []byte // its first limit bytes
	total int    // its size
	wire  int64  // bytes on the wire, headers included
	start time.Time

	// synced says packet boundaries are known. At the start of the
	// capture and after a gap they are not: the parser looks for a
	// packet at the start of each Data call, since peers write packets
	// whole.
	synced bool
	probe  []byte // bytes held while not synced, up to maxProbe
}

// lost forgets framing after a gap.
func (h *half) lost() {
	h.synced, h.inPacket, h.cont, h.nhdr = false, false, false, 0
	h.probe = h.probe[:0]
	h.buf, h.total, h.wire = h.buf[:0], 0, 0
}

// feed frames data and hands each logical packet to the parser. It stops
// when the parser takes the connection off (TLS), returning what is left.
func (h *half) feed(p *parser, data []byte, ts time.Time) []byte {
	for len(data) > 0 && !p.off() {
		if !h.inPacket {
			data = h.header(p, data, ts)
			continue
		}
		n := min(h.remaining, len(data))
		if keep := min(n, h.limit-len(h.buf)); keep > 0 {
			h.buf = append(h.buf, data[:keep]...)
		}
		h.total += n
		h.wire += int64(n)
		h.remaining -= n
		data = data[n:]
		if h.remaining == 0 {
			h.packetEnd(p, ts)
		}
	}
	return data
}

// header collects a packet header and starts its payload.
func (h *half) header(p *parser, data []byte, ts time.Time) []byte {
	n := copy(h.hdr[h.nhdr:], data)
	h.nhdr += n
	data = data[n:]
	if h.nhdr < headerLen {
		return data
	}
	h.nhdr = 0
	if !h.cont {
		h.seq, h.buf, h.total, h.wire, h.start = h.hdr[3], h.buf[:0], 0, 0, ts
	}
	h.last = h.hdr[3]
	h.length = int(h.hdr[0]) | int(h.hdr[1])<<8 | int(h.hdr[2])<<16
	h.remaining, h.inPacket = h.length, true
	h.wire += headerLen
	if h.length == 0 {
		h.packetEnd(p, ts)
	}
	return data
}

// packetEnd ends a physical packet; the last one of a logical packet
// hands it to the parser.
func (h *half) packetEnd(p *parser, ts time.Time) {
	h.inPacket = false
	if h.cont = h.length == maxPacket; h.cont {
		return
	}
	if h.dir == dissect.ClientToServer {
		p.clientPacket(h, ts)
	} else {
		p.serverPacket(h, ts)
	}
	if cap(h.buf) > 4*h.limit {
		h.buf = nil // a long packet grew it: let it go
	}
}

// looksLikePacket checks that data starts with a packet header of sequence
// seq whose payload starts with a byte ok accepts.
func looksLikePacket(data []byte, seq byte, ok func(first byte, length int) bool) bool {
	if len(data) < headerLen+1 || data[3] != seq {
		return false
	}
	n := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	return n > 0 && ok(data[headerLen], n)
}
