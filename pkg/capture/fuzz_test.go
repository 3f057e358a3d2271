package capture

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
	"time"
)

// fuzzMaxPackets bounds the work per input: a reader must not need more
// than this many calls to show a bug.
const fuzzMaxPackets = 64

// checkAlloc fails if fn allocates more than limit bytes in total: the
// readers keep one buffer, whatever lengths the input claims.
func checkAlloc(t *testing.T, limit uint64, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > limit {
		t.Fatalf("allocated %d bytes, more than %d", grew, limit)
	}
}

// fuzzRead reads and decodes up to fuzzMaxPackets packets from data.
func fuzzRead(t *testing.T, data []byte) {
	// Buffers: the read buffer (twice when gzip-wrapped), gzip state, the
	// reassembly buffer, and interface names no longer than the input.
	limit := uint64(3*readBufferSize + 1<<20 + 64*len(data))
	checkAlloc(t, limit, func() {
		src, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer src.Close()
		d := NewDecoder(DecoderOptions{MaxFragmentBytes: 64 << 10})
		var p Packet
		var f Frame
		for range fuzzMaxPackets {
			if err := src.Next(&p); err != nil {
				if err.Error() == "" || bytes.ContainsRune([]byte(err.Error()), '\n') {
					t.Fatalf("error message %q is not one line", err)
				}
				return
			}
			if len(p.Data) > MaxPacketLen {
				t.Fatalf("packet of %d bytes, over MaxPacketLen", len(p.Data))
			}
			if p.Interface < 0 || p.Interface >= len(src.Interfaces()) {
				t.Fatalf("packet on interface %d of %d", p.Interface, len(src.Interfaces()))
			}
			if d.Decode(&p, &f) {
				checkFrame(t, &f)
			}
		}
	})
}

// checkFrame asserts the invariants every decoded frame keeps.
func checkFrame(t *testing.T, f *Frame) {
	t.Helper()
	if f.Proto != IPProtoTCP && f.Proto != IPProtoUDP {
		t.Fatalf("frame with protocol %d", f.Proto)
	}
	if len(f.Segment) > maxDatagram+MaxPacketLen || len(f.Payload) > len(f.Segment) {
		t.Fatalf("segment %d bytes, payload %d", len(f.Segment), len(f.Payload))
	}
	// Payload is the tail of Segment.
	if len(f.Payload) > 0 && &f.Payload[len(f.Payload)-1] != &f.Segment[len(f.Segment)-1] {
		t.Fatal("payload is not the tail of the segment")
	}
	if !f.Src.IsValid() || !f.Dst.IsValid() || f.Src.Is4() != f.Dst.Is4() {
		t.Fatalf("addresses %v -> %v", f.Src, f.Dst)
	}
}

func FuzzPcapReader(f *testing.F) {
	for _, lt := range []LinkType{LinkEthernet, LinkSLL, LinkSLL2, LinkRaw, LinkNull} {
		file := writePcap(f, lt, lt == LinkSLL2, samplePackets(f, lt))
		f.Add(file)
		f.Add(swapPcap(f, file))
		f.Add(file[:len(file)-7])
	}
	frags := fragmentsOf(f, bigUDP(false), 1480)
	var pkts []testPacket
	for _, fr := range frags {
		pkts = append(pkts, testPacket{ts: t0, data: fr})
	}
	f.Add(writePcap(f, LinkRaw, false, pkts))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, data) })
}

func FuzzPcapngReader(f *testing.F) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		eth := frame(f, LinkEthernet, ipBytes(f, tcp4), 1)
		sll2 := frame(f, LinkSLL2, ipBytes(f, udp6), 0)
		w := &ngBuilder{o: order.(interface {
			binary.ByteOrder
			binary.AppendByteOrder
		})}
		w.shb()
		w.idb(LinkEthernet, 0, "eth0", -1, 0)
		w.idb(LinkSLL2, 96, "any", 0x80|20, 3600)
		w.epb(0, 1_700_000_000_000_000, eth, len(eth))
		w.epb(1, 1_700_000_000<<20, sll2, len(sll2))
		w.block(5, make([]byte, 16))
		w.spb(eth, len(eth))
		w.pb(1, 5, sll2[:40], len(sll2))
		w.shb()
		w.idb(LinkRaw, 0, "", 9, 0)
		w.epb(0, 1, sll2[20:], len(sll2)-20)
		f.Add(bytes.Clone(w.Bytes()))
		f.Add(bytes.Clone(w.Bytes()[:w.Len()-9]))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, data) })
}

