//go:build linux

package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// ErrTimeout is returned by Next and NextBlock when no packet came within
// PollTimeout.
var ErrTimeout = errors.New("afpacket: no packet before the poll timeout")

// Handle is one capture socket and its TPACKET_V3 ring. Next, NextBlock,
// Block.Next and Close must be called from one goroutine (the reader);
// Block.Release and Stats may be called from any.
//
// The ring stays mapped while any block is held: Close unmaps it at once
// when none is, else the last Release does.
type Handle struct {
	fd int
	// file holds fd in the Go runtime's poller, so that waiting for a
	// block parks the reader instead of blocking its thread in poll(2):
	// a thread blocked in a system call makes the runtime's monitor wake
	// every 20µs to hand its P on, which cost more CPU than the capture.
	file    *os.File
	raw     syscall.RawConn
	ring    []byte
	bsize   int
	nblocks int
	poll    time.Duration
	iface   string

	// Owned by the reader.
	next int    // the block the kernel retires next
	cur  *Block // Next's block
	// cutoff drops packets received before the filter was attached.
	cutoff time.Time
	early  uint64

	held     atomic.Int32  // blocks handed out and not released
	out      []atomic.Bool // by block: handed out and not released
	closing  atomic.Bool
	unmapped sync.Once
	corrupt  atomic.Uint64
	lost     atomic.Uint64 // packets of corrupt blocks past the corruption

	pfd [1]unix.PollFd

	mu     sync.Mutex // guards fd and total against the unmap, for Stats
	closed bool       // the socket is closed, the ring unmapped
	total  Stats
}

// Stats are the counters of one socket since it was opened.
type Stats struct {
	// Packets passed the filter (drops included); Drops found the ring
	// full; Freezes counts the times every block was full.
	Packets, Drops, Freezes uint64
	// Corrupt counts blocks whose layout was inconsistent: their walk
	// stopped at the first bad offset. CorruptLost are the packets those
	// blocks held past it.
	Corrupt, CorruptLost uint64
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

// ethPAll is ETH_P_ALL in network byte order, as sockaddr_ll wants it.
var ethPAll = binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, unix.ETH_P_ALL))

func open(opts Options, prog []bpf.RawInstruction) (*Handle, error) {
	// Protocol 0: the socket receives nothing until bind, so packets reach
	// the ring only through the filter.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening AF_PACKET socket%s: %w", onIface(opts.Interface), err)
	}
	n := opts.RingSize / opts.BlockSize
	h := &Handle{fd: fd, bsize: opts.BlockSize, nblocks: n, out: make([]atomic.Bool, n), poll: opts.PollTimeout, iface: opts.Interface}
	if err := h.setup(opts, prog); err != nil {
		if h.ring != nil {
			unix.Munmap(h.ring)
		}
		unix.Close(fd)
		return nil, err
	}
	if err := h.pollable(); err != nil {
		unix.Munmap(h.ring)
		unix.Close(fd)
		return nil, err
	}
	return h, nil
}

// pollable hands the socket to the runtime's poller: non-blocking, it
// becomes a pollable os.File. The file owns the descriptor from then on.
func (h *Handle) pollable() error {
	if err := unix.SetNonblock(h.fd, true); err != nil {
		return fmt.Errorf("capture socket: %w", err)
	}
	h.file = os.NewFile(uintptr(h.fd), "af_packet")
	raw, err := h.file.SyscallConn()
	if err != nil {
		h.file.Close()
		return fmt.Errorf("capture socket: %w", err)
	}
	h.raw = raw
	return nil
}

