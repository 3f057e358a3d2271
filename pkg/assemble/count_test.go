package assemble

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// summary is a Handler that only sums what it is given, like a flow no
// parser claimed; with giveUpAfter > 0 it is a Counter that asks to be
// counted from its giveUpAfter-th Data call on.
type summary struct {
	giveUpAfter int
	calls       int
	counted     int // Count calls
	Bytes, Pkts [2]int
	Last        time.Time
	Reason      string
	EndAt       time.Time
	Ends        int
}

func (s *summary) Data(fromA bool, b []byte, ts time.Time) {
	s.calls++
	s.add(fromA, len(b), ts)
}
func (s *summary) Count(fromA bool, n, pkts int, ts time.Time) {
	s.counted++
	s.add(fromA, n, ts)
	s.Pkts[idx(fromA)] += pkts - 1
}
func (s *summary) add(fromA bool, n int, ts time.Time) {
	s.Bytes[idx(fromA)] += n
	s.Pkts[idx(fromA)]++
	s.Last = ts
}

var _ Counter = (*summary)(nil)

func (s *summary) Counting() bool                   { return s.giveUpAfter > 0 && s.calls >= s.giveUpAfter }
func (s *summary) Gap(bool, int)                    {}
func (s *summary) Datagram(bool, []byte, time.Time) {}
func (s *summary) End(ts time.Time, reason string)  { s.Reason, s.EndAt = reason, ts; s.Ends++ }

// countRun plays script against an assembler whose handlers give up
// after giveUpAfter Data calls (0: never), then closes it.
func countRun(t *testing.T, giveUpAfter int, script func(h *harness)) ([]*summary, *Assembler) {
	t.Helper()
	var flows []*summary
	h := &harness{t: t, now: time.Unix(1700000000, 0)}
	h.asm = New(Options{}, func(*Flow) Handler {
		s := &summary{giveUpAfter: giveUpAfter}
		flows = append(flows, s)
		return s
	})
	script(h)
	h.asm.Close()
	if n := len(h.asm.counting); n != 0 {
		t.Errorf("%d flows still counted after Close", n)
	}
	return flows, h.asm
}

// TestCountingMatchesReassembly: a flow the handler stops reading is summed
// the same as one reassembled to its end (bytes, packets, how and when it
// ended), retransmissions and reordering included, and a connection that
// later reuses its ports is a new flow, reassembled again.
func TestCountingMatchesReassembly(t *testing.T) {
	body := strings.Repeat("x", 1000)
	bulk := func(h *harness) {
		h.handshake()
		h.seg(client, server, 1001, 5001, psh, "HELLO unknown protocol\n") // 23 bytes
		seq := uint32(5001)
		for i := range 6 {
			h.seg(server, client, seq, 1024, psh, body)
			if i == 2 {
				h.seg(server, client, seq, 1024, psh, body) // retransmitted
			}
			seq += 1000
		}
		h.seg(client, server, 1024, seq, psh, "abcdefghij")
		h.seg(client, server, 1034, seq, fin, "")
		h.seg(server, client, seq, 1035, fin, "")
	}
	scripts := map[string]func(h *harness){
		"fin": bulk,
		"rst one way, then idle": func(h *harness) {
			h.handshake()
			h.seg(client, server, 1001, 5001, psh, "HELLO")
			h.seg(server, client, 5001, 1006, psh, body)
			h.seg(server, client, 6001, 1006, rst, "")
			h.now = h.now.Add(3 * time.Minute)
			h.asm.Tick(h.now)
		},
		"open at the end of the capture": func(h *harness) {
			h.handshake()
			h.seg(client, server, 1001, 5001, psh, "HELLO")
			h.seg(server, client, 5001, 1006, psh, body)
			h.seg(server, client, 6001, 1006, psh, body)
		},
		"longer than the idle timeout": func(h *harness) {
			h.handshake()
			h.seg(client, server, 1001, 5001, psh, "HELLO")
			seq := uint32(5001)
			for range 40 { // 6 min of a segment every 9 s
				h.now = h.now.Add(9 * time.Second)
				h.seg(server, client, seq, 1006, psh, body)
				seq += 1000
			}
			h.seg(client, server, 1006, seq, fin, "")
			h.seg(server, client, seq, 1007, fin, "")
		},
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			want, _ := countRun(t, 0, script)
			for _, after := range []int{1, 2} {
				got, _ := countRun(t, after, script)
				if after == 1 && got[0].counted == 0 {
					t.Errorf("counted from Data call %d: Count never called", after)
				}
				for _, s := range append(got, want...) {
					s.giveUpAfter, s.calls, s.counted = 0, 0, 0
				}
				if diff := cmp.Diff(want, got, cmp.AllowUnexported(summary{})); diff != "" {
					t.Errorf("counted from Data call %d (-reassembled +counted):\n%s", after, diff)
				}
			}
		})
	}
	t.Run("reordered", func(t *testing.T) {
		// Reassembly delivers the two segments in one Data call, counting
		// sums each: the bytes agree, the packets need not.
		reorder := func(h *harness) {
			h.handshake()
			h.seg(client, server, 1001, 5001, psh, "HELLO")
			h.seg(client, server, 1016, 5001, psh, "0123456789")
			h.seg(client, server, 1006, 5001, psh, "abcdefghij")
			h.seg(client, server, 1011, 5001, psh, "fghij01234") // overlaps both
			h.seg(client, server, 1026, 5001, psh, "klmno")
		}
		want, _ := countRun(t, 0, reorder)
		got, _ := countRun(t, 1, reorder)
		if got[0].Bytes != want[0].Bytes || got[0].Reason != want[0].Reason {
			t.Errorf("counted %v bytes, ended %q; reassembled %v, %q", got[0].Bytes, got[0].Reason, want[0].Bytes, want[0].Reason)
		}
	})
	t.Run("ports reused", func(t *testing.T) {
		got, asm := countRun(t, 1, func(h *harness) {
			bulk(h)
			h.now = h.now.Add(10 * time.Second)
			h.handshake()
			h.seg(client, server, 1001, 5001, psh, "again")
		})
		if len(got) != 2 {
			t.Fatalf("got %d flows, want 2", len(got))
		}
		if got[1].Bytes[0] != 5 || got[1].Ends != 1 || got[1].Reason != EndEOF {
			t.Errorf("second connection: %+v, want 5 client bytes, ended once at EOF", got[1])
		}
		if got[0].Ends != 1 || got[0].Reason != EndFIN {
			t.Errorf("first connection: %+v, want ended once by FIN", got[0])
		}
		if asm.Stats().TCPFlows != 2 {
			t.Errorf("TCPFlows = %d, want 2", asm.Stats().TCPFlows)
		}
	})
}

