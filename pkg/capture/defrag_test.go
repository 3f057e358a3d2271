package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fragments4 splits an IPv4 packet into fragments of size payload bytes
// (a multiple of 8) each.
func fragments4(ip []byte, size int) [][]byte {
	hdr, body := ip[:20], ip[20:]
	var out [][]byte
	for off := 0; off < len(body); off += size {
		end := min(off+size, len(body))
		f := append(bytes.Clone(hdr), body[off:end]...)
		binary.BigEndian.PutUint16(f[2:], uint16(len(f)))
		field := uint16(off / 8)
		if end < len(body) {
			field |= 0x2000
		}
		binary.BigEndian.PutUint16(f[6:], field)
		out = append(out, f)
	}
	return out
}

// fragments6 splits an IPv6 packet (no extension headers) into fragments.
func fragments6(ip []byte, size int, id uint32) [][]byte {
	hdr, body := ip[:40], ip[40:]
	var out [][]byte
	for off := 0; off < len(body); off += size {
		end := min(off+size, len(body))
		fo := uint16(off)
		if end < len(body) {
			fo |= 1
		}
		fh := []byte{ip[6], 0, byte(fo >> 8), byte(fo), 0, 0, 0, 0}
		binary.BigEndian.PutUint32(fh[4:], id)
		f := append(append(bytes.Clone(hdr), fh...), body[off:end]...)
		f[6] = ip6Fragment
		binary.BigEndian.PutUint16(f[4:], uint16(len(f)-40))
		out = append(out, f)
	}
	return out
}

// bigUDP is a datagram that needs several fragments.
func bigUDP(v6 bool) seg {
	s := seg{udp: true, src: "10.9.8.7", dst: "10.9.8.6", sport: 2049, dport: 700, ipID: 0x4242}
	if v6 {
		s.v6, s.src, s.dst = true, "fd00::7", "fd00::6"
	}
	s.payload = make([]byte, 5000)
	for i := range s.payload {
		s.payload[i] = byte(i * 7)
	}
	return s
}

func fragmentsOf(t testing.TB, s seg, size int) [][]byte {
	ip := ipBytes(t, s)
	if s.v6 {
		return fragments6(ip, size, 0xabcdef)
	}
	return fragments4(ip, size)
}

// decodeAll decodes raw IP packets a millisecond apart and returns the
// frames decoded, copied.
func decodeAll(d *Decoder, start time.Time, pkts [][]byte) []Frame {
	var out []Frame
	var f Frame
	for i, b := range pkts {
		p := Packet{Timestamp: start.Add(time.Duration(i) * time.Millisecond), LinkType: LinkRaw, Length: len(b), Data: b}
		if d.Decode(&p, &f) {
			f.Segment, f.Payload = bytes.Clone(f.Segment), bytes.Clone(f.Payload)
			out = append(out, f)
		}
	}
	return out
}

