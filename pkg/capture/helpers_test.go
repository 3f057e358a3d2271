package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// cmpAddr lets cmp compare netip.Addr, which has unexported fields.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// seg describes one transport segment to build with gopacket.
type seg struct {
	v6               bool
	udp              bool
	src, dst         string
	sport, dport     uint16
	seq, ack         uint32
	payload          []byte
	tcpOptions       bool // add a timestamp option (data offset 8)
	extHeaders       bool // IPv6: hop-by-hop and destination options first
	ipID             uint16
	dontFixIPLengths bool
}

// ipBytes serializes s from the IP header down.
func ipBytes(t testing.TB, s seg) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	proto := layers.IPProtocolTCP
	if s.udp {
		proto = layers.IPProtocolUDP
	}
	if s.v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: net.ParseIP(s.src), DstIP: net.ParseIP(s.dst)}
		ls = append(ls, ip)
		if s.extHeaders {
			ip.NextHeader = layers.IPProtocolIPv6HopByHop
			hbh := &layers.IPv6HopByHop{}
			hbh.NextHeader = layers.IPProtocolIPv6Destination
			hbh.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
			dst := &layers.IPv6Destination{}
			dst.NextHeader = proto
			dst.Options = []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
			ls = append(ls, hbh, dst)
		}
		netLayer = ip
	} else {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: s.ipID, Protocol: proto, SrcIP: net.ParseIP(s.src).To4(), DstIP: net.ParseIP(s.dst).To4()}
		ls = append(ls, ip)
		netLayer = ip
	}
	if s.udp {
		u := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
		if err := u.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, u)
	} else {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), Seq: s.seq, Ack: s.ack, ACK: true, PSH: true, Window: 512}
		if s.tcpOptions {
			tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}}
		}
		if err := tcp.SetNetworkLayerForChecksum(netLayer); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, tcp)
	}
	ls = append(ls, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// frame wraps IP bytes in the link header of lt. vlans adds 802.1Q tags
// (the outer one 802.1ad when there are two) to Ethernet, SLL and SLL2.
func frame(t testing.TB, lt LinkType, ip []byte, vlans int) []byte {
	t.Helper()
	etherType := uint16(etherIPv4)
	if ip[0]>>4 == 6 {
		etherType = etherIPv6
	}
	tags := vlanTags(etherType, vlans)
	if vlans > 0 {
		etherType = etherVLAN
		if vlans > 1 {
			etherType = etherQinQ
		}
	}
	var hdr []byte
	switch lt {
	case LinkEthernet:
		hdr = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0}
		binary.BigEndian.PutUint16(hdr[12:], etherType)
	case LinkSLL:
		hdr = make([]byte, sllLen)
		binary.BigEndian.PutUint16(hdr[2:], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(hdr[4:], 6)
		binary.BigEndian.PutUint16(hdr[14:], etherType)
	case LinkSLL2:
		hdr = make([]byte, sll2Len)
		binary.BigEndian.PutUint16(hdr, etherType)
		binary.BigEndian.PutUint32(hdr[4:], 3) // ifindex
		binary.BigEndian.PutUint16(hdr[8:], 1)
		hdr[11] = 6
	case LinkNull:
		hdr = binary.LittleEndian.AppendUint32(nil, loopFamily(etherType))
	case LinkLoop:
		hdr = binary.BigEndian.AppendUint32(nil, loopFamily(etherType))
	case LinkRaw, LinkIPv4, LinkIPv6:
	default:
		t.Fatalf("frame: link type %v", lt)
	}
	return append(append(hdr, tags...), ip...)
}

func vlanTags(inner uint16, n int) []byte {
	var b []byte
	for i := range n {
		next := uint16(etherVLAN)
		if i == n-1 {
			next = inner
		}
		b = binary.BigEndian.AppendUint16(b, uint16(100+i)) // TCI: VLAN id
		b = binary.BigEndian.AppendUint16(b, next)
	}
	return b
}

func loopFamily(etherType uint16) uint32 {
	if etherType == etherIPv6 {
		return 30
	}
	return 2
}

// testPacket is a packet to write into a test capture.
type testPacket struct {
	ts     time.Time
	data   []byte
	length int // on the wire; len(data) when zero
}

func (p testPacket) wireLen() int {
	if p.length == 0 {
		return len(p.data)
	}
	return p.length
}

// writePcap writes a classic pcap (little endian) with pcapgo.
func writePcap(t testing.TB, lt LinkType, nanos bool, pkts []testPacket) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if nanos {
		w = pcapgo.NewWriterNanos(&buf)
	}
	if err := w.WriteFileHeader(MaxPacketLen, layers.LinkType(lt)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: p.wireLen()}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// swapPcap rewrites a little-endian pcap as big endian.
func swapPcap(t testing.TB, le []byte) []byte {
	t.Helper()
	out := bytes.Clone(le)
	swap32 := func(b []byte) { binary.BigEndian.PutUint32(b, binary.LittleEndian.Uint32(b)) }
	swap16 := func(b []byte) { binary.BigEndian.PutUint16(b, binary.LittleEndian.Uint16(b)) }
	swap32(out[0:])
	swap16(out[4:])
	swap16(out[6:])
	for _, off := range []int{8, 12, 16, 20} {
		swap32(out[off:])
	}
	for off := pcapFileHeaderLen; off < len(out); {
		incl := int(binary.LittleEndian.Uint32(out[off+8:]))
		for i := 0; i < 16; i += 4 {
			swap32(out[off+i:])
		}
		off += 16 + incl
	}
	return out
}

// got is a packet as read, copied out of the reader's buffer.
type got struct {
	TS        time.Time
	Length    int
	LinkType  LinkType
	Interface int
	Data      []byte
}

func readAll(t testing.TB, src Source) ([]got, error) {
	t.Helper()
	var out []got
	var p Packet
	for {
		err := src.Next(&p)
		if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, got{p.Timestamp, p.Length, p.LinkType, p.Interface, bytes.Clone(p.Data)})
	}
}

