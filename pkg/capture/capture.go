// Package capture provides packet sources behind one interface (capture
// files and streams today, AF_PACKET inside a network namespace in the
// worker) and decodes their frames down to the transport layer.
package capture

import (
	"errors"
	"time"
)

// LinkType is a pcap LINKTYPE_ value.
type LinkType uint32

// Link types we decode.
const (
	LinkNull     LinkType = 0   // BSD loopback: 4-byte host-order family
	LinkEthernet LinkType = 1   // Ethernet II, optionally 802.1Q/802.1ad tagged
	LinkRaw      LinkType = 101 // raw IPv4 or IPv6
	LinkLoop     LinkType = 108 // OpenBSD loopback: 4-byte network-order family
	LinkSLL      LinkType = 113 // Linux cooked v1 (tcpdump -i any)
	LinkIPv4     LinkType = 228
	LinkIPv6     LinkType = 229
	LinkSLL2     LinkType = 276 // Linux cooked v2
)

// Packet is one captured frame. Data aliases the source's buffer and is
// valid only until the next call to Next.
type Packet struct {
	Timestamp time.Time
	// CaptureLength is len(Data); Length is the frame's length on the wire.
	Length   int
	LinkType LinkType
	// Interface indexes Source.Interfaces(); pcap files have one.
	Interface int
	Data      []byte
	// Segments, when more than one, is how many TCP segments with payload
	// this packet stands for: a live capture may hand the in-order
	// segments of a flow that is only counted as one packet cut after its
	// headers, whose IP length is their payloads' sum.
	Segments int
}

// Interface describes one capture interface (pcapng IDB, or a pod's netns).
type Interface struct {
	Name     string
	LinkType LinkType
	SnapLen  int
}

// Source yields packets in capture order.
type Source interface {
	// Next fills p with the next packet. It returns io.EOF at the end, and
	// an error wrapping ErrTruncated when the capture ends mid-record.
	Next(p *Packet) error
	// Interfaces lists the interfaces seen so far.
	Interfaces() []Interface
	// Close releases the source. It may be called while another goroutine
	// is blocked in Next, to unblock it where the input allows.
	Close() error
}

// Sentinel errors; callers use errors.Is.
var (
	ErrNotCapture      = errors.New("not a pcap or pcapng capture")
	ErrTruncated       = errors.New("capture is truncated")
	ErrUnsupportedLink = errors.New("unsupported link type")
	// ErrCorrupt reports a capture whose framing is damaged (absurd record
	// or block lengths, unknown interface ids).
	ErrCorrupt = errors.New("capture is corrupt")
	// ErrFileChanged reports a capture file that shrank while it was
	// being read (see FaultError).
	ErrFileChanged = errors.New("capture file shrank while being read")
)
