package worker

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

var (
	bulkClient = netip.MustParseAddrPort("10.0.0.1:40000")
	bulkServer = netip.MustParseAddrPort("10.0.0.2:9000")
)

// tcpPacket builds a raw IPv4 (or IPv6) TCP packet with n payload bytes.
func tcpPacket(src, dst netip.AddrPort, seq uint32, flags uint8, n int) []byte {
	tcp := make([]byte, 20+n)
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 5 << 4
	tcp[13] = flags
	if src.Addr().Is4() {
		ip := make([]byte, 20, 20+len(tcp))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		ip[6] = 0x40 // don't fragment
		ip[9] = capture.IPProtoTCP
		s, d := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		return append(ip, tcp...)
	}
	ip := make([]byte, 40, 40+len(tcp))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
	ip[6] = capture.IPProtoTCP
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	return append(ip, tcp...)
}

// sumRun feeds packets through a summarizer whose counted set holds the
// bulk flow, and returns what dissection would get: each packet not
// taken, after the summaries emitted before it, then those of the final
// flush, decoded.
func sumRun(t *testing.T, flows *countedFlows, pkts [][]byte) []capture.Frame {
	t.Helper()
	s := newSummarizer(flows)
	var out []capture.Frame
	dec := capture.NewDecoder(capture.DecoderOptions{})
	ts := time.Unix(1700000000, 0)
	emit := func(p *capture.Packet) {
		var f capture.Frame
		if !dec.Decode(p, &f) {
			t.Fatalf("summary does not decode: % x", p.Data)
		}
		f.Segment, f.Payload = nil, nil
		out = append(out, f)
	}
	for _, b := range pkts {
		ts = ts.Add(time.Millisecond)
		p := capture.Packet{Timestamp: ts, Length: len(b), LinkType: capture.LinkRaw, Data: b}
		if !s.take(&p, emit) {
			emit(&p)
		}
	}
	s.flush(emit)
	return out
}

type sumFrame struct {
	From       string
	Seq        uint32
	Flags      uint8
	PayloadLen int
	Segments   int
	Truncated  bool
}

func sumFrames(fs []capture.Frame) []sumFrame {
	out := make([]sumFrame, 0, len(fs))
	for _, f := range fs {
		out = append(out, sumFrame{netip.AddrPortFrom(f.Src, f.SrcPort).String(), f.Seq, f.Flags, f.PayloadLen, f.Segments, f.Truncated})
	}
	return out
}

