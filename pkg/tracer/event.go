package tracer

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Direction says which way plaintext went, seen from the traced process.
type Direction uint8

const (
	// Sent bytes were written by the process (SSL_write, (*tls.Conn).Write).
	Sent Direction = 0
	// Received bytes were read by the process (SSL_read, (*tls.Conn).Read).
	Received Direction = 1
)

func (d Direction) String() string {
	if d == Received {
		return "received"
	}
	return "sent"
}

// Library names the TLS implementation an event came from.
type Library uint8

const (
	OpenSSL Library = iota // OpenSSL 1.1/3.x, BoringSSL
	GoTLS                  // Go crypto/tls
)

func (l Library) String() string {
	if l == GoTLS {
		return "go"
	}
	return "openssl"
}

// Layout of struct tls_event in bpf/tls.bpf.c (host byte order).
const (
	// MaxData is the most plaintext one event carries; a call that moved
	// more is split over several events (up to MaxChunks).
	MaxData = 16384
	// MaxChunks is the most events one call yields; bytes past
	// MaxChunks*MaxData are counted, not copied.
	MaxChunks = 4
	// HeaderSize is the size of an event before its data.
	HeaderSize = 108

	flagTuple = 1
	flagGo    = 2
	flagTrunc = 4

	afInet  = 2
	afInet6 = 10
)

// Errors of Decode.
var (
	ErrShortEvent = errors.New("tracer: event shorter than its header")
	ErrBadEvent   = errors.New("tracer: event fields out of range")
)

// Event is one chunk of plaintext that a process sent or received over TLS.
type Event struct {
	// Mono is the time of the call's return, CLOCK_MONOTONIC nanoseconds
	// (Tracer.Time converts it).
	Mono     uint64
	CgroupID uint64
	// Conn identifies the TLS connection inside the process (the address
	// of its SSL or tls.Conn object).
	Conn  uint64
	PID   uint32
	TID   uint32
	FD    int32 // -1 when the call's socket was never seen
	Netns uint32
	// Len is the bytes the call moved; Offset is where Data starts in them.
	Len    uint32
	Offset uint32
	Dir    Direction
	Lib    Library
	// Truncated: the call moved more than MaxChunks*MaxData bytes, and the
	// rest was not copied.
	Truncated bool
	// Local and Remote are the socket's ends; invalid when unknown.
	Local, Remote netip.AddrPort
	Comm          [16]byte
	// Data aliases the buffer passed to Decode.
	Data []byte
}

// HasTuple reports whether the socket's ends are known.
func (e *Event) HasTuple() bool { return e.Local.IsValid() && e.Remote.IsValid() }

// Last reports whether this chunk ends what the call's events carry.
func (e *Event) Last() bool {
	end := uint64(e.Offset) + uint64(len(e.Data))
	return end >= uint64(e.Len) || end >= MaxChunks*MaxData
}

// Command returns the process's command name.
func (e *Event) Command() string {
	n := 0
	for n < len(e.Comm) && e.Comm[n] != 0 {
		n++
	}
	return string(e.Comm[:n])
}

// Decode parses one ring buffer record into e. Data aliases b. It never
// panics, whatever b holds.
func (e *Event) Decode(b []byte) error {
	if len(b) < HeaderSize {
		return ErrShortEvent
	}
	le := binary.LittleEndian // both supported targets (x86, arm64) are little-endian
	dataLen := int(le.Uint16(b[48:]))
	if dataLen > MaxData || HeaderSize+dataLen > len(b) {
		return ErrBadEvent
	}
	*e = Event{
		Mono:     le.Uint64(b[0:]),
		CgroupID: le.Uint64(b[8:]),
		Conn:     le.Uint64(b[16:]),
		PID:      le.Uint32(b[24:]),
		TID:      le.Uint32(b[28:]),
		FD:       int32(le.Uint32(b[32:])),
		Netns:    le.Uint32(b[36:]),
		Len:      le.Uint32(b[40:]),
		Offset:   le.Uint32(b[44:]),
		Data:     b[HeaderSize : HeaderSize+dataLen : HeaderSize+dataLen],
	}
	switch b[50] {
	case 0:
		e.Dir = Sent
	case 1:
		e.Dir = Received
	default:
		return ErrBadEvent
	}
	flags := b[51]
	if flags&flagGo != 0 {
		e.Lib = GoTLS
	}
	e.Truncated = flags&flagTrunc != 0
	if uint64(e.Offset)+uint64(dataLen) > uint64(e.Len) || e.Offset >= MaxChunks*MaxData {
		return ErrBadEvent
	}
	copy(e.Comm[:], b[92:108])
	if flags&flagTuple != 0 {
		if err := e.decodeTuple(b); err != nil {
			return err
		}
	}
	return nil
}

func (e *Event) decodeTuple(b []byte) error {
	le := binary.LittleEndian
	lport, rport := le.Uint16(b[54:]), le.Uint16(b[56:])
	var l, r netip.Addr
	switch le.Uint16(b[52:]) {
	case afInet:
		l = netip.AddrFrom4([4]byte(b[60:64]))
		r = netip.AddrFrom4([4]byte(b[76:80]))
	case afInet6:
		// A dual-stack socket talking IPv4 shows v4-mapped addresses.
		l = netip.AddrFrom16([16]byte(b[60:76])).Unmap()
		r = netip.AddrFrom16([16]byte(b[76:92])).Unmap()
	default:
		return ErrBadEvent
	}
	e.Local, e.Remote = netip.AddrPortFrom(l, lport), netip.AddrPortFrom(r, rport)
	return nil
}

// AppendEncode appends e in the ring buffer's layout: the inverse of
// Decode, for tests and replay.
func (e *Event) AppendEncode(dst []byte) []byte {
	le := binary.LittleEndian
	var h [HeaderSize]byte
	le.PutUint64(h[0:], e.Mono)
	le.PutUint64(h[8:], e.CgroupID)
	le.PutUint64(h[16:], e.Conn)
	le.PutUint32(h[24:], e.PID)
	le.PutUint32(h[28:], e.TID)
	le.PutUint32(h[32:], uint32(e.FD))
	le.PutUint32(h[36:], e.Netns)
	le.PutUint32(h[40:], e.Len)
	le.PutUint32(h[44:], e.Offset)
	le.PutUint16(h[48:], uint16(len(e.Data)))
	h[50] = byte(e.Dir)
	var flags byte
	if e.Lib == GoTLS {
		flags |= flagGo
	}
	if e.Truncated {
		flags |= flagTrunc
	}
	if e.HasTuple() {
		flags |= flagTuple
		l, r := e.Local.Addr(), e.Remote.Addr()
		if l.Is4() && r.Is4() {
			le.PutUint16(h[52:], afInet)
			a, b := l.As4(), r.As4()
			copy(h[60:], a[:])
			copy(h[76:], b[:])
		} else {
			le.PutUint16(h[52:], afInet6)
			a, b := l.As16(), r.As16()
			copy(h[60:], a[:])
			copy(h[76:], b[:])
		}
		le.PutUint16(h[54:], e.Local.Port())
		le.PutUint16(h[56:], e.Remote.Port())
	}
	h[51] = flags
	copy(h[92:], e.Comm[:])
	dst = append(dst, h[:]...)
	return append(dst, e.Data...)
}
