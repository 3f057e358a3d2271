package dns

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

func TestRecordData(t *testing.T) {
	svcParams := cat(
		u16(1), u16(6), []byte{2, 'h', '2', 2, 'h', '3'}, // alpn=h2,h3
		u16(3), u16(2), u16(8443), // port
		u16(4), u16(8), ip4("192.0.2.1"), ip4("192.0.2.2"), // ipv4hint
		u16(6), u16(16), ip6("2001:db8::1"), // ipv6hint
		u16(9), u16(2), []byte{0xab, 0xcd}, // unknown key
	)
	tests := []struct {
		name string
		typ  uint16
		data []byte
		want string
	}{
		{"A", typeA, ip4("10.1.2.3"), "10.1.2.3"},
		{"AAAA", typeAAAA, ip6("fd00::1"), "fd00::1"},
		{"A wrong length", typeA, []byte{1, 2, 3}, `\# 3 010203`},
		{"CNAME", typeCNAME, wireName("web.example.com"), "web.example.com."},
		{"PTR root", typePTR, wireName("."), "."},
		{"MX", typeMX, cat(u16(10), wireName("mail.example")), "10 mail.example."},
		{"TXT", typeTXT, cat([]byte{11}, []byte("hello world"), []byte{6}, []byte(`a"b\c`+"\xff")), `"hello world" "a\"b\\c\255"`},
		{"TXT empty string", typeTXT, []byte{0}, `""`},
		{"SRV", typeSRV, cat(u16(1), u16(5), u16(8080), wireName("web.shark.test")), "1 5 8080 web.shark.test."},
		{"SOA", typeSOA, cat(wireName("ns1.example"), wireName("hostmaster.example"), u32(2024010101), u32(7200), u32(3600), u32(1209600), u32(300)),
			"ns1.example. hostmaster.example. 2024010101 7200 3600 1209600 300"},
		{"CAA", typeCAA, cat([]byte{0, 5}, []byte("issue"), []byte("letsencrypt.org")), `0 issue "letsencrypt.org"`},
		{"HTTPS", typeHTTPS, cat(u16(1), wireName("."), svcParams),
			"1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1 key9=abcd"},
		{"SVCB alias", typeSVCB, cat(u16(0), wireName("svc.example")), "0 svc.example."},
		{"DS", typeDS, cat(u16(20326), []byte{8, 2}, []byte{0xde, 0xad}), "20326 8 2 dead"},
		{"HINFO", typeHINFO, cat([]byte{3}, []byte("x86"), []byte{5}, []byte("Linux")), `"x86" "Linux"`},
		{"unknown", 65280, []byte{0xca, 0xfe}, `\# 2 cafe`},
		{"empty unknown", 65280, nil, `\# 0`},
		{"trailing garbage", typeCNAME, cat(wireName("a.b"), []byte{1}), `\# 6 0161016200` + "01"},
		{"hex capped", 65280, bytes.Repeat([]byte{0xaa}, 200), `\# 200 ` + strings.Repeat("aa", maxHexData) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := msgSpec{id: 1, flags: 0x8180, qname: "q.example", qtype: tt.typ,
				an: []rr{{name: "q.example", typ: tt.typ, ttl: 60, data: tt.data}}}.bytes()
			m, err := parseMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			if m.problem != "" || len(m.answers) != 1 {
				t.Fatalf("problem %q, %d answers", m.problem, len(m.answers))
			}
			want := entry.DNSRecord{Name: "q.example", Type: typeName(tt.typ), TTL: 60, Data: tt.want}
			if diff := cmp.Diff(want, m.answers[0]); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTXTDataCapped(t *testing.T) {
	var data []byte
	for i := 0; i < 20; i++ {
		data = append(data, 255)
		data = append(data, bytes.Repeat([]byte{'x'}, 255)...)
	}
	got := renderRData(data, typeTXT, 0, len(data))
	if len(got) != maxDataText || !strings.HasSuffix(got, "...") {
		t.Errorf("len %d, suffix %q", len(got), got[len(got)-5:])
	}
}

func TestNames(t *testing.T) {
	hdr := make([]byte, headerLen)
	tests := []struct {
		name    string
		msg     []byte
		off     int
		want    string
		next    int
		wantErr error
	}{
		{"plain", cat(hdr, wireName("www.Example.COM")), 12, "www.Example.COM", 12 + 17, nil},
		{"root", cat(hdr, []byte{0}), 12, ".", 13, nil},
		{"escapes", cat(hdr, []byte{4, 'a', '.', 'b', ' ', 2, 0x5c, 0x07, 0}), 12, `a\.b\032.\\\007`, 21, nil},
		{"pointer", cat(hdr, wireName("example.com"), []byte{3, 'w', 'w', 'w', 0xC0, 12}), 25, "www.example.com", 31, nil},
		{"pointer to pointer", cat(hdr, wireName("a"), []byte{0xC0, 12, 0xC0, 15}), 17, "a", 19, nil},
		{"self loop", cat(hdr, []byte{0xC0, 12}), 12, "", 0, errPointers},
		{"two-step loop", cat(hdr, []byte{1, 'x', 0xC0, 16, 1, 'y', 0xC0, 12}), 12, "", 0, errPointers},
		{"pointer past end", cat(hdr, []byte{0xC0, 200}), 12, "", 0, errShort},
		{"truncated label", cat(hdr, []byte{5, 'a', 'b'}), 12, "", 0, errShort},
		{"no terminator", cat(hdr, []byte{1, 'a'}), 12, "", 0, errShort},
		{"extended label", cat(hdr, []byte{0x41, 0}), 12, "", 0, errLabelType},
		{"too long", cat(hdr, bytes.Repeat(cat([]byte{63}, bytes.Repeat([]byte{'a'}, 63)), 4), []byte{0}), 12, "", 0, errNameLong},
		{"just fits", cat(hdr, bytes.Repeat(cat([]byte{63}, bytes.Repeat([]byte{'a'}, 63)), 3), []byte{61}, bytes.Repeat([]byte{'b'}, 61), []byte{0}), 12,
			strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61), 12 + 255, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := appendName(nil, tt.msg, tt.off)
			if err != tt.wantErr {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if string(got) != tt.want || next != tt.next {
				t.Errorf("got %q next %d, want %q next %d", got, next, tt.want, tt.next)
			}
		})
	}
}

func TestParseMessageErrors(t *testing.T) {
	good := msgSpec{id: 7, flags: 0x8180, qname: "a.example", qtype: typeA,
		an: []rr{{name: "a.example", typ: typeA, ttl: 5, data: ip4("1.2.3.4")}}}.bytes()
	// A header that claims more answers than there are.
	lying := append([]byte(nil), good...)
	lying[7] = 40
	m, err := parseMessage(lying)
	if err != nil {
		t.Fatal(err)
	}
	if m.problem != "malformed answer section" || len(m.answers) != 1 {
		t.Errorf("problem %q answers %d", m.problem, len(m.answers))
	}
	if _, err := parseMessage(good[:11]); err != errShort {
		t.Errorf("short header: err %v", err)
	}
	if _, err := parseMessage(good[:20]); err == nil {
		t.Error("cut question: no error")
	}
	q := msgSpec{id: 1, noQuestion: true}.bytes()
	if _, err := parseMessage(q); err != errNoQuestion {
		t.Errorf("query without question: err %v", err)
	}
}

func TestRecordsCapped(t *testing.T) {
	var an []rr
	for i := 0; i < 100; i++ {
		an = append(an, rr{name: "x", typ: typeA, ttl: 1, data: ip4("10.0.0.1")})
	}
	m, err := parseMessage(msgSpec{id: 1, flags: 0x8180, qname: "x", qtype: typeA, an: an}.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.answers) != maxSectionKept || m.dropped != 100-maxSectionKept {
		t.Errorf("kept %d dropped %d", len(m.answers), m.dropped)
	}
}

func TestUDPPair(t *testing.T) {
	var c collector
	p := newDatagram(testConn("udp"), &c)
	q := query(0x1234, "Web.Shark.test", typeA)
	resp := msgSpec{id: 0x1234, flags: 0x8580, qname: "web.shark.test", qtype: typeA,
		an: []rr{
			{name: "web.shark.test", typ: typeCNAME, ttl: 30, data: wireName("host.shark.test")},
			{name: "host.shark.test", typ: typeA, ttl: 30, data: ip4("10.1.2.3")},
		},
		ns: []rr{{name: "shark.test", typ: typeNS, ttl: 3600, data: wireName("ns.shark.test")}},
		ar: []rr{{name: "", typ: typeOPT, ttl: 0x8000}},
	}.bytes()
	p.Datagram(dissect.ClientToServer, q, t0)
	p.Datagram(dissect.ServerToClient, resp, t0.Add(1500*time.Microsecond))
	p.End(t0.Add(time.Second))

	want := []*entry.Entry{{
		V: entry.Version, TS: t0, ElapsedUS: 1500, Proto: "dns",
		Method: "A", Path: "Web.Shark.test", Status: "NOERROR",
		Src:  entry.Endpoint{IP: "10.0.0.5", Port: 40000},
		Dst:  entry.Endpoint{IP: "10.0.0.10", Port: 53},
		Size: entry.Size{Request: int64(len(q)), Response: int64(len(resp))}, Source: "file", FlowID: "f1",
		DNS: &entry.DNS{
			ID: 0x1234, Transport: "udp", QName: "Web.Shark.test", QType: "A", QClass: "IN", RCode: "NOERROR",
			Flags: []string{"aa", "rd", "ra", "do"},
			Answers: []entry.DNSRecord{
				{Name: "web.shark.test", Type: "CNAME", TTL: 30, Data: "host.shark.test."},
				{Name: "host.shark.test", Type: "A", TTL: 30, Data: "10.1.2.3"},
			},
			Authority: []entry.DNSRecord{{Name: "shark.test", Type: "NS", TTL: 3600, Data: "ns.shark.test."}},
		},
	}}
	if diff := cmp.Diff(want, c.entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestExtendedRCode(t *testing.T) {
	var c collector
	p := newDatagram(testConn("udp"), &c)
	p.Datagram(dissect.ClientToServer, query(9, "x.test", typeAAAA), t0)
	p.Datagram(dissect.ServerToClient, msgSpec{id: 9, flags: 0x8100, qname: "x.test", qtype: typeAAAA,
		ar: []rr{{name: "", typ: typeOPT, ttl: 1 << 24}}}.bytes(), t0)
	if len(c.entries) != 1 || c.entries[0].Status != "BADVERS" {
		t.Fatalf("entries %+v", c.entries)
	}
}

func summary(es []*entry.Entry) []string {
	var s []string
	for _, e := range es {
		s = append(s, strings.Join([]string{e.Method, e.Path, e.Status, e.Error, e.TS.Format("05.000")}, "|"))
	}
	return s
}

func TestUnpaired(t *testing.T) {
	var c collector
	p := newDatagram(testConn("udp"), &c)
	nx := msgSpec{id: 2, flags: 0x8183, qname: "gone.test", qtype: typeA}.bytes()
	p.Datagram(dissect.ClientToServer, query(1, "slow.test", typeA), t0)
	p.Datagram(dissect.ServerToClient, nx, t0.Add(time.Second))                             // no query
	p.Datagram(dissect.ClientToServer, query(1, "slow.test", typeA), t0.Add(2*time.Second)) // retransmit
	p.Datagram(dissect.ClientToServer, query(3, "late.test", typeMX), t0.Add(3*time.Second))
	p.Datagram(dissect.ClientToServer, []byte("garbage"), t0.Add(5*time.Second)) // expires slow.test
	p.End(t0.Add(6 * time.Second))                                               // late.test
	want := []string{
		"A|gone.test|NXDOMAIN|no query|01.000",
		"A|slow.test||no response|00.000",
		"MX|late.test||no response|03.000",
	}
	if diff := cmp.Diff(want, summary(c.entries)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(dissect.ParserStats{Entries: 3, Dropped: 1}, p.(dissect.StatsReporter).Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestPendingBounded(t *testing.T) {
	var c collector
	p := newDatagram(testConn("udp"), &c).(*datagramParser)
	for i := 0; i < maxPending+10; i++ {
		p.Datagram(dissect.ClientToServer, query(uint16(i), "n.test", typeA), t0)
	}
	if len(c.entries) != 10 || c.entries[0].DNS.ID != 0 || c.entries[9].DNS.ID != 9 {
		t.Fatalf("evicted %d entries", len(c.entries))
	}
	if len(p.t.byKey) != maxPending {
		t.Errorf("waiting %d", len(p.t.byKey))
	}
	// Answer everything out of order: the FIFO must not grow without bound.
	for i := maxPending + 9; i >= 10; i-- {
		resp := msgSpec{id: uint16(i), flags: 0x8180, qname: "n.test", qtype: typeA}.bytes()
		p.Datagram(dissect.ServerToClient, resp, t0)
		p.Datagram(dissect.ClientToServer, query(uint16(i+5000), "m.test", typeA), t0)
		p.Datagram(dissect.ServerToClient, msgSpec{id: uint16(i + 5000), flags: 0x8180, qname: "m.test", qtype: typeA}.bytes(), t0)
	}
	if len(p.t.fifo) > 4*maxPending+1 || len(p.t.byKey) != 0 {
		t.Errorf("fifo %d waiting %d", len(p.t.fifo), len(p.t.byKey))
	}
	p.End(t0)
	if len(c.entries) != 10+2*maxPending {
		t.Errorf("entries %d", len(c.entries))
	}
}

func TestMDNS(t *testing.T) {
	var c collector
	p := newDatagram(testConn("udp"), &c)
	q := msgSpec{id: 0, flags: 0, qname: "_http._tcp.local", qtype: typePTR, qclass: 0x8001}.bytes()
	resp := msgSpec{id: 0, flags: 0x8400, noQuestion: true,
		an: []rr{{name: "_http._tcp.local", typ: typePTR, ttl: 120, data: wireName("printer._http._tcp.local")}}}.bytes()
	p.Datagram(dissect.ClientToServer, q, t0)
	p.Datagram(dissect.ServerToClient, resp, t0.Add(time.Millisecond))
	p.End(t0)
	want := []string{"PTR|_http._tcp.local|NOERROR||00.000"}
	if diff := cmp.Diff(want, summary(c.entries)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if d := c.entries[0].DNS; d.QClass != "IN" || d.Answers[0].Data != "printer._http._tcp.local." {
		t.Errorf("dns %+v", d)
	}
}

func TestTCP(t *testing.T) {
	var c collector
	p := newStream(testConn("tcp"), &c)
	q1, q2 := tcpFrame(query(1, "a.test", typeA)), tcpFrame(query(2, "b.test", typeTXT))
	r2 := tcpFrame(msgSpec{id: 2, flags: 0x8180, qname: "b.test", qtype: typeTXT,
		an: []rr{{name: "b.test", typ: typeTXT, ttl: 1, data: cat([]byte{2}, []byte("hi"))}}}.bytes())
	r1 := tcpFrame(msgSpec{id: 1, flags: 0x8183, qname: "a.test", qtype: typeA}.bytes())

	p.Data(dissect.ClientToServer, cat(q1, q2), t0) // pipelined
	// Responses out of order, one byte per segment, so every frame spans segments.
	for i, b := range cat(r2, r1) {
		p.Data(dissect.ServerToClient, []byte{b}, t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	p.End(t0.Add(time.Second))
	want := []string{"TXT|b.test|NOERROR||00.000", "A|a.test|NXDOMAIN||00.000"}
	if diff := cmp.Diff(want, summary(c.entries)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	e := c.entries[0]
	if e.Size.Request != int64(len(q2)) || e.Size.Response != int64(len(r2)) || e.ElapsedUS != int64(len(r2))*1000 {
		t.Errorf("size %+v elapsed %d", e.Size, e.ElapsedUS)
	}
	if e.DNS.Transport != "tcp" || e.DNS.Answers[0].Data != `"hi"` {
		t.Errorf("dns %+v", e.DNS)
	}
}

func TestTCPGap(t *testing.T) {
	var c collector
	p := newStream(testConn("tcp"), &c)
	q1 := tcpFrame(query(1, "a.test", typeA))
	q2 := tcpFrame(query(2, "b.test", typeA))
	p.Data(dissect.ClientToServer, q1[:5], t0)
	p.Gap(dissect.ClientToServer, 10)
	p.Data(dissect.ClientToServer, q1[15:], t0) // the rest of the lost frame: skipped
	p.Data(dissect.ClientToServer, q2, t0)      // a frame start: resynchronised
	p.End(t0)
	want := []string{"A|b.test||no response|00.000"}
	if diff := cmp.Diff(want, summary(c.entries)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	wantStats := dissect.ParserStats{Entries: 1, Resyncs: 1, Skipped: int64(5 + len(q1) - 15)}
	if diff := cmp.Diff(wantStats, p.(dissect.StatsReporter).Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestDetect(t *testing.T) {
	q := query(0xbeef, "example.com", typeA)
	r := msgSpec{id: 0xbeef, flags: 0x8180, qname: "example.com", qtype: typeA}.bytes()
	tests := []struct {
		name       string
		data       []byte
		want       dissect.Verdict
		fromClient bool
	}{
		{"udp query", q, dissect.Yes, true},
		{"udp response", r, dissect.Yes, false},
		{"tcp query", tcpFrame(q), dissect.Yes, true},
		{"tcp response", tcpFrame(r), dissect.Yes, false},
		{"tcp query cut", tcpFrame(q)[:20], dissect.Maybe, false},
		{"tcp prefix only", tcpFrame(q)[:2], dissect.Maybe, false},
		{"tiny", q[:5], dissect.Maybe, false},
		{"http", []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), dissect.No, false},
		{"tls", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xaa, 0xbb, 0xcc}, dissect.No, false},
		{"zero questions", msgSpec{id: 1, noQuestion: true}.bytes(), dissect.No, false},
		{"bad opcode", msgSpec{id: 1, flags: 0x1000, qname: "a", qtype: 1}.bytes(), dissect.No, false},
		{"query with rcode", msgSpec{id: 1, flags: 0x0003, qname: "a", qtype: 1}.bytes(), dissect.No, false},
		{"bad class", msgSpec{id: 1, qname: "a", qtype: 1, qclass: 77}.bytes(), dissect.No, false},
		{"qtype zero", msgSpec{id: 1, qname: "a", qtype: 0}.bytes(), dissect.No, false},
		{"notify", msgSpec{id: 1, flags: 0x2400, qname: "zone.test", qtype: typeSOA}.bytes(), dissect.Yes, true},
		{"mdns QU", msgSpec{qname: "_ipp._tcp.local", qtype: typePTR, qclass: 0x8001}.bytes(), dissect.Yes, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, from := Detect(tt.data)
			if v != tt.want || from != tt.fromClient {
				t.Errorf("Detect = %v, %v; want %v, %v", v, from, tt.want, tt.fromClient)
			}
		})
	}
}

func TestProtocol(t *testing.T) {
	p := Protocol()
	if p.Name != "dns" || !p.HasPort(53) || !p.HasPort(5353) || !p.HasPort(5355) || p.NewStream == nil || p.NewDatagram == nil {
		t.Errorf("protocol %+v", p)
	}
}
