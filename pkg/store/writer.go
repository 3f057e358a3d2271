package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// Format is an export file format.
type Format string

const (
	FormatPcapng Format = "pcapng"
	FormatPcap   Format = "pcap"
)

// PacketWriter writes packets to a capture stream.
type PacketWriter interface {
	// AddInterface declares an interface and returns its id for
	// WritePacket. Formats with a single interface accept any number of
	// interfaces of the same link type.
	AddInterface(iface capture.Interface) (int, error)
	WritePacket(id int, p *capture.Packet) error
	Flush() error
}

// NewWriter returns a writer of format f on w.
func NewWriter(w io.Writer, f Format) (PacketWriter, error) {
	switch f {
	case FormatPcapng, "":
		return NewNgWriter(w)
	case FormatPcap:
		return NewPcapWriter(w), nil
	}
	return nil, fmt.Errorf("unknown capture format %q (want pcapng or pcap)", f)
}

const writerBuffer = 256 << 10

// pcapng block types and options we write.
const (
	blockSHB      = 0x0A0D0D0A
	blockIDB      = 0x00000001
	blockEPB      = 0x00000006
	byteOrder     = 0x1A2B3C4D
	optEnd        = 0
	optShbUserApp = 4
	optIfName     = 2
	optIfTSResol  = 9
	epbHeaderLen  = 28 // block type, length, interface, ts high, ts low, captured, original
	userAppl      = "kubectl-shark"
	maxIfaceName  = 1024 // namespace/pod is at most 317 bytes
)

var le = binary.LittleEndian

// NgWriter writes pcapng: one section, nanosecond timestamps, interfaces
// named as given (a worker names them namespace/pod). It buffers; call
// Flush.
type NgWriter struct {
	w      *bufio.Writer
	buf    []byte
	hdr    [epbHeaderLen]byte // scratch, so that WritePacket does not allocate
	ifaces int
	n      int64 // bytes written, buffered included
}

// NewNgWriter writes the section header to w.
func NewNgWriter(w io.Writer) (*NgWriter, error) {
	n := &NgWriter{w: bufio.NewWriterSize(w, writerBuffer)}
	b := n.buf[:0]
	b = le.AppendUint32(b, blockSHB)
	b = le.AppendUint32(b, 0) // length, set below
	b = le.AppendUint32(b, byteOrder)
	b = le.AppendUint16(b, 1) // major
	b = le.AppendUint16(b, 0) // minor
	b = le.AppendUint64(b, ^uint64(0))
	b = appendOption(b, optShbUserApp, []byte(userAppl))
	b = appendOption(b, optEnd, nil)
	b = closeBlock(b)
	n.buf = b
	return n, n.write(b)
}

func appendOption(b []byte, code uint16, val []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(val)))
	b = append(b, val...)
	for i := len(val); i%4 != 0; i++ {
		b = append(b, 0)
	}
	return b
}

// closeBlock writes the block's length at offset 4 and at its end.
func closeBlock(b []byte) []byte {
	total := uint32(len(b) + 4)
	le.PutUint32(b[4:], total)
	return le.AppendUint32(b, total)
}

func pad4(n int) int { return (n + 3) &^ 3 }

func (n *NgWriter) write(b []byte) error {
	m, err := n.w.Write(b)
	n.n += int64(m)
	return err
}

// AddInterface writes an interface description block.
func (n *NgWriter) AddInterface(iface capture.Interface) (int, error) {
	name := iface.Name
	if len(name) > maxIfaceName {
		name = name[:maxIfaceName]
	}
	snap := iface.SnapLen
	if snap <= 0 {
		snap = 262144
	}
	b := n.buf[:0]
	b = le.AppendUint32(b, blockIDB)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, uint16(iface.LinkType))
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, uint32(snap))
	if name != "" {
		b = appendOption(b, optIfName, []byte(name))
	}
	b = appendOption(b, optIfTSResol, []byte{9})
	b = appendOption(b, optEnd, nil)
	b = closeBlock(b)
	n.buf = b
	if err := n.write(b); err != nil {
		return 0, err
	}
	n.ifaces++
	return n.ifaces - 1, nil
}

