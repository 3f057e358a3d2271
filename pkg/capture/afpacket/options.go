// Package afpacket captures packets with Linux AF_PACKET sockets
// (TPACKET_V3 rings, mapped with golang.org/x/sys/unix, no cgo), opened
// inside a network namespace, with a kernel-side filter compiled from a
// subset of tcpdump's language. A reader may hold the ring's blocks and
// hand their packets on without copying them (Handle.NextBlock).
//
// Sockets are SOCK_DGRAM and bound to ETH_P_ALL: they see every interface
// of the namespace (or the one named), whatever its link type, and every
// packet starts at its IP header (capture.LinkRaw). The kernel filter keeps
// IPv4 and IPv6 only and drops the outgoing copy of loopback packets, so
// that every packet on lo is seen once. A namespace that forwards packets
// between its own interfaces shows them once per interface, as
// `tcpdump -i any` does; a pod's namespace does not forward.
package afpacket

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/net/bpf"
)

// Defaults of Options.
const (
	DefaultSnapLen      = 262144
	DefaultRingSize     = 32 << 20
	DefaultBlockSize    = 1 << 20
	DefaultBlockTimeout = 25 * time.Millisecond
	DefaultPollTimeout  = 100 * time.Millisecond
	minBlockSize        = 64 << 10
	maxBlockTimeout     = 10 * time.Second // packets wait at most this long in a block
	frameSize           = 4096             // TPACKET_V3 packs packets; only divides blocks
)

// Options configure a capture socket. Zero values take the defaults.
type Options struct {
	// Interface binds the socket to one interface of the namespace; empty
	// captures them all.
	Interface string
	// RingSize is the bytes of the kernel ring, rounded down to whole
	// blocks (at least 2). It absorbs bursts while the reader is busy.
	RingSize int
	// BlockSize is the bytes of one ring block: a power of two, at least
	// 64 KiB. The kernel hands over a block when it is full or
	// BlockTimeout after its first packet.
	BlockSize    int
	BlockTimeout time.Duration
	// PollTimeout bounds how long Next waits before returning ErrTimeout.
	PollTimeout time.Duration
	// SnapLen cuts packets to this many bytes, IP header included.
	SnapLen int
	// Filter is a filter expression (see CompileFilter); RawFilter a
	// classic BPF program instead (see ParseRawFilter). At most one.
	Filter    string
	RawFilter []bpf.RawInstruction
}

// WithDefaults returns o with the zero values replaced by the defaults.
func (o Options) WithDefaults() Options {
	if o.SnapLen <= 0 {
		o.SnapLen = DefaultSnapLen
	}
	if o.BlockSize <= 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.RingSize <= 0 {
		o.RingSize = DefaultRingSize
	}
	if o.BlockTimeout <= 0 {
		o.BlockTimeout = DefaultBlockTimeout
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = DefaultPollTimeout
	}
	return o
}

// Validate checks the options and compiles the filter: errors come out
// before any socket is opened.
func (o Options) Validate() error {
	_, err := o.WithDefaults().program()
	return err
}

// program returns the complete socket filter.
func (o Options) program() ([]bpf.RawInstruction, error) {
	page := os.Getpagesize()
	switch {
	case o.BlockSize < minBlockSize || o.BlockSize&(o.BlockSize-1) != 0 || o.BlockSize%page != 0:
		return nil, fmt.Errorf("ring block size %d must be a power of two of at least %d", o.BlockSize, minBlockSize)
	case o.RingSize/o.BlockSize < 2:
		return nil, fmt.Errorf("ring size %d must hold at least two blocks of %d bytes", o.RingSize, o.BlockSize)
	case o.BlockTimeout < time.Millisecond:
		return nil, fmt.Errorf("ring block timeout %v must be at least 1ms", o.BlockTimeout)
	case o.BlockTimeout > maxBlockTimeout:
		return nil, fmt.Errorf("ring block timeout %v must be at most %v", o.BlockTimeout, maxBlockTimeout)
	case o.Filter != "" && o.RawFilter != nil:
		return nil, fmt.Errorf("%w: give a filter expression or a raw program, not both", ErrFilter)
	case o.RawFilter != nil:
		return WithRawFilter(o.RawFilter)
	}
	return CompileFilter(o.Filter, o.SnapLen)
}