func (h *Handle) setup(opts Options, prog []bpf.RawInstruction) error {
	if err := unix.SetsockoptInt(h.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("setting TPACKET_V3: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(h.bsize),
		Block_nr:       uint32(h.nblocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(h.bsize / frameSize * h.nblocks),
		Retire_blk_tov: uint32(opts.BlockTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(h.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("creating the capture ring (%d blocks of %d bytes): %w", h.nblocks, h.bsize, err)
	}
	ring, err := unix.Mmap(h.fd, 0, h.bsize*h.nblocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mapping the capture ring: %w", err)
	}
	h.ring = ring
	if err := attach(h.fd, prog); err != nil {
		return fmt.Errorf("attaching the capture filter: %w", err)
	}
	ifindex := 0
	if opts.Interface != "" {
		ifi, err := net.InterfaceByName(opts.Interface)
		if err != nil {
			return fmt.Errorf("opening AF_PACKET socket%s: %w", onIface(opts.Interface), err)
		}
		ifindex = ifi.Index
	}
	h.cutoff = time.Now()
	if err := unix.Bind(h.fd, &unix.SockaddrLinklayer{Protocol: ethPAll, Ifindex: ifindex}); err != nil {
		return fmt.Errorf("binding AF_PACKET socket%s: %w", onIface(opts.Interface), err)
	}
	return nil
}

func attach(fd int, prog []bpf.RawInstruction) error {
	if len(prog) == 0 {
		return fmt.Errorf("%w: empty program", ErrFilter)
	}
	ins := make([]unix.SockFilter, len(prog))
	for i, ri := range prog {
		ins[i] = unix.SockFilter{Code: ri.Op, Jt: ri.Jt, Jf: ri.Jf, K: ri.K}
	}
	fp := unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp)
}

func onIface(name string) string {
	if name == "" {
		return ""
	}
	return " on " + name
}

// Blocks is the number of blocks in the ring.
func (h *Handle) Blocks() int { return h.nblocks }

// Held is the number of blocks handed out by NextBlock (or held by Next)
// and not released yet: the kernel cannot fill them.
func (h *Handle) Held() int { return int(h.held.Load()) }

// blockStatus points at the block_status word of block i.
func (h *Handle) blockStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&h.ring[i*h.bsize+offBlockStatus]))
}

// NextBlock waits for the next block the kernel retires and hands it
// over: its packets alias the ring until Release. Blocks come in ring
// order; they may be released in any order, but the kernel fills blocks in
// ring order too and stops (dropping packets) at one still held. It
// returns ErrTimeout when no block came within the poll timeout.
func (h *Handle) NextBlock() (*Block, error) {
	if h.closing.Load() {
		return nil, fmt.Errorf("reading the capture ring: %w", net.ErrClosed)
	}
	var deadline time.Time
	backoff := 50 * time.Microsecond
	for {
		status := h.blockStatus(h.next)
		// A block still out keeps the kernel's TP_STATUS_USER: the ring
		// has come round to a block the reader's consumers hold.
		if !h.out[h.next].Load() && atomic.LoadUint32(status)&tpStatusUser != 0 {
			b := h.take(status)
			if b.w.left == 0 && !b.w.corrupt {
				b.Release() // nothing in it
				continue
			}
			return b, nil
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(h.poll)
		}
		wait := deadline.Sub(now)
		if wait <= 0 {
			// Nothing came: pick up a socket error, if any.
			if err := h.socketError(); err != nil {
				return nil, err
			}
			return nil, ErrTimeout
		}
		if h.out[h.next].Load() {
			// The ring has come round to a block the consumers hold: the
			// kernel fills no more until they release it, and tells no
			// one when they do, so check back shortly. The thread itself
			// sleeps: a Go timer could fire late on a busy machine, and
			// the reader would fall behind the ring.
			d := min(backoff, wait)
			ts := unix.NsecToTimespec(int64(d))
			unix.Nanosleep(&ts, nil)
			backoff = min(2*backoff, time.Millisecond)
			continue
		}
		if err := h.wait(status, wait); err != nil {
			return nil, err
		}
	}
}

// take hands out block h.next.
func (h *Handle) take(status *uint32) *Block {
	off := h.next * h.bsize
	b := &Block{h: h, idx: h.next, status: status, w: newWalker(h.ring[off : off+h.bsize : off+h.bsize])}
	if b.w.corrupt {
		h.countCorrupt(&b.w)
	}
	h.held.Add(1)
	h.out[h.next].Store(true)
	h.next++
	if h.next == h.nblocks {
		h.next = 0
	}
	return b
}

// wait waits up to d for the kernel to hand over the block whose status
// word is status. The reader is parked in the runtime's poller meanwhile:
// the kernel wakes the socket each time it retires a block. (Poll's own
// readiness is no help: TPACKET_V3 reports readable while the block
// before the one it fills is the reader's, not when the next one is.)
func (h *Handle) wait(status *uint32, d time.Duration) error {
	if err := h.file.SetReadDeadline(time.Now().Add(d)); err != nil {
		return fmt.Errorf("polling the capture socket: %w", err)
	}
	err := h.raw.Read(func(uintptr) bool { return atomic.LoadUint32(status)&tpStatusUser != 0 })
	switch {
	case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	case errors.Is(err, os.ErrClosed):
		return fmt.Errorf("reading the capture ring: %w", net.ErrClosed)
	}
	return fmt.Errorf("polling the capture socket: %w", err)
}

