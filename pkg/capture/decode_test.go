package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	tcp4 = seg{src: "10.0.0.1", dst: "10.0.0.2", sport: 43210, dport: 8080, seq: 7, ack: 9, payload: []byte("GET / HTTP/1.1\r\n\r\n")}
	udp6 = seg{v6: true, udp: true, src: "fd00::1", dst: "fd00::53", sport: 5353, dport: 53, payload: []byte("\x12\x34query")}
)

// wantFrame is the frame Decode should produce for s carried in frameLen
// bytes on the wire.
func wantFrame(t testing.TB, s seg, frameLen int) Frame {
	t.Helper()
	segment := ipBytes(t, s)
	if s.v6 {
		segment = segment[40:]
		if s.extHeaders {
			segment = segment[16:]
		}
	} else {
		segment = segment[20:]
	}
	f := Frame{
		Timestamp:  t0,
		WireLen:    frameLen,
		Src:        netip.MustParseAddr(s.src),
		Dst:        netip.MustParseAddr(s.dst),
		Proto:      IPProtoTCP,
		SrcPort:    s.sport,
		DstPort:    s.dport,
		Segment:    segment,
		Payload:    s.payload,
		PayloadLen: len(s.payload),
	}
	if s.udp {
		f.Proto = IPProtoUDP
	} else {
		f.Seq, f.Ack, f.Flags, f.Window = s.seq, s.ack, TCPAck|TCPPsh, 512
	}
	if len(f.Payload) == 0 {
		f.Payload = segment[len(segment):]
	}
	return f
}

func decodeOne(t testing.TB, lt LinkType, data []byte, wire int) (Frame, bool, DecoderStats) {
	t.Helper()
	d := NewDecoder(DecoderOptions{})
	var f Frame
	ok := d.Decode(&Packet{Timestamp: t0, Length: wire, LinkType: lt, Data: data}, &f)
	return f, ok, d.Stats()
}