func TestDefragOrders(t *testing.T) {
	shuffle := func(in [][]byte) [][]byte {
		out := append([][]byte(nil), in...)
		r := rand.New(rand.NewPCG(1, 2))
		r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	reverse := func(in [][]byte) [][]byte {
		out := make([][]byte, len(in))
		for i := range in {
			out[len(in)-1-i] = in[i]
		}
		return out
	}
	duplicate := func(in [][]byte) [][]byte {
		return append([][]byte{in[1]}, in...)
	}
	for _, v6 := range []bool{false, true} {
		for name, order := range map[string]func([][]byte) [][]byte{
			"in order":  func(in [][]byte) [][]byte { return in },
			"reversed":  reverse,
			"shuffled":  shuffle,
			"duplicate": duplicate,
		} {
			t.Run(fmt.Sprintf("v6=%v/%s", v6, name), func(t *testing.T) {
				s := bigUDP(v6)
				frags := order(fragmentsOf(t, s, 1232))
				wire := 0
				for _, f := range frags {
					wire += len(f)
				}
				dups := len(frags) - 5
				if name == "duplicate" {
					wire -= len(frags[0]) // the dropped copy carries nothing
				}
				d := NewDecoder(DecoderOptions{})
				frames := decodeAll(d, t0, frags)
				if len(frames) != 1 {
					t.Fatalf("decoded %d frames, want 1; stats %+v", len(frames), d.Stats())
				}
				want := wantFrame(t, s, wire)
				want.Timestamp = t0.Add(time.Duration(len(frags)-1) * time.Millisecond)
				if diff := cmp.Diff(want, frames[0], cmpAddr); diff != "" {
					t.Errorf("frame (-want +got):\n%s", diff)
				}
				wantStats := DecoderStats{Packets: uint64(len(frags)), Decoded: 1, Fragments: uint64(len(frags)), Reassembled: 1, FragmentsDropped: uint64(dups)}
				if diff := cmp.Diff(wantStats, d.Stats()); diff != "" {
					t.Errorf("stats (-want +got):\n%s", diff)
				}
				if d.frag.oldest != nil || len(d.frag.table) != 0 {
					t.Errorf("datagram left in the table")
				}
			})
		}
	}
}

func TestDefragTCP(t *testing.T) {
	s := tcp4
	s.payload = bytes.Repeat([]byte("0123456789"), 300)
	frames := decodeAll(NewDecoder(DecoderOptions{}), t0, fragments4(ipBytes(t, s), 1480))
	if len(frames) != 1 || !bytes.Equal(frames[0].Payload, s.payload) || frames[0].Seq != s.seq || frames[0].Flags != TCPAck|TCPPsh {
		t.Errorf("got %d frames; want one TCP frame with the whole payload", len(frames))
	}
}

// TestDefragIPv6ExtAfterFragment: destination options may sit in the
// fragmentable part, before the transport header.
func TestDefragIPv6ExtAfterFragment(t *testing.T) {
	s := bigUDP(true)
	s.extHeaders = true
	ip := ipBytes(t, s)
	// Keep hop-by-hop unfragmentable: move it in front of the fragment header.
	hbh := ip[40:48]
	rest := append(bytes.Clone(ip[:40]), ip[48:]...)
	rest[6] = hbh[0] // destination options starts the fragmentable part
	binary.BigEndian.PutUint16(rest[4:], uint16(len(rest)-40))
	var frags [][]byte
	for _, f := range fragments6(rest, 1456, 77) {
		g := append(append(bytes.Clone(f[:40]), hbh...), f[40:]...)
		g[40] = ip6Fragment // hop-by-hop's next header
		g[6] = ip6HopByHop
		binary.BigEndian.PutUint16(g[4:], uint16(len(g)-40))
		frags = append(frags, g)
	}
	frames := decodeAll(NewDecoder(DecoderOptions{}), t0, frags)
	if len(frames) != 1 || !bytes.Equal(frames[0].Payload, s.payload) || frames[0].DstPort != s.dport {
		t.Fatalf("got %d frames; want the reassembled UDP datagram", len(frames))
	}
}

func TestDefragOverlap(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			s := bigUDP(v6)
			frags := fragmentsOf(t, s, 1232)
			// A fragment covering the end of the first and the start of
			// the second (offset 1224, 16 bytes).
			evil := bytes.Clone(frags[0])
			hdr := 20
			if v6 {
				hdr = 48
			}
			evil = append(evil[:hdr], frags[0][hdr+1224:hdr+1232]...)
			evil = append(evil, frags[1][hdr:hdr+8]...)
			if v6 {
				binary.BigEndian.PutUint16(evil[42:], 1224|1)
				binary.BigEndian.PutUint16(evil[4:], uint16(len(evil)-40))
			} else {
				binary.BigEndian.PutUint16(evil[6:], 0x2000|1224/8)
				binary.BigEndian.PutUint16(evil[2:], uint16(len(evil)))
			}
			d := NewDecoder(DecoderOptions{})
			pkts := append([][]byte{frags[0], evil}, frags[1:]...)
			if frames := decodeAll(d, t0, pkts); len(frames) != 0 {
				t.Fatalf("an overlapping datagram was reassembled")
			}
			// The first fragment is dropped with the overlap, and every
			// later fragment of the datagram with it.
			want := DecoderStats{Packets: 6, Fragments: 6, FragmentsDropped: 6}
			if diff := cmp.Diff(want, d.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			// Once the tombstone times out, a clean copy goes through.
			if frames := decodeAll(d, t0.Add(31*time.Second), frags); len(frames) != 1 {
				t.Errorf("clean resend after timeout: %d frames, want 1", len(frames))
			}
		})
	}
}