// socketError returns the socket's pending error, if any, clearing it.
func (h *Handle) socketError() error {
	h.pfd[0] = unix.PollFd{Fd: int32(h.fd), Events: unix.POLLERR}
	n, err := unix.Poll(h.pfd[:], 0)
	if err != nil || n == 0 || h.pfd[0].Revents&unix.POLLERR == 0 {
		return nil
	}
	if serr, err := unix.GetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && serr != 0 {
		return fmt.Errorf("capture socket: %w", unix.Errno(serr))
	}
	return nil
}

// Next fills p with the next packet (LinkRaw, p.Interface 0). p.Data
// points into the ring and is valid until the next call. It returns
// ErrTimeout when no packet came within the poll timeout.
func (h *Handle) Next(p *capture.Packet) error {
	for {
		if h.cur != nil {
			if h.cur.Next(p) {
				return nil
			}
			h.cur.Release()
			h.cur = nil
		}
		b, err := h.NextBlock()
		if err != nil {
			return err
		}
		h.cur = b
	}
}

// countCorrupt counts a corrupt block and the packets it held past the
// corruption.
func (h *Handle) countCorrupt(w *walker) {
	h.corrupt.Add(1)
	h.lost.Add(uint64(w.lost))
}

// Stats returns the kernel counters since Open. After Close it returns the
// last counters read.
func (h *Handle) Stats() (Stats, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.statsLocked()
}

func (h *Handle) statsLocked() (Stats, error) {
	h.total.Corrupt = h.corrupt.Load()
	h.total.CorruptLost = h.lost.Load()
	if h.closed || h.closing.Load() {
		return h.total, nil
	}
	// The kernel resets its counters on every read: add them up.
	st, err := unix.GetsockoptTpacketStatsV3(h.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return h.total, fmt.Errorf("reading PACKET_STATISTICS: %w", err)
	}
	h.total.Packets += uint64(st.Packets)
	h.total.Drops += uint64(st.Drops)
	h.total.Freezes += uint64(st.Freeze_q_cnt)
	return h.total, nil
}

// dropAll is a filter that keeps nothing.
var dropAll = []bpf.RawInstruction{{Op: 0x06}} // ret #0

// Close reads the last counters and closes the socket. Held blocks stay
// readable: the ring is unmapped when the last is released, and until
// then the socket takes no more packets.
func (h *Handle) Close() error {
	h.mu.Lock()
	if h.closed || h.closing.Load() {
		h.mu.Unlock()
		return nil
	}
	h.statsLocked()
	h.closing.Store(true)
	h.mu.Unlock()
	if h.cur != nil {
		h.cur.Release()
		h.cur = nil
	}
	if h.held.Load() == 0 {
		h.unmap()
		return nil
	}
	// The socket lives until the ring is unmapped: keep it from working.
	attach(h.fd, dropAll)
	if h.held.Load() == 0 {
		h.unmap()
	}
	return nil
}

// unmap closes the socket and unmaps the ring, once nothing is held.
func (h *Handle) unmap() {
	h.unmapped.Do(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.closed = true
		unix.Munmap(h.ring)
		h.file.Close()
		h.ring = nil
	})
}

// Block is one retired block of the ring, held by the reader until
// Release. Its packets' Data alias the ring: they are valid until Release.
type Block struct {
	h        *Handle
	idx      int
	status   *uint32
	w        walker
	released atomic.Bool
}

// Len is the number of packets the block holds (the kernel's count).
func (b *Block) Len() int { return int(b.w.left) }

// Next fills p with the block's next packet (LinkRaw, p.Interface 0) and
// reports whether there was one. Only the reader may call it.
func (b *Block) Next(p *capture.Packet) bool {
	var r rawPacket
	for b.w.next(&r) {
		ts := time.Unix(int64(r.sec), int64(r.nsec))
		if h := b.h; !h.cutoff.IsZero() {
			if ts.Before(h.cutoff) {
				h.early++
				continue
			}
			h.cutoff = time.Time{}
		}
		p.Timestamp = ts
		p.Length = r.wireLen
		p.LinkType = capture.LinkRaw
		p.Interface = 0
		p.Data = r.data
		return true
	}
	if b.w.corrupt && b.w.blk != nil {
		b.w.blk = nil // count the block once
		b.h.countCorrupt(&b.w)
	}
	return false
}

// Release hands the block back to the kernel; the packets read from it
// must no longer be used. It may be called from any goroutine, once (later
// calls do nothing).
func (b *Block) Release() {
	if !b.released.CompareAndSwap(false, true) {
		return
	}
	// An atomic store orders the reads of the block before the kernel
	// sees it as its own again.
	atomic.StoreUint32(b.status, tpStatusKernel)
	h := b.h
	h.out[b.idx].Store(false) // after the status: the reader must not see the old one
	if h.held.Add(-1) == 0 && h.closing.Load() {
		h.unmap()
	}
}