func TestDecodeLinkTypes(t *testing.T) {
	links := []struct {
		lt    LinkType
		vlans int
	}{
		{LinkEthernet, 0}, {LinkEthernet, 1}, {LinkEthernet, 2}, {LinkEthernet, 3},
		{LinkSLL, 0}, {LinkSLL, 1}, {LinkSLL2, 0}, {LinkRaw, 0},
		{LinkNull, 0}, {LinkLoop, 0},
	}
	segs := map[string]seg{
		"tcp4":         tcp4,
		"udp6":         udp6,
		"tcp6-options": {v6: true, src: "2001:db8::1", dst: "2001:db8::2", sport: 1, dport: 443, seq: 1 << 31, tcpOptions: true, payload: []byte("tls")},
		"tcp6-ext":     {v6: true, extHeaders: true, src: "2001:db8::1", dst: "2001:db8::2", sport: 1, dport: 443, payload: []byte("x")},
		"udp4-empty":   {udp: true, src: "192.168.1.1", dst: "224.0.0.251", sport: 5353, dport: 5353},
	}
	for _, l := range links {
		for name, s := range segs {
			t.Run(fmt.Sprintf("%v/vlans=%d/%s", l.lt, l.vlans, name), func(t *testing.T) {
				data := frame(t, l.lt, ipBytes(t, s), l.vlans)
				f, ok, st := decodeOne(t, l.lt, data, len(data))
				if !ok {
					t.Fatalf("Decode = false, stats %+v", st)
				}
				if diff := cmp.Diff(wantFrame(t, s, len(data)), f, cmpAddr); diff != "" {
					t.Errorf("frame (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(DecoderStats{Packets: 1, Decoded: 1}, st); diff != "" {
					t.Errorf("stats (-want +got):\n%s", diff)
				}
			})
		}
	}
	// The IP-only link types take their own version.
	for _, tc := range []struct {
		lt LinkType
		s  seg
	}{{LinkIPv4, tcp4}, {LinkIPv6, udp6}} {
		data := ipBytes(t, tc.s)
		if f, ok, _ := decodeOne(t, tc.lt, data, len(data)); !ok || f.DstPort != tc.s.dport {
			t.Errorf("%v: ok=%v dport=%d", tc.lt, ok, f.DstPort)
		}
	}
}

func TestDecodeEthernetPadding(t *testing.T) {
	s := seg{udp: true, src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2, payload: []byte("hi")}
	data := frame(t, LinkEthernet, ipBytes(t, s), 0)
	data = append(data, make([]byte, 60-len(data))...) // minimum frame size
	data = append(data, 0xde, 0xad, 0xbe, 0xef)        // FCS
	f, ok, _ := decodeOne(t, LinkEthernet, data, len(data))
	if !ok || string(f.Payload) != "hi" || len(f.Segment) != 10 {
		t.Errorf("ok=%v payload=%q segment=%d bytes; want the padding left out", ok, f.Payload, len(f.Segment))
	}
}

func TestDecodeSnaplenCut(t *testing.T) {
	s := tcp4
	s.payload = bytes.Repeat([]byte("a"), 100)
	full := frame(t, LinkEthernet, ipBytes(t, s), 0)
	for _, tc := range []struct {
		name   string
		keep   int
		ok     bool
		stats  DecoderStats
		payLen int
	}{
		{"payload cut", len(full) - 60, true, DecoderStats{Packets: 1, Decoded: 1, Truncated: 1}, 40},
		{"exactly headers", 14 + 20 + 20, true, DecoderStats{Packets: 1, Decoded: 1, Truncated: 1}, 0},
		{"tcp header cut", 14 + 20 + 10, false, DecoderStats{Packets: 1, Truncated: 1}, 0},
		{"ip header cut", 14 + 10, false, DecoderStats{Packets: 1, Truncated: 1}, 0},
		{"link header cut", 10, false, DecoderStats{Packets: 1, Truncated: 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok, st := decodeOne(t, LinkEthernet, full[:tc.keep], len(full))
			if ok != tc.ok {
				t.Fatalf("Decode = %v, want %v", ok, tc.ok)
			}
			if diff := cmp.Diff(tc.stats, st); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if ok && (!f.Truncated || len(f.Payload) != tc.payLen || f.WireLen != len(full)) {
				t.Errorf("Truncated=%v payload=%d wire=%d; want true, %d, %d", f.Truncated, len(f.Payload), f.WireLen, tc.payLen, len(full))
			}
			if ok && f.PayloadLen != 100 {
				t.Errorf("PayloadLen = %d, want the 100 bytes on the wire", f.PayloadLen)
			}
		})
	}
}

// A cut IPv6 segment's payload length comes from the IPv6 header, less the
// extension headers it steps over.
func TestDecodeSnaplenCutIPv6(t *testing.T) {
	s := tcp4
	s.v6, s.src, s.dst = true, "fd00::1", "fd00::2"
	s.payload = bytes.Repeat([]byte("b"), 300)
	ip := ipBytes(t, s)
	// A destination options header (8 bytes, padding only) before TCP.
	withOpts := append([]byte{}, ip[:40]...)
	withOpts[6] = ip6DestOpts
	binary.BigEndian.PutUint16(withOpts[4:], uint16(len(ip)-40+8))
	withOpts = append(withOpts, IPProtoTCP, 0, 1, 4, 0, 0, 0, 0)
	withOpts = append(withOpts, ip[40:]...)
	for name, pkt := range map[string][]byte{"plain": ip, "destination options": withOpts} {
		t.Run(name, func(t *testing.T) {
			keep := len(pkt) - 300 + 10
			f, ok, _ := decodeOne(t, LinkRaw, pkt[:keep], len(pkt))
			if !ok || !f.Truncated || len(f.Payload) != 10 || f.PayloadLen != 300 {
				t.Errorf("ok=%v Truncated=%v payload=%d PayloadLen=%d; want true, true, 10, 300", ok, f.Truncated, len(f.Payload), f.PayloadLen)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	v4 := ipBytes(t, tcp4)
	v6 := ipBytes(t, udp6)
	mod := func(b []byte, f func(b []byte)) []byte {
		b = bytes.Clone(b)
		f(b)
		return b
	}
	arp := frame(t, LinkEthernet, v4, 0)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	lldp := frame(t, LinkEthernet, v4, 0)
	binary.BigEndian.PutUint16(lldp[12:], 0x05dc) // 802.3 length
	icmp := mod(v4, func(b []byte) { b[9] = 1 })
	esp := mod(v6, func(b []byte) { b[6] = 50 })
	nonext := mod(v6, func(b []byte) { b[6] = 59 })
	netlink := frame(t, LinkSLL, v4, 0)
	binary.BigEndian.PutUint16(netlink[2:], arphrdNetlink)
	for _, tc := range []struct {
		name string
		lt   LinkType
		data []byte
		want DecoderStats
	}{
		{"arp", LinkEthernet, arp, DecoderStats{NotIP: 1}},
		{"802.3", LinkEthernet, lldp, DecoderStats{NotIP: 1}},
		{"sll netlink", LinkSLL, netlink, DecoderStats{NotIP: 1}},
		{"null family 7", LinkNull, append([]byte{7, 0, 0, 0}, v4...), DecoderStats{NotIP: 1}},
		{"raw version 5", LinkRaw, mod(v4, func(b []byte) { b[0] = 0x55 }), DecoderStats{NotIP: 1}},
		{"unknown link", 147, v4, DecoderStats{NotIP: 1}},
		{"icmp", LinkRaw, icmp, DecoderStats{NotTCPUDP: 1}},
		{"esp", LinkRaw, esp, DecoderStats{NotTCPUDP: 1}},
		{"no next header", LinkRaw, nonext, DecoderStats{NotTCPUDP: 1}},
		{"v6 in IPv4 link", LinkIPv4, v6, DecoderStats{Malformed: 1}},
		{"ihl 4", LinkRaw, mod(v4, func(b []byte) { b[0] = 0x44 }), DecoderStats{Malformed: 1}},
		{"ip length beyond frame", LinkRaw, mod(v4, func(b []byte) { binary.BigEndian.PutUint16(b[2:], 1500) }), DecoderStats{Malformed: 1}},
		{"ip length below header", LinkRaw, mod(v4, func(b []byte) { binary.BigEndian.PutUint16(b[2:], 19) }), DecoderStats{Malformed: 1}},
		{"ipv6 length beyond frame", LinkRaw, mod(v6, func(b []byte) { binary.BigEndian.PutUint16(b[4:], 1500) }), DecoderStats{Malformed: 1}},
		{"tcp offset 4", LinkRaw, mod(v4, func(b []byte) { b[32] = 0x40 }), DecoderStats{Malformed: 1}},
		{"tcp offset beyond segment", LinkRaw, mod(v4, func(b []byte) { b[32] = 0xf0 }), DecoderStats{Malformed: 1}},
		{"udp length 7", LinkRaw, mod(v6, func(b []byte) { binary.BigEndian.PutUint16(b[44:], 7) }), DecoderStats{Malformed: 1}},
		{"udp length beyond segment", LinkRaw, mod(v6, func(b []byte) { binary.BigEndian.PutUint16(b[44:], 999) }), DecoderStats{Malformed: 1}},
		{"short ethernet", LinkEthernet, []byte{1, 2, 3}, DecoderStats{Malformed: 1}},
		{"vlan tag cut", LinkEthernet, frame(t, LinkEthernet, v4, 1)[:16], DecoderStats{Malformed: 1}},
		{"too many vlan tags", LinkEthernet, frame(t, LinkEthernet, v4, maxVLANTags+1), DecoderStats{NotIP: 1}},
		{"empty raw", LinkRaw, nil, DecoderStats{Malformed: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok, st := decodeOne(t, tc.lt, tc.data, len(tc.data))
			tc.want.Packets = 1
			if ok {
				t.Error("Decode = true")
			}
			if diff := cmp.Diff(tc.want, st); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeOffloadedLength: segmentation offload leaves IP length 0 in
// captured outgoing packets; the captured length stands in.
func TestDecodeOffloadedLength(t *testing.T) {
	s := tcp4
	s.payload = bytes.Repeat([]byte("z"), 3000)
	ip := ipBytes(t, s)
	binary.BigEndian.PutUint16(ip[2:], 0)
	f, ok, _ := decodeOne(t, LinkRaw, ip, len(ip))
	if !ok || len(f.Payload) != 3000 {
		t.Errorf("ok=%v payload=%d, want 3000", ok, len(f.Payload))
	}
}

func TestDecodeAtomicFragment(t *testing.T) {
	// RFC 6946: a fragment header with offset 0 and M=0 is no fragment.
	ip := ipBytes(t, udp6)
	fh := []byte{IPProtoUDP, 0, 0, 0, 0, 0, 0, 42}
	pkt := append(append(bytes.Clone(ip[:40]), fh...), ip[40:]...)
	pkt[6] = ip6Fragment
	binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-40))
	f, ok, st := decodeOne(t, LinkRaw, pkt, len(pkt))
	if !ok || !bytes.Equal(f.Payload, udp6.payload) || st.Fragments != 0 {
		t.Errorf("ok=%v payload=%q stats=%+v", ok, f.Payload, st)
	}
}

func TestDecodeFrameFieldsReset(t *testing.T) {
	d := NewDecoder(DecoderOptions{})
	var f Frame
	tcp := frame(t, LinkEthernet, ipBytes(t, tcp4), 0)
	udp := frame(t, LinkEthernet, ipBytes(t, seg{udp: true, src: "10.0.0.1", dst: "10.0.0.2", sport: 1, dport: 2}), 0)
	d.Decode(&Packet{Timestamp: t0, LinkType: LinkEthernet, Data: tcp, Length: len(tcp)}, &f)
	d.Decode(&Packet{Timestamp: t0, LinkType: LinkEthernet, Data: udp, Length: len(udp)}, &f)
	if f.Seq != 0 || f.Ack != 0 || f.Flags != 0 || f.Window != 0 {
		t.Errorf("TCP fields left over on a UDP frame: %+v", f)
	}
}

func TestDecodeAllocs(t *testing.T) {
	d := NewDecoder(DecoderOptions{})
	pkts := []*Packet{}
	for _, lt := range []LinkType{LinkEthernet, LinkSLL2, LinkNull} {
		for _, s := range []seg{tcp4, udp6} {
			data := frame(t, lt, ipBytes(t, s), 1)
			if lt != LinkEthernet {
				data = frame(t, lt, ipBytes(t, s), 0)
			}
			pkts = append(pkts, &Packet{Timestamp: t0, LinkType: lt, Length: len(data), Data: data})
		}
	}
	var f Frame
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range pkts {
			if !d.Decode(p, &f) {
				t.Fatal("Decode = false")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %.1f times per run, want 0", allocs)
	}
}