// ngBuilder writes pcapng blocks by hand in either byte order, for what
// pcapgo cannot write (big endian, if_tsresol, SPB, PB, odd blocks).
type ngBuilder struct {
	bytes.Buffer
	o interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (w *ngBuilder) block(typ uint32, body []byte) {
	body = pad4(body)
	n := uint32(12 + len(body))
	w.Write(w.o.AppendUint32(nil, typ))
	w.Write(w.o.AppendUint32(nil, n))
	w.Write(body)
	w.Write(w.o.AppendUint32(nil, n))
}

func (w *ngBuilder) option(b []byte, code uint16, val []byte) []byte {
	b = w.o.AppendUint16(b, code)
	b = w.o.AppendUint16(b, uint16(len(val)))
	return pad4(append(b, val...))
}

func (w *ngBuilder) shb() {
	b := w.o.AppendUint32(nil, ngByteOrderMagic)
	b = w.o.AppendUint16(b, 1)
	b = w.o.AppendUint16(b, 0)
	b = w.o.AppendUint64(b, ^uint64(0))
	b = w.option(b, 4, []byte("capture tests")) // shb_userappl
	b = w.option(b, ngOptEnd, nil)
	w.block(ngBlockSHB, b)
}

// idb adds an interface; tsresol < 0 leaves the option out.
func (w *ngBuilder) idb(lt LinkType, snap uint32, name string, tsresol int, tsoffset int64) {
	b := w.o.AppendUint16(nil, uint16(lt))
	b = w.o.AppendUint16(b, 0)
	b = w.o.AppendUint32(b, snap)
	if name != "" {
		b = w.option(b, ngOptIfName, []byte(name))
	}
	if tsresol >= 0 {
		b = w.option(b, ngOptTSResol, []byte{byte(tsresol)})
	}
	if tsoffset != 0 {
		b = w.option(b, ngOptTSOffset, w.o.AppendUint64(nil, uint64(tsoffset)))
	}
	b = w.option(b, ngOptEnd, nil)
	w.block(ngBlockIDB, b)
}

func (w *ngBuilder) epb(iface uint32, ts uint64, data []byte, orig int) {
	b := w.o.AppendUint32(nil, iface)
	b = w.o.AppendUint32(b, uint32(ts>>32))
	b = w.o.AppendUint32(b, uint32(ts))
	b = w.o.AppendUint32(b, uint32(len(data)))
	b = w.o.AppendUint32(b, uint32(orig))
	b = pad4(append(b, data...))
	b = w.option(b, 2, w.o.AppendUint32(nil, 1)) // epb_flags: inbound
	b = w.option(b, ngOptEnd, nil)
	w.block(ngBlockEPB, b)
}

func (w *ngBuilder) pb(iface uint16, ts uint64, data []byte, orig int) {
	b := w.o.AppendUint16(nil, iface)
	b = w.o.AppendUint16(b, 0)
	b = w.o.AppendUint32(b, uint32(ts>>32))
	b = w.o.AppendUint32(b, uint32(ts))
	b = w.o.AppendUint32(b, uint32(len(data)))
	b = w.o.AppendUint32(b, uint32(orig))
	w.block(ngBlockPB, append(b, data...))
}

func (w *ngBuilder) spb(data []byte, orig int) {
	w.block(ngBlockSPB, append(w.o.AppendUint32(nil, uint32(orig)), data...))
}