// FuzzDecode decodes one frame of any supported link type.
func FuzzDecode(f *testing.F) {
	links := []LinkType{LinkEthernet, LinkSLL, LinkSLL2, LinkRaw, LinkIPv4, LinkIPv6, LinkNull, LinkLoop}
	ext := seg{v6: true, extHeaders: true, src: "2001:db8::1", dst: "2001:db8::2", sport: 1, dport: 443, payload: []byte("x")}
	for i, lt := range links {
		for _, s := range []seg{tcp4, udp6, ext} {
			if (lt == LinkIPv4 && s.v6) || (lt == LinkIPv6 && !s.v6) {
				continue
			}
			f.Add(uint8(i), frame(f, lt, ipBytes(f, s), i%3), uint16(0))
		}
	}
	f.Add(uint8(0), frame(f, LinkEthernet, fragmentsOf(f, bigUDP(true), 1232)[0], 0), uint16(0))
	f.Add(uint8(0), frame(f, LinkEthernet, ipBytes(f, tcp4), 0), uint16(9)) // snap-cut
	f.Fuzz(func(t *testing.T, link uint8, data []byte, cut uint16) {
		lt := links[int(link)%len(links)]
		d := NewDecoder(DecoderOptions{})
		var fr Frame
		p := Packet{Timestamp: t0, LinkType: lt, Length: len(data) + int(cut), Data: data}
		if d.Decode(&p, &fr) {
			checkFrame(t, &fr)
			if len(fr.Segment) > len(data) {
				t.Fatalf("segment of %d bytes from a %d-byte frame", len(fr.Segment), len(data))
			}
			if fr.Truncated && cut == 0 {
				t.Fatal("truncated without a snap-length cut")
			}
		}
		st := d.Stats()
		if st.Packets != 1 || st.Decoded+st.NotIP+st.NotTCPUDP+st.Malformed+st.Fragments+st.Truncated == 0 {
			t.Fatalf("packet not accounted for: %+v", st)
		}
	})
}

// FuzzDefrag feeds a stream of raw IP packets, each prefixed by its
// 2-byte length and a 1-byte time step in seconds, to one decoder with a
// small memory cap.
func FuzzDefrag(f *testing.F) {
	encode := func(pkts [][]byte, step byte) []byte {
		var b []byte
		for _, p := range pkts {
			b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
			b = append(b, step)
			b = append(b, p...)
		}
		return b
	}
	for _, v6 := range []bool{false, true} {
		frags := fragmentsOf(f, bigUDP(v6), 1232)
		f.Add(encode(frags, 0))
		f.Add(encode([][]byte{frags[3], frags[0], frags[2], frags[1], frags[4]}, 1))
		f.Add(encode(append([][]byte{frags[0]}, frags...), 0))
		f.Add(encode(frags, 20))
	}
	const limit = 16 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(DecoderOptions{MaxFragmentBytes: limit})
		ts := t0
		var fr Frame
		for n := 0; len(data) >= 3 && n < 256; n++ {
			size := min(int(binary.BigEndian.Uint16(data)), len(data)-3)
			ts = ts.Add(time.Duration(data[2]) * time.Second)
			pkt := data[3 : 3+size]
			data = data[3+size:]
			p := Packet{Timestamp: ts, LinkType: LinkRaw, Length: len(pkt), Data: pkt}
			if d.Decode(&p, &fr) {
				checkFrame(t, &fr)
				if len(fr.Segment) > maxDatagram {
					t.Fatalf("reassembled %d bytes", len(fr.Segment))
				}
			}
			if d.frag.held > limit {
				t.Fatalf("reassembly holds %d bytes, over its %d limit", d.frag.held, limit)
			}
		}
		st := d.Stats()
		if st.Reassembled > st.Fragments || st.FragmentsDropped > st.Fragments {
			t.Fatalf("inconsistent counters %+v", st)
		}
	})
}
