package dns

import (
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

func seedMessages() [][]byte {
	return [][]byte{
		query(0x1234, "web.shark.test", typeA),
		msgSpec{id: 0x1234, flags: 0x8580, qname: "web.shark.test", qtype: typeA,
			an: []rr{
				{name: "web.shark.test", typ: typeCNAME, ttl: 30, data: wireName("host.shark.test")},
				{name: "host.shark.test", typ: typeA, ttl: 30, data: ip4("10.1.2.3")},
			},
			ns: []rr{{name: "shark.test", typ: typeSOA, ttl: 60, data: cat(wireName("ns"), wireName("h"), u32(1), u32(2), u32(3), u32(4), u32(5))}},
			ar: []rr{{name: "", typ: typeOPT, ttl: 0x8000}},
		}.bytes(),
		msgSpec{id: 7, flags: 0x8180, qname: "x.test", qtype: typeHTTPS,
			an: []rr{{name: "x.test", typ: typeHTTPS, ttl: 1, data: cat(u16(1), wireName("."), u16(1), u16(3), []byte{2, 'h', '2'})}}}.bytes(),
		msgSpec{id: 0, flags: 0x8400, noQuestion: true,
			an: []rr{{name: "_http._tcp.local", typ: typePTR, ttl: 120, data: wireName("p._http._tcp.local")}}}.bytes(),
		// A compressed answer pointing at the question name.
		cat(u16(5), u16(0x8180), u16(1), u16(1), u16(0), u16(0), wireName("a.example"), u16(1), u16(1),
			[]byte{0xC0, 12}, u16(1), u16(1), u32(60), u16(4), ip4("192.0.2.1")),
		// A pointer loop.
		cat(u16(5), u16(0x8180), u16(1), u16(1), u16(0), u16(0), []byte{0xC0, 12}, u16(1), u16(1)),
	}
}

// checkEntries asserts the bounds every entry must keep.
func checkEntries(t *testing.T, es []*entry.Entry) {
	t.Helper()
	const maxText = 4 * maxNameWire
	for _, e := range es {
		d := e.DNS
		if d == nil || len(e.Path) > maxText || len(d.QName) > maxText {
			t.Fatalf("bad entry %+v", e)
		}
		if len(d.Answers) > maxSectionKept || len(d.Authority) > maxSectionKept {
			t.Fatalf("%d answers, %d authority", len(d.Answers), len(d.Authority))
		}
		for _, rs := range [][]entry.DNSRecord{d.Answers, d.Authority} {
			for _, r := range rs {
				if len(r.Data) > maxDataText || len(r.Name) > maxText {
					t.Fatalf("record too big: %d %d", len(r.Data), len(r.Name))
				}
			}
		}
	}
}

func FuzzDNSMessage(f *testing.F) {
	for _, m := range seedMessages() {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		Detect(data)
		var c collector
		p := newDatagram(testConn("udp"), &c)
		p.Datagram(dissect.ClientToServer, data, t0)
		if len(data) > 2 { // the same message with QR flipped, to pair
			flipped := append([]byte(nil), data...)
			flipped[2] ^= 0x80
			p.Datagram(dissect.ServerToClient, flipped, t0.Add(time.Millisecond))
		}
		p.End(t0.Add(time.Second))
		if len(c.entries) > 2 {
			t.Fatalf("%d entries from two datagrams", len(c.entries))
		}
		checkEntries(t, c.entries)
	})
}

func FuzzDNSTCP(f *testing.F) {
	for _, m := range seedMessages() {
		f.Add(cat(tcpFrame(m), tcpFrame(m)), uint8(7))
		f.Add(tcpFrame(m), uint8(0x80|3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		Detect(data)
		var c collector
		p := newStream(testConn("tcp"), &c).(*streamParser)
		seg := int(split&0x3F) + 1
		for i, dir := 0, dissect.ClientToServer; i < len(data); i += seg {
			chunk := data[i:min(i+seg, len(data))]
			p.Data(dir, chunk, t0.Add(time.Duration(i)*time.Millisecond))
			if split&0x80 != 0 && i == seg {
				p.Gap(dir, 3)
			}
			if split&0x40 != 0 {
				dir = dir.Reverse()
			}
		}
		for _, r := range p.dirs {
			if len(r.buf) > 2+65535 {
				t.Fatalf("buffer %d", len(r.buf))
			}
		}
		p.End(t0.Add(time.Minute))
		if len(c.entries) > len(data)/headerLen+1 {
			t.Fatalf("%d entries from %d bytes", len(c.entries), len(data))
		}
		checkEntries(t, c.entries)
	})
}

func BenchmarkUDPPair(b *testing.B) {
	ms := seedMessages()
	q, r := ms[0], ms[1]
	b.SetBytes(int64(len(q) + len(r)))
	b.ReportAllocs()
	p := newDatagram(testConn("udp"), dissect.EmitFunc(func(*entry.Entry) {}))
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Datagram(dissect.ClientToServer, q, ts)
		p.Datagram(dissect.ServerToClient, r, ts)
	}
}

func BenchmarkTCPPair(b *testing.B) {
	ms := seedMessages()
	q, r := tcpFrame(ms[0]), tcpFrame(ms[1])
	b.SetBytes(int64(len(q) + len(r)))
	b.ReportAllocs()
	p := newStream(testConn("tcp"), dissect.EmitFunc(func(*entry.Entry) {}))
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Data(dissect.ClientToServer, q, ts)
		p.Data(dissect.ServerToClient, r, ts)
	}
}

func BenchmarkDetect(b *testing.B) {
	q := tcpFrame(seedMessages()[0])
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		Detect(q)
	}
}
