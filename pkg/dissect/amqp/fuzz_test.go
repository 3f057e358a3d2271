package amqp

import (
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzParser feeds arbitrary bytes as both directions, split and gapped
// as the control byte says, and checks that state and entries stay bounded.
func FuzzParser(f *testing.F) {
	var cli, srv []byte
	for _, s := range handshake() {
		if s.Dir == dissect.ClientToServer {
			cli = append(cli, s.Data...)
		} else {
			srv = append(srv, s.Data...)
		}
	}
	f.Add(cli, srv, uint8(9))
	f.Add(cat(methodFrame(1, 60, 40, u16(0), sstr("x"), sstr("k"), u8(0)), headerFrame(1, 3, propContentType|propHeaders, sstr("a/b"),
		[]byte("\x00\x00\x00\x0e\x01hF\x00\x00\x00\x05\x01kA\x00\x00\x00\x00")), bodyFrame(1, "abc")),
		cat(methodFrame(1, 60, 60, sstr("c"), u64(1), u8(0), sstr("x"), sstr("k")), headerFrame(1, 0, 0)), uint8(0x80|5))
	f.Add(cat(protocolHeader, methodFrame(1, 50, 10, u16(0), sstr("q"), u8(0), table())),
		cat(methodFrame(1, 20, 40, u16(406), sstr("PRECONDITION_FAILED"), u16(50), u16(10)), frameOf(frameHeartbeat, 0, nil)), uint8(0x40|2))
	f.Fuzz(func(t *testing.T, cli, srv []byte, ctl uint8) {
		Detect(cli)
		Detect(srv)
		var c dissecttest.Collector
		p := newParser(testConn(64), &c)
		seg := int(ctl&0x1F) + 1
		for i := 0; i < max(len(cli), len(srv)); i += seg {
			if i < len(cli) {
				p.Data(dissect.ClientToServer, cli[i:min(i+seg, len(cli))], t0.Add(time.Duration(i)*time.Millisecond))
			}
			if ctl&0x80 != 0 && i == seg {
				p.Gap(dissect.ServerToClient, 7)
			}
			if i < len(srv) {
				p.Data(dissect.ServerToClient, srv[i:min(i+seg, len(srv))], t0.Add(time.Duration(i+1)*time.Millisecond))
			}
		}
		for d := range 2 {
			if len(p.rd[d].buf) > maxKeepFrame || len(p.waiting[d]) > maxChannels || len(p.content[d]) > maxChannels {
				t.Fatalf("state: %d buffered, %d waiting, %d content", len(p.rd[d].buf), len(p.waiting[d]), len(p.content[d]))
			}
		}
		p.End(t0.Add(time.Hour))
		// Each entry needs a method frame of at least 12 bytes.
		if len(c.Entries) > (len(cli)+len(srv))/12+1 {
			t.Fatalf("%d entries from %d bytes", len(c.Entries), len(cli)+len(srv))
		}
		for _, e := range c.Entries {
			a := e.AMQP
			if a == nil || len(a.Properties) > maxProps || len(a.Exchange) > maxPropValue+4 || (a.Body != nil && len(a.Body.Data) > 2*64) {
				t.Fatalf("unbounded entry %+v", e)
			}
		}
	})
}

func BenchmarkPublishDeliver(b *testing.B) {
	body := "{\"order\":1234,\"items\":[\"a\",\"b\"],\"total\":99.5}"
	pub := cat(methodFrame(1, 60, 40, u16(0), sstr("shop"), sstr("orders.created"), u8(0)),
		headerFrame(1, len(body), propContentType|propDeliveryMode, sstr("application/json"), u8(2)), bodyFrame(1, body))
	del := cat(methodFrame(1, 60, 60, sstr("ctag-1"), u64(1), u8(0), sstr("shop"), sstr("orders.created")),
		headerFrame(1, len(body), propContentType|propDeliveryMode, sstr("application/json"), u8(2)), bodyFrame(1, body))
	b.SetBytes(int64(len(pub) + len(del)))
	b.ReportAllocs()
	p := newParser(testConn(1<<10), dissect.EmitFunc(func(*entry.Entry) {}))
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Data(dissect.ClientToServer, pub, ts)
		p.Data(dissect.ServerToClient, del, ts)
	}
}

func BenchmarkLargeBody(b *testing.B) {
	var msg []byte
	msg = append(msg, methodFrame(1, 60, 40, u16(0), sstr("x"), sstr("k"), u8(0))...)
	msg = append(msg, headerFrame(1, 8*131064, 0)...)
	chunk := string(make([]byte, 131064))
	for range 8 {
		msg = append(msg, bodyFrame(1, chunk)...)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	p := newParser(testConn(16<<10), dissect.EmitFunc(func(*entry.Entry) {}))
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		for off := 0; off < len(msg); off += 1448 {
			p.Data(dissect.ClientToServer, msg[off:min(off+1448, len(msg))], ts)
		}
	}
}

func BenchmarkDetect(b *testing.B) {
	q := methodFrame(1, 60, 40, u16(0), sstr("shop"), sstr("orders.created"), u8(0))
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		Detect(q)
	}
}
