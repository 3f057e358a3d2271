package pipeline_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/assemble"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/all"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
)

// FuzzReassemblyGlue drives the reassembly glue (assembler, detection,
// every dissector, JSON rendering) with hostile segment sequences: each
// record of the input is one TCP or UDP segment between two fixed hosts,
// with fuzzed direction, flags, sequence offset and payload. Nothing may
// panic (the assembler recovers parser panics, so they are counted and
// checked here), and the output stays bounded.
func FuzzReassemblyGlue(f *testing.F) {
	seed := func(records ...[]byte) []byte {
		var b []byte
		for _, r := range records {
			b = append(b, r...)
		}
		return b
	}
	rec := func(ctl byte, seqOff uint16, payload string) []byte {
		r := []byte{ctl, byte(seqOff >> 8), byte(seqOff), byte(len(payload))}
		return append(r, payload...)
	}
	f.Add(seed(rec(0x01, 0, ""), rec(0x02, 0, ""),
		rec(0x10, 0, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		rec(0x20, 0, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")))
	f.Add(seed(rec(0x10, 0, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), rec(0x10, 24, "\x00\x00\x00\x04\x00\x00\x00\x00\x00")))
	f.Add(seed(rec(0x90, 0, "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01")))
	f.Add(seed(rec(0x10, 100, "out of order"), rec(0x10, 0, "GET /a HTTP/1.1\r\n"), rec(0x14, 0, "")))
	// No protocol claims it: counted, not reassembled, after detection.
	f.Add(seed(rec(0x10, 0, "\x00\x01\x02binary"), rec(0x30, 0, "\xff\xfeserver bytes"),
		rec(0x10, 9, "more"), rec(0x10, 9, "more"), rec(0x14, 13, ""), rec(0x34, 14, "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		reg := all.Registry(dissect.DefaultOptions())
		stats := dissect.Stats{}
		var out []byte
		emit := dissect.EmitFunc(func(e *entry.Entry) { out = render.AppendJSON(out[:0], e) })
		asm := assemble.New(assemble.Options{MaxConnBufferBytes: 64 << 10, MaxTotalBufferBytes: 1 << 20}, func(fl *assemble.Flow) assemble.Handler {
			return reg.NewConn(dissect.FlowInfo{Transport: fl.Transport, A: fl.A, B: fl.B, Opener: dissect.Opener(fl.Opener), ID: fl.ID}, emit, stats)
		})
		client := netip.MustParseAddrPort("10.0.0.1:40000")
		server := netip.MustParseAddrPort("10.0.0.2:8080")
		seq := [2]uint32{1000, 9000}
		ts := time.Unix(1700000000, 0)
		for len(data) >= 4 {
			ctl, off, n := data[0], binary.BigEndian.Uint16(data[1:3]), int(data[3])
			data = data[4:]
			n = min(n, len(data))
			payload := data[:n]
			data = data[n:]
			dir := int(ctl>>5) & 1
			src, dst := client, server
			if dir == 1 {
				src, dst = server, client
			}
			ts = ts.Add(time.Duration(ctl&0x0f) * 100 * time.Millisecond)
			fr := capture.Frame{Timestamp: ts, Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Payload: payload}
			if ctl&0x80 != 0 {
				fr.Proto = capture.IPProtoUDP
				asm.Frame(&fr)
				continue
			}
			flags := byte(capture.TCPAck)
			switch ctl & 0x03 {
			case 1:
				flags = capture.TCPSyn
			case 2:
				flags = capture.TCPSyn | capture.TCPAck
			}
			if ctl&0x04 != 0 {
				flags |= capture.TCPFin
			}
			if ctl&0x08 != 0 && ctl&0x10 == 0 {
				flags = capture.TCPRst
			}
			hdr := make([]byte, 20, 20+len(payload))
			binary.BigEndian.PutUint16(hdr[0:], src.Port())
			binary.BigEndian.PutUint16(hdr[2:], dst.Port())
			binary.BigEndian.PutUint32(hdr[4:], seq[dir]+uint32(off))
			hdr[12] = 5 << 4
			hdr[13] = flags
			fr.Proto = capture.IPProtoTCP
			fr.Segment = append(hdr, payload...)
			fr.Payload = fr.Segment[20:]
			asm.Frame(&fr)
			if off == 0 {
				seq[dir] += uint32(len(payload))
			}
			asm.Tick(ts)
		}
		asm.Close()
		if p := asm.Stats().Panics; p != 0 {
			t.Fatalf("%d parser panics", p)
		}
		if len(out) > 1<<20 {
			t.Fatalf("one entry rendered to %d bytes", len(out))
		}
	})
}