// BenchmarkCounted streams bulk data on one connection the handler stopped
// reading after its first bytes, against BenchmarkInOrder's reassembly.
func BenchmarkCounted(b *testing.B) {
	payload := strings.Repeat("x", 1448)
	h := &harness{now: time.Unix(1700000000, 0)}
	h.asm = New(Options{}, func(*Flow) Handler { return &summary{giveUpAfter: 1} })
	h.handshake()
	seq := uint32(1001)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		h.seg(client, server, seq, 5001, psh, payload)
		seq += uint32(len(payload))
	}
}

// TestOnCounted: the hook hears of a counted flow once when counting
// starts and once when the flow ends.
func TestOnCounted(t *testing.T) {
	var log []string
	h := &harness{t: t, now: time.Unix(1700000000, 0)}
	h.asm = New(Options{}, func(*Flow) Handler { return &summary{giveUpAfter: 1} })
	h.asm.OnCounted(func(a, b netip.AddrPort, on bool) { log = append(log, fmt.Sprint(a, b, on)) })
	h.handshake()
	h.seg(client, server, 1001, 5001, psh, "HELLO")
	h.seg(client, server, 1006, 5001, psh, "more")
	h.seg(client, server, 1010, 5001, fin, "")
	h.seg(server, client, 5001, 1011, fin, "")
	want := []string{fmt.Sprint(client, server, true), fmt.Sprint(client, server, false)}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("OnCounted calls (-want +got):\n%s", diff)
	}
}

// cutSeg is seg for a frame the capture cut after its TCP header: it
// carries n payload bytes on the wire, none captured, in segs segments.
func (h *harness) cutSeg(src, dst netip.AddrPort, seq, ack uint32, flags uint8, n, segs int) {
	f := h.frame(src, dst, seq, ack, flags, "")
	f.WireLen += n
	f.Truncated, f.PayloadLen, f.Segments = true, n, segs
	h.asm.Frame(&f)
}

// TestCountingCutFrames: once a flow is counted, a frame cut after its
// headers counts the payload its IP header declared, and the segments it
// stands for, so that three segments handed as one cut frame (what the
// worker's capture threads do with counted flows) sum the same bytes and
// packets as the segments themselves, a retransmission among them still
// counted once.
func TestCountingCutFrames(t *testing.T) {
	body := strings.Repeat("y", 1000)
	open := func(h *harness) {
		h.handshake()
		h.seg(client, server, 1001, 5001, psh, "HELLO unknown protocol\n")
		h.seg(server, client, 5001, 1024, psh, body)
	}
	closeIt := func(h *harness) {
		h.seg(client, server, 1024, 9001, fin, "")
		h.seg(server, client, 9001, 1025, fin, "")
	}
	whole, _ := countRun(t, 1, func(h *harness) {
		open(h)
		for seq := uint32(6001); seq < 9001; seq += 1000 {
			h.seg(server, client, seq, 1024, psh, body)
		}
		h.seg(server, client, 7001, 1024, psh, body) // retransmitted
		closeIt(h)
	})
	cut, asm := countRun(t, 1, func(h *harness) {
		open(h)
		h.cutSeg(server, client, 6001, 1024, psh, 3000, 3)
		h.cutSeg(server, client, 7001, 1024, psh, 1000, 1) // retransmitted
		closeIt(h)
	})
	if len(whole) != 1 || len(cut) != 1 {
		t.Fatalf("flows: %d whole, %d cut; want 1 each", len(whole), len(cut))
	}
	if whole[0].Bytes != cut[0].Bytes || whole[0].Pkts != cut[0].Pkts || whole[0].Reason != cut[0].Reason || cut[0].Ends != 1 {
		t.Errorf("cut frames: bytes %v, packets %v, end %q (%d ends); whole segments: bytes %v, packets %v, end %q",
			cut[0].Bytes, cut[0].Pkts, cut[0].Reason, cut[0].Ends, whole[0].Bytes, whole[0].Pkts, whole[0].Reason)
	}
	if want := [2]int{23, 4000}; cut[0].Bytes != want {
		t.Errorf("bytes = %v, want %v", cut[0].Bytes, want)
	}
	if asm.Stats().Gaps != 0 {
		t.Errorf("gaps = %d, want none", asm.Stats().Gaps)
	}
}