// epbLen is the size of the enhanced packet block of p.
func epbLen(p *capture.Packet) int64 { return int64(epbHeaderLen + pad4(len(p.Data)) + 4) }

// WritePacket writes p as an enhanced packet block of interface id.
func (n *NgWriter) WritePacket(id int, p *capture.Packet) error {
	if id < 0 || id >= n.ifaces {
		return fmt.Errorf("pcapng: interface %d not declared", id)
	}
	ts := uint64(p.Timestamp.UnixNano())
	orig := max(p.Length, len(p.Data))
	total := uint32(epbLen(p))
	h := n.hdr[:]
	le.PutUint32(h[0:], blockEPB)
	le.PutUint32(h[4:], total)
	le.PutUint32(h[8:], uint32(id))
	le.PutUint32(h[12:], uint32(ts>>32))
	le.PutUint32(h[16:], uint32(ts))
	le.PutUint32(h[20:], uint32(len(p.Data)))
	le.PutUint32(h[24:], uint32(orig))
	if err := n.write(h); err != nil {
		return err
	}
	if err := n.write(p.Data); err != nil {
		return err
	}
	padding := pad4(len(p.Data)) - len(p.Data)
	clear(h[:padding])
	le.PutUint32(h[padding:], total)
	return n.write(h[:padding+4])
}

// Flush writes buffered blocks.
func (n *NgWriter) Flush() error { return n.w.Flush() }

// Len returns the bytes written so far, buffered ones included.
func (n *NgWriter) Len() int64 { return n.n }

// PcapWriter writes classic pcap with nanosecond timestamps. It has one
// link type, fixed by the first interface.
type PcapWriter struct {
	w      *bufio.Writer
	hdr    [16]byte
	link   capture.LinkType
	snap   int
	header bool
	ifaces int
}

// NewPcapWriter returns a pcap writer; the file header is written with
// the first interface.
func NewPcapWriter(w io.Writer) *PcapWriter {
	return &PcapWriter{w: bufio.NewWriterSize(w, writerBuffer)}
}

// ErrMixedLinks reports interfaces a classic pcap file cannot hold together.
var ErrMixedLinks = errors.New("pcap holds one link type; use pcapng")

// AddInterface fixes the link type on the first call.
func (pw *PcapWriter) AddInterface(iface capture.Interface) (int, error) {
	if !pw.header {
		pw.link, pw.snap = iface.LinkType, iface.SnapLen
		if pw.snap <= 0 {
			pw.snap = 262144
		}
		var h [24]byte
		le.PutUint32(h[0:], 0xa1b23c4d) // nanosecond magic
		le.PutUint16(h[4:], 2)
		le.PutUint16(h[6:], 4)
		le.PutUint32(h[16:], uint32(pw.snap))
		le.PutUint32(h[20:], uint32(pw.link))
		if _, err := pw.w.Write(h[:]); err != nil {
			return 0, err
		}
		pw.header = true
	} else if iface.LinkType != pw.link {
		return 0, fmt.Errorf("%w: link types %d and %d", ErrMixedLinks, pw.link, iface.LinkType)
	}
	pw.ifaces++
	return pw.ifaces - 1, nil
}

// WritePacket writes one record; the interface is not recorded.
func (pw *PcapWriter) WritePacket(id int, p *capture.Packet) error {
	if id < 0 || id >= pw.ifaces {
		return fmt.Errorf("pcap: interface %d not declared", id)
	}
	ns := p.Timestamp.UnixNano()
	h := pw.hdr[:]
	le.PutUint32(h[0:], uint32(ns/1e9))
	le.PutUint32(h[4:], uint32(ns%1e9))
	le.PutUint32(h[8:], uint32(len(p.Data)))
	le.PutUint32(h[12:], uint32(max(p.Length, len(p.Data))))
	if _, err := pw.w.Write(h); err != nil {
		return err
	}
	_, err := pw.w.Write(p.Data)
	return err
}

// Flush writes buffered records.
func (pw *PcapWriter) Flush() error { return pw.w.Flush() }
