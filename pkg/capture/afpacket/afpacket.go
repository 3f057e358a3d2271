//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"sync"
	"time"

	gafpacket "github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// ErrTimeout is returned by Next when no packet came within PollTimeout.
var ErrTimeout = errors.New("afpacket: no packet before the poll timeout")

// Handle is one capture socket and its ring. Next and Close must be called
// from one goroutine (Close unmaps the ring Next reads); Stats may be
// called from any.
type Handle struct {
	tp    *gafpacket.TPacket
	iface string

	// cutoff drops packets received before the filter was attached: the
	// socket sees traffic from its creation on.
	cutoff time.Time
	early  uint64

	mu     sync.Mutex // guards tp's socket against Close, for Stats
	closed bool
	last   Stats
}

// Stats are the kernel's counters of one socket since it was opened.
type Stats struct {
	// Packets passed the filter (drops included); Drops found the ring
	// full; Freezes counts the times every block was full.
	Packets, Drops, Freezes uint64
}

// Open opens a capture socket in ns (nil: the caller's namespace).
func Open(ns *Netns, opts Options) (*Handle, error) {
	opts = opts.WithDefaults()
	prog, err := opts.program()
	if err != nil {
		return nil, err
	}
	var h *Handle
	open := func() error {
		h, err = open(opts, prog)
		return err
	}
	if ns == nil {
		err = open()
	} else {
		err = ns.Do(open)
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

func open(opts Options, prog []bpf.RawInstruction) (*Handle, error) {
	tp, err := gafpacket.NewTPacket(
		gafpacket.OptInterface(opts.Interface),
		gafpacket.OptSocketType(gafpacket.SocketDgram),
		gafpacket.OptProtocol(unix.ETH_P_ALL),
		gafpacket.OptTPacketVersion(gafpacket.TPacketVersion3),
		gafpacket.OptFrameSize(frameSize),
		gafpacket.OptBlockSize(opts.BlockSize),
		gafpacket.OptNumBlocks(opts.RingSize/opts.BlockSize),
		gafpacket.OptBlockTimeout(opts.BlockTimeout),
		gafpacket.OptPollTimeout(opts.PollTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("opening AF_PACKET socket%s: %w", onIface(opts.Interface), err)
	}
	cutoff := time.Now()
	if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return nil, fmt.Errorf("attaching the capture filter: %w", err)
	}
	return &Handle{tp: tp, iface: opts.Interface, cutoff: cutoff}, nil
}

func onIface(name string) string {
	if name == "" {
		return ""
	}
	return " on " + name
}

// Next fills p with the next packet (LinkRaw, p.Interface 0). p.Data
// points into the ring and is valid until the next call. It returns
// ErrTimeout when no packet came within the poll timeout.
func (h *Handle) Next(p *capture.Packet) error {
	for {
		data, ci, err := h.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, gafpacket.ErrTimeout) {
				return ErrTimeout
			}
			return fmt.Errorf("reading the capture ring: %w", err)
		}
		if !h.cutoff.IsZero() {
			if ci.Timestamp.Before(h.cutoff) {
				h.early++
				continue
			}
			h.cutoff = time.Time{}
		}
		p.Timestamp = ci.Timestamp
		p.Length = ci.Length
		p.LinkType = capture.LinkRaw
		p.Interface = 0
		p.Data = data
		return nil
	}
}

// Stats returns the kernel counters since Open. After Close it returns the
// last counters read.
func (h *Handle) Stats() (Stats, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return h.last, nil
	}
	_, v3, err := h.tp.SocketStats()
	if err != nil {
		return h.last, fmt.Errorf("reading PACKET_STATISTICS: %w", err)
	}
	h.last = Stats{Packets: uint64(v3.Packets()), Drops: uint64(v3.Drops()), Freezes: uint64(v3.QueueFreezes())}
	return h.last, nil
}

// Close closes the socket and unmaps the ring, after reading the last
// counters.
func (h *Handle) Close() error {
	h.Stats()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	h.tp.Close()
	return nil
}