func TestDefragInconsistent(t *testing.T) {
	s := bigUDP(false)
	frags := fragments4(ipBytes(t, s), 1232)
	odd := bytes.Clone(frags[0])
	odd = odd[:len(odd)-4] // a non-last fragment not a multiple of 8
	binary.BigEndian.PutUint16(odd[2:], uint16(len(odd)))
	shortLast := bytes.Clone(frags[4])
	shortLast = shortLast[:len(shortLast)-8] // a second, different end
	binary.BigEndian.PutUint16(shortLast[2:], uint16(len(shortLast)))
	beyond := bytes.Clone(frags[1])
	binary.BigEndian.PutUint16(beyond[6:], 0x2000|8100) // past 65535
	for _, tc := range []struct {
		name   string
		pkts   [][]byte
		frames int
		stats  DecoderStats
	}{
		{"odd size dropped, rest completes", [][]byte{odd, frags[0], frags[1], frags[2], frags[3], frags[4]}, 1,
			DecoderStats{Packets: 6, Fragments: 6, FragmentsDropped: 1, Decoded: 1, Reassembled: 1}},
		{"two different ends", [][]byte{frags[4], shortLast, frags[0], frags[1], frags[2], frags[3]}, 0,
			DecoderStats{Packets: 6, Fragments: 6, FragmentsDropped: 6}},
		{"offset past 64 KiB", [][]byte{beyond}, 0, DecoderStats{Packets: 1, Fragments: 1, FragmentsDropped: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(DecoderOptions{})
			if frames := decodeAll(d, t0, tc.pkts); len(frames) != tc.frames {
				t.Errorf("%d frames, want %d", len(frames), tc.frames)
			}
			if diff := cmp.Diff(tc.stats, d.Stats()); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefragTimeout(t *testing.T) {
	frags := fragments4(ipBytes(t, bigUDP(false)), 1232)
	d := NewDecoder(DecoderOptions{})
	decodeAll(d, t0, frags[:2])
	// 30 s is still in time: no drop yet.
	decodeAll(d, t0.Add(30*time.Second), [][]byte{ipBytes(t, tcp4)})
	if st := d.Stats(); st.FragmentsDropped != 0 {
		t.Fatalf("dropped %d fragments before the timeout", st.FragmentsDropped)
	}
	// Any packet after the timeout expires them, and the rest is orphaned.
	if frames := decodeAll(d, t0.Add(31*time.Second), frags[2:]); len(frames) != 0 {
		t.Fatal("reassembled across a timeout")
	}
	if st := d.Stats(); st.FragmentsDropped != 2 || st.Reassembled != 0 {
		t.Errorf("stats %+v, want 2 dropped by the timeout", st)
	}
	decodeAll(d, t0.Add(2*time.Minute), [][]byte{ipBytes(t, tcp4)})
	if st := d.Stats(); st.FragmentsDropped != 5 || d.frag.oldest != nil {
		t.Errorf("stats %+v, want all 5 fragments dropped and nothing held", st)
	}
}

func TestDefragMemoryCap(t *testing.T) {
	const limit = 32 << 10
	d := NewDecoder(DecoderOptions{MaxFragmentBytes: limit})
	var firsts, rests [][][]byte
	for i := range 40 {
		s := bigUDP(false)
		s.ipID = uint16(i)
		frags := fragments4(ipBytes(t, s), 1480)
		firsts = append(firsts, frags[:1])
		rests = append(rests, frags[1:])
	}
	for _, f := range firsts {
		decodeAll(d, t0, f)
		if d.frag.held > limit {
			t.Fatalf("held %d bytes, over the %d limit", d.frag.held, limit)
		}
	}
	if st := d.Stats(); st.FragmentsDropped == 0 {
		t.Fatal("nothing dropped under memory pressure")
	}
	// The newest datagram survived, the oldest did not.
	if frames := decodeAll(d, t0, rests[39]); len(frames) != 1 {
		t.Errorf("newest datagram: %d frames, want 1", len(frames))
	}
	if frames := decodeAll(d, t0, rests[0]); len(frames) != 0 {
		t.Errorf("oldest datagram was kept despite the cap")
	}
	if d.frag.held > limit {
		t.Errorf("held %d bytes, over the %d limit", d.frag.held, limit)
	}
}

func TestDefragInterleaved(t *testing.T) {
	a, b := bigUDP(false), bigUDP(false)
	b.ipID, b.dport = 0x4343, 701
	fa, fb := fragments4(ipBytes(t, a), 1480), fragments4(ipBytes(t, b), 1480)
	var pkts [][]byte
	for i := range fa {
		pkts = append(pkts, fb[len(fb)-1-i], fa[i])
	}
	frames := decodeAll(NewDecoder(DecoderOptions{}), t0, pkts)
	if len(frames) != 2 || frames[0].DstPort+frames[1].DstPort != 700+701 {
		t.Errorf("got %d frames, want both datagrams", len(frames))
	}
}

func TestDefragDisabled(t *testing.T) {
	d := NewDecoder(DecoderOptions{MaxFragmentBytes: -1})
	frags := fragments4(ipBytes(t, bigUDP(false)), 1480)
	if frames := decodeAll(d, t0, frags); len(frames) != 0 {
		t.Fatal("reassembled with reassembly disabled")
	}
	want := DecoderStats{Packets: 4, Fragments: 4, FragmentsDropped: 4}
	if diff := cmp.Diff(want, d.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestDefragSnaplenCut(t *testing.T) {
	frags := fragments4(ipBytes(t, bigUDP(false)), 1480)
	d := NewDecoder(DecoderOptions{})
	var f Frame
	p := Packet{Timestamp: t0, LinkType: LinkRaw, Length: len(frags[0]), Data: frags[0][:100]}
	if d.Decode(&p, &f) {
		t.Fatal("decoded a cut fragment")
	}
	want := DecoderStats{Packets: 1, Fragments: 1, FragmentsDropped: 1, Truncated: 1}
	if diff := cmp.Diff(want, d.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestDefragSteadyStateAllocs(t *testing.T) {
	d := NewDecoder(DecoderOptions{})
	v4 := fragments4(ipBytes(t, bigUDP(false)), 1480)
	v6 := fragmentsOf(t, bigUDP(true), 1232)
	ts := t0
	var f Frame
	run := func() {
		for _, set := range [][][]byte{v4, v6} {
			for i := len(set) - 1; i >= 0; i-- {
				ts = ts.Add(time.Millisecond)
				d.Decode(&Packet{Timestamp: ts, LinkType: LinkRaw, Length: len(set[i]), Data: set[i]}, &f)
			}
		}
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("reassembly allocates %.1f times per round in steady state, want 0", allocs)
	}
	if st := d.Stats(); st.Reassembled != 2*102 {
		t.Errorf("reassembled %d datagrams, want %d", st.Reassembled, 2*102)
	}
}