func TestSummarizer(t *testing.T) {
	const ack, psh, fin, syn = capture.TCPAck, capture.TCPAck | capture.TCPPsh, capture.TCPAck | capture.TCPFin, capture.TCPSyn
	c, s := bulkClient.String(), bulkServer.String()
	v6c, v6s := netip.MustParseAddrPort("[fd00::1]:40000"), netip.MustParseAddrPort("[fd00::2]:9000")
	for _, tc := range []struct {
		name    string
		counted []netip.AddrPort // pairs of ends
		pkts    [][]byte
		want    []sumFrame
	}{{
		name:    "in order, both ways, then FIN",
		counted: []netip.AddrPort{bulkClient, bulkServer},
		pkts: [][]byte{
			tcpPacket(bulkServer, bulkClient, 100, psh, 1000),
			tcpPacket(bulkClient, bulkServer, 7, ack, 0),
			tcpPacket(bulkServer, bulkClient, 1100, ack, 1000),
			tcpPacket(bulkServer, bulkClient, 2100, psh, 500),
			tcpPacket(bulkClient, bulkServer, 7, ack, 0),
			tcpPacket(bulkServer, bulkClient, 2600, fin, 0),
		},
		want: []sumFrame{ // a flow's directions in address order
			{c, 7, ack, 0, 0, false},
			{s, 100, psh, 2500, 3, true},
			{s, 2600, fin, 0, 0, false},
		},
	}, {
		name:    "a retransmission starts a new summary",
		counted: []netip.AddrPort{bulkClient, bulkServer},
		pkts: [][]byte{
			tcpPacket(bulkServer, bulkClient, 100, psh, 1000),
			tcpPacket(bulkServer, bulkClient, 1100, psh, 1000),
			tcpPacket(bulkServer, bulkClient, 1100, psh, 1000),
			tcpPacket(bulkServer, bulkClient, 2100, psh, 1000),
		},
		want: []sumFrame{
			{s, 100, psh, 2000, 2, true},
			{s, 1100, psh, 2000, 2, true},
		},
	}, {
		name:    "the IP length bounds a summary",
		counted: []netip.AddrPort{bulkClient, bulkServer},
		pkts: func() (ps [][]byte) {
			for i := range 50 {
				ps = append(ps, tcpPacket(bulkServer, bulkClient, uint32(1448*i), ack, 1448))
			}
			return ps
		}(),
		want: []sumFrame{
			{s, 0, ack, 45 * 1448, 45, true}, // 40 + 45*1448 <= 65535 < 40 + 46*1448
			{s, 45 * 1448, ack, 5 * 1448, 5, true},
		},
	}, {
		name: "a flow not counted goes whole",
		pkts: [][]byte{
			tcpPacket(bulkServer, bulkClient, 100, psh, 10),
			tcpPacket(bulkServer, bulkClient, 110, psh, 10),
		},
		want: []sumFrame{{s, 100, psh, 10, 0, false}, {s, 110, psh, 10, 0, false}},
	}, {
		name:    "a SYN on a counted flow's ports ends its counting",
		counted: []netip.AddrPort{bulkClient, bulkServer},
		pkts: [][]byte{
			tcpPacket(bulkServer, bulkClient, 100, psh, 10),
			tcpPacket(bulkClient, bulkServer, 5000, syn, 0),
			tcpPacket(bulkClient, bulkServer, 5001, psh, 10),
		},
		want: []sumFrame{{s, 100, psh, 10, 1, true}, {c, 5000, syn, 0, 0, false}, {c, 5001, psh, 10, 0, false}},
	}, {
		name:    "IPv6",
		counted: []netip.AddrPort{v6c, v6s},
		pkts: [][]byte{
			tcpPacket(v6s, v6c, 1, psh, 1000),
			tcpPacket(v6s, v6c, 1001, psh, 1000),
		},
		want: []sumFrame{{v6s.String(), 1, psh, 2000, 2, true}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			flows := &countedFlows{}
			for i := 0; i < len(tc.counted); i += 2 {
				flows.set(tc.counted[i], tc.counted[i+1], true)
			}
			got := sumFrames(sumRun(t, flows, tc.pkts))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("dissection gets (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseTCP: any bytes, no panic, and what parses is consistent.
func FuzzParseTCP(f *testing.F) {
	f.Add(tcpPacket(bulkClient, bulkServer, 1, capture.TCPAck, 100))
	f.Add(tcpPacket(netip.MustParseAddrPort("[fd00::1]:1"), netip.MustParseAddrPort("[fd00::2]:2"), 1, capture.TCPAck, 3))
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := parseTCP(b)
		if !ok {
			return
		}
		if h.hlen > len(b) || h.hlen > maxSummaryHeader || h.payload < 0 || h.payload > 0xffff {
			t.Fatalf("parsed %+v from %d bytes", h, len(b))
		}
		flows := &countedFlows{}
		flows.set(h.src, h.dst, true)
		s := newSummarizer(flows)
		p := capture.Packet{Length: len(b), LinkType: capture.LinkRaw, Data: b}
		emit := func(p *capture.Packet) {
			if len(p.Data) > maxSummaryHeader || p.Length < len(p.Data) {
				t.Fatalf("summary of %d bytes, length %d", len(p.Data), p.Length)
			}
		}
		s.take(&p, emit)
		s.take(&p, emit)
		s.flush(emit)
	})
}
