package dns

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Builders of wire-format messages for tests. Names are written without
// compression unless a test writes pointers itself.

type rr struct {
	name string
	typ  uint16
	ttl  uint32
	data []byte
}

type msgSpec struct {
	id, flags  uint16
	qname      string
	qtype      uint16
	qclass     uint16 // 0 means IN
	noQuestion bool
	an, ns, ar []rr
}

func wireName(name string) []byte {
	var b []byte
	name = strings.TrimSuffix(name, ".")
	if name != "" {
		for _, l := range strings.Split(name, ".") {
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	return append(b, 0)
}

func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func (s msgSpec) bytes() []byte {
	qd := uint16(1)
	if s.noQuestion {
		qd = 0
	}
	b := cat(u16(s.id), u16(s.flags), u16(qd), u16(uint16(len(s.an))), u16(uint16(len(s.ns))), u16(uint16(len(s.ar))))
	if !s.noQuestion {
		class := s.qclass
		if class == 0 {
			class = 1
		}
		b = cat(b, wireName(s.qname), u16(s.qtype), u16(class))
	}
	for _, sec := range [][]rr{s.an, s.ns, s.ar} {
		for _, r := range sec {
			class := uint16(1)
			if r.typ == typeOPT {
				class = 1232 // UDP payload size
			}
			b = cat(b, wireName(r.name), u16(r.typ), u16(class), u32(r.ttl), u16(uint16(len(r.data))), r.data)
		}
	}
	return b
}

func query(id uint16, name string, qtype uint16) []byte {
	return msgSpec{id: id, flags: 0x0100, qname: name, qtype: qtype}.bytes()
}

func tcpFrame(msg []byte) []byte { return cat(u16(uint16(len(msg))), msg) }

func ip4(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
func ip6(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }

// collector gathers emitted entries.
type collector struct{ entries []*entry.Entry }

func (c *collector) Emit(e *entry.Entry) { c.entries = append(c.entries, e) }

var (
	t0         = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testClient = netip.MustParseAddrPort("10.0.0.5:40000")
	testServer = netip.MustParseAddrPort("10.0.0.10:53")
)

func testConn(transport string) *dissect.Conn {
	opts := dissect.DefaultOptions()
	return &dissect.Conn{Transport: transport, Client: testClient, Server: testServer, FlowID: "f1", Opts: &opts}
}
