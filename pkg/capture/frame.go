package capture

import (
	"net/netip"
	"time"
)

// IP protocol numbers of the transports we follow.
const (
	IPProtoTCP = 6
	IPProtoUDP = 17
)

// TCP flag bits as in the TCP header's flags byte.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
)

// Frame is a packet decoded to the transport layer. Its slices alias the
// packet (or the decoder's defragmentation buffer) and are valid only until
// the next Decode.
type Frame struct {
	Timestamp time.Time
	Interface int
	WireLen   int
	Src, Dst  netip.Addr
	// Proto is IPProtoTCP or IPProtoUDP.
	Proto            uint8
	SrcPort, DstPort uint16
	// Segment is the whole transport segment (header and payload); Payload
	// is its payload.
	Segment []byte
	Payload []byte
	// Truncated reports that the capture's snap length cut the packet:
	// Payload holds only the captured prefix of the segment's payload.
	Truncated bool
	// PayloadLen is the payload's length on the wire: len(Payload), or
	// more when the capture cut a TCP segment whose IP header tells its
	// length. A flow that is only counted needs no more than that.
	PayloadLen int
	// Segments is the packet's Segments: how many segments a summary of
	// a counted flow's segments stands for (0 or 1: itself).
	Segments int
	// TCP header fields, set when Proto is IPProtoTCP.
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
}

// Pair names a flow by its two ends, the lower first, so that both
// directions of the flow give the same Pair.
type Pair struct{ Lo, Hi netip.AddrPort }

// PairOf returns the Pair of the flow between a and b.
func PairOf(a, b netip.AddrPort) Pair {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return Pair{a, b}
}
