package assemble

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// journal is a Handler that logs every call, with times, so that two runs
// can be compared call for call. With giveUpAfter > 0 it is a Counter that
// gives up after that many Data calls.
type journal struct {
	log         *[]string
	name        string
	giveUpAfter int
	calls       int
}

func (j *journal) add(format string, args ...any) {
	*j.log = append(*j.log, j.name+" "+fmt.Sprintf(format, args...))
}

func (j *journal) Data(fromA bool, b []byte, ts time.Time) {
	j.calls++
	j.add("data %v %q %d", fromA, b, ts.UnixMilli())
}
func (j *journal) Gap(fromA bool, n int) { j.add("gap %v %d", fromA, n) }
func (j *journal) Datagram(fromA bool, b []byte, ts time.Time) {
	j.add("datagram %v %q %d", fromA, b, ts.UnixMilli())
}
func (j *journal) End(ts time.Time, reason string) { j.add("end %s %d", reason, ts.UnixMilli()) }
func (j *journal) Counting() bool                  { return j.giveUpAfter > 0 && j.calls >= j.giveUpAfter }
func (j *journal) Count(fromA bool, n, _ int, ts time.Time) {
	j.add("count %v %d %d", fromA, n, ts.UnixMilli())
}

var _ Counter = (*journal)(nil)

// twin plays the same segments into an assembler with the fast path and
// one without it, and compares what their handlers saw.
type twin struct {
	t    *testing.T
	fast *harness
	slow *harness
	logs [2][]string
}

func newTwin(t *testing.T, opts Options, giveUpAfter int) *twin {
	tw := &twin{t: t}
	mk := func(i int) *harness {
		h := &harness{t: t, now: time.Unix(1700000000, 0)}
		n := 0
		h.asm = New(opts, func(f *Flow) Handler {
			n++
			tw.logs[i] = append(tw.logs[i], fmt.Sprintf("flow%d new %v %v %v %s", n, f.A, f.B, f.Opener, f.ID))
			return &journal{log: &tw.logs[i], name: fmt.Sprintf("flow%d", n), giveUpAfter: giveUpAfter}
		})
		return h
	}
	tw.fast, tw.slow = mk(0), mk(1)
	tw.slow.asm.noFast = true
	return tw
}

func (tw *twin) seg(src, dst netip.AddrPort, seq uint32, flags uint8, payload string) {
	tw.fast.seg(src, dst, seq, 0, flags, payload)
	tw.slow.seg(src, dst, seq, 0, flags, payload)
}

// stripped plays a segment copied without its payload, as the pipeline
// copies those of counted flows: Payload keeps only the length.
func (tw *twin) stripped(src, dst netip.AddrPort, seq uint32, flags uint8, n int) {
	for _, h := range []*harness{tw.fast, tw.slow} {
		f := h.frame(src, dst, seq, 0, flags, "")
		f.WireLen, f.Payload, f.PayloadLen = 0, make([]byte, n), 0
		h.asm.Frame(&f)
	}
}

func (tw *twin) wait(d time.Duration) {
	tw.fast.now = tw.fast.now.Add(d)
	tw.slow.now = tw.slow.now.Add(d)
	tw.fast.asm.Tick(tw.fast.now)
	tw.slow.asm.Tick(tw.slow.now)
}

// check closes both assemblers and compares their handlers' calls (each
// flow's calls in order; flows may interleave differently at a flush) and
// stats. It returns the fast path's log.
func (tw *twin) check() []string {
	tw.t.Helper()
	tw.fast.asm.Close()
	tw.slow.asm.Close()
	fast, slow := byFlow(tw.logs[0]), byFlow(tw.logs[1])
	if diff := cmp.Diff(slow, fast); diff != "" {
		tw.t.Errorf("fast path differs from gopacket/reassembly (-slow +fast):\n%s", diff)
	}
	if diff := cmp.Diff(tw.slow.asm.Stats(), tw.fast.asm.Stats()); diff != "" {
		tw.t.Errorf("stats differ (-slow +fast):\n%s", diff)
	}
	if n := len(tw.fast.asm.conns); n != 0 {
		tw.t.Errorf("%d connections still tracked after Close", n)
	}
	return tw.logs[0]
}

// byFlow groups log lines by flow, keeping each flow's order.
func byFlow(log []string) map[string][]string {
	m := map[string][]string{}
	for _, l := range log {
		name, rest, _ := strings.Cut(l, " ")
		m[name] = append(m[name], rest)
	}
	return m
}

func TestFastPathMatchesReassembly(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		giveUpAfter int
		script      func(tw *twin)
		want        []string // lines the fast path's log must hold, in order
	}{{
		name: "in order, FIN both ways",
		script: func(tw *twin) {
			tw.seg(client, server, 1000, syn, "")
			tw.seg(server, client, 5000, synack, "")
			tw.seg(client, server, 1001, psh, "GET /")
			tw.seg(server, client, 5001, psh, "200 OK")
			tw.seg(client, server, 1006, fin, "")
			tw.seg(server, client, 5007, fin, "")
			tw.seg(client, server, 1007, ack, "") // the last ACK: a new flow
		},
		want: []string{`flow1 data true "GET /"`, `flow1 data false "200 OK"`, "flow1 end fin", "flow2 new", "flow2 end eof"},
	}, {
		name: "out of order after in order",
		script: func(tw *twin) {
			tw.seg(client, server, 1000, syn, "")
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1007, psh, "ghi")
			tw.seg(server, client, 5000, psh, "reply")
			tw.seg(client, server, 1004, psh, "def")
			tw.seg(client, server, 1010, fin, "")
			tw.seg(server, client, 5005, fin, "")
		},
		want: []string{`flow1 data true "abc"`, `flow1 data false "reply"`, `flow1 data true "defghi"`, "flow1 end fin"},
	}, {
		name: "retransmission",
		script: func(tw *twin) {
			tw.seg(client, server, 1000, syn, "")
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1004, psh, "def")
		},
		want: []string{`flow1 data true "abc"`, `flow1 data true "def"`, "flow1 end eof"},
	}, {
		name: "overlap",
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abcd")
			tw.seg(client, server, 1003, psh, "cdef")
			tw.seg(client, server, 1007, psh, "gh")
		},
		want: []string{`flow1 data true "abcd"`, `flow1 data true "ef"`, `flow1 data true "gh"`},
	}, {
		name: "hole then fill",
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1010, psh, "jkl")
			tw.seg(client, server, 1004, psh, "def")
			tw.seg(client, server, 1007, psh, "ghi")
		},
		want: []string{`flow1 data true "abc"`, `flow1 data true "def"`, `flow1 data true "ghijkl"`},
	}, {
		name: "hole skipped after the wait",
		opts: Options{GapWait: time.Second},
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1010, psh, "jkl")
			tw.wait(3 * time.Second)
			tw.seg(client, server, 1013, psh, "mno")
		},
		want: []string{`flow1 data true "abc"`, "flow1 gap true 6", `flow1 data true "jkl"`, `flow1 data true "mno"`},
	}, {
		name: "FIN out of order",
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1007, fin, "")
			tw.seg(client, server, 1004, psh, "def")
			tw.seg(server, client, 5000, fin, "")
		},
		want: []string{`flow1 data true "abc"`, `flow1 data true "def"`, "flow1 end fin"},
	}, {
		name: "FIN in order, then the other way out of order",
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1004, fin, "")
			tw.seg(server, client, 5000, psh, "xy")
			tw.seg(server, client, 5004, psh, "zz")
			tw.seg(server, client, 5002, psh, "..")
			tw.seg(client, server, 1005, ack, "late") // on a closed half
			tw.seg(server, client, 5006, fin, "")
		},
		want: []string{`flow1 data true "abc"`, `flow1 data false "xy"`, `flow1 data false "..zz"`, "flow1 end fin"},
	}, {
		name: "RST in order and out of window",
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(server, client, 5000, psh, "x")
			tw.seg(server, client, 4000, rst, "") // before the window: ignored
			tw.seg(client, server, 1004, rst, "")
			tw.seg(server, client, 5001, rst, "")
		},
		want: []string{`flow1 data true "abc"`, `flow1 data false "x"`, "flow1 end rst"},
	}, {
		name: "SYN on a synchronised half, and SYN with data",
		script: func(tw *twin) {
			tw.seg(client, server, 1000, syn, "early")
			tw.seg(client, server, 1006, psh, "abc")
			tw.seg(client, server, 1000, syn, "again")
			tw.seg(client, server, 1009, psh, "def")
		},
		want: []string{`flow1 data true "early"`, `flow1 data true "abc"`, `flow1 data true "def"`},
	}, {
		name: "sequence numbers wrap",
		script: func(tw *twin) {
			tw.seg(client, server, 0xfffffffd, psh, "abc")
			tw.seg(client, server, 0, psh, "def")
			tw.seg(client, server, 6, psh, "jkl")
			tw.seg(client, server, 3, psh, "ghi")
		},
		want: []string{`flow1 data true "abc"`, `flow1 data true "def"`, `flow1 data true "ghijkl"`},
	}, {
		name: "idle timeout, then the ports reused",
		opts: Options{TCPIdle: 10 * time.Second},
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(server, client, 5000, fin, "")
			tw.wait(time.Minute)
			tw.seg(client, server, 1004, psh, "def")
		},
		want: []string{`flow1 data true "abc"`, "flow1 end timeout", `flow2 data true "def"`, "flow2 end eof"},
	}, {
		name: "counted after in order, then out of order",
		// giveUpAfter 2: counted from the second Data call on.
		giveUpAfter: 2,
		script: func(tw *twin) {
			tw.seg(client, server, 1000, syn, "")
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1004, psh, "def")
			tw.seg(client, server, 1010, psh, "jkl")
			tw.seg(client, server, 1007, psh, "ghi")
			tw.seg(client, server, 1013, fin, "")
			tw.seg(server, client, 5000, fin, "")
			tw.seg(client, server, 2000, syn, "")
			tw.seg(client, server, 2001, psh, "new")
		},
		want: []string{`flow1 data true "abc"`, `flow1 data true "def"`, "flow1 count true 3", "flow1 count true 3", "flow1 end fin", `flow2 data true "new"`},
	}, {
		name:        "counted after a FIN one way",
		giveUpAfter: 2,
		script: func(tw *twin) {
			tw.seg(server, client, 7000, syn, "abc")
			tw.seg(client, server, 1000, fin, "def")
			tw.seg(server, client, 7004, fin, "")
			tw.seg(client, server, 1004, fin, "")
		},
		// Releasing the connection from gopacket/reassembly once opened a
		// second, empty flow, as the RST into the half closed already
		// came after the connection had gone.
		want: []string{`flow1 data true "abc"`, `flow1 data false "def"`, "flow1 end fin"},
	}, {
		name:        "counted, idle in gopacket terms, then the end of the capture",
		giveUpAfter: 1,
		opts:        Options{TCPIdle: 10 * time.Second},
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abc")
			for i := range 30 {
				tw.wait(time.Second)
				tw.seg(client, server, 1004+uint32(i), psh, "x")
			}
		},
		want: []string{`flow1 data true "abc"`, "flow1 count true 1", "flow1 end eof"},
	}, {
		// The pipeline strips packets of a counted flow it has not yet
		// heard has ended: what reaches a new flow has no payload.
		name:        "a stripped frame after counting ended",
		giveUpAfter: 1,
		script: func(tw *twin) {
			tw.seg(client, server, 1001, psh, "abc")
			tw.seg(client, server, 1004, fin, "")
			tw.seg(server, client, 5000, fin, "")
			tw.stripped(client, server, 1005, psh, 100)
			tw.seg(client, server, 1005, psh, "xyz")
		},
		want: []string{`flow1 data true "abc"`, "flow1 end fin", `flow2 data true "xyz"`},
	}, {
		name: "flow limit",
		opts: Options{MaxFlows: 2},
		script: func(tw *twin) {
			for i := range 4 {
				c := netip.AddrPortFrom(client.Addr(), uint16(40000+i))
				tw.seg(c, server, 1000, syn, "")
				tw.seg(c, server, 1001, psh, "hi")
			}
			tw.wait(3 * time.Minute)
			c := netip.AddrPortFrom(client.Addr(), 40003)
			tw.seg(c, server, 1003, psh, "now")
		},
		want: []string{`flow1 data true "hi"`, `flow2 data true "hi"`, "flow1 end timeout", `flow3 data true "now"`},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTwin(t, tc.opts, tc.giveUpAfter)
			tc.script(tw)
			got := tw.check()
			if missing := inOrder(got, tc.want); missing != "" {
				t.Errorf("fast path log lacks %q (in order) in:\n%s", missing, strings.Join(got, "\n"))
			}
		})
	}
}

// inOrder returns the first of want that is not a prefix of a line of got
// after the previous match, or "".
func inOrder(got, want []string) string {
	i := 0
	for _, w := range want {
		for i < len(got) && !strings.HasPrefix(got[i], w) {
			i++
		}
		if i == len(got) {
			return w
		}
		i++
	}
	return ""
}

// FuzzFastPathMatchesReassembly plays arbitrary segment sequences (two
// connections, any order, flags, sequence numbers, ticks) into assemblers
// with and without the fast path: what their handlers see must be the same.
func FuzzFastPathMatchesReassembly(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, uint8(0))
	f.Add([]byte{0x10, 0x22, 0x31, 0x40, 0x05, 0x16, 0x87, 0x98}, uint8(2))
	f.Add([]byte("\x00\x01\x81\x02\x83\x44\x05\xc6\x07\x48\xf9\x1a"), uint8(1))
	f.Fuzz(func(t *testing.T, ops []byte, giveUp uint8) {
		if len(ops) > 512 {
			ops = ops[:512]
		}
		tw := newTwin(t, Options{TCPIdle: 20 * time.Second, GapWait: time.Second, MaxConnBufferBytes: 3 * pageSize}, int(giveUp%4))
		other := netip.AddrPortFrom(client.Addr(), 40001)
		var next [2][2]uint32 // per connection, per direction: the sequence number in order
		next[0] = [2]uint32{1000, 5000}
		next[1] = [2]uint32{0xfffffff0, 7000}
		payload := strings.Repeat("abcdefghijklmnopqrstuvwxyz", 250)
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			conn, dir := int(op&1), int(op>>1&1)
			src, dst := client, server
			if conn == 1 {
				src = other
			}
			if dir == 1 {
				src, dst = dst, src
			}
			n := int(arg&0x0f) * 100
			if arg&0x0f == 0x0f {
				n = 3 * pageSize
			}
			seq := next[conn][dir]
			switch op >> 2 & 7 { // where the segment lands
			case 1:
				seq += uint32(n) + 7 // ahead: a hole
			case 2:
				seq -= uint32(n) / 2 // overlapping what came
			case 3:
				seq -= uint32(n) // a retransmission
			default:
				next[conn][dir] += uint32(n)
			}
			var flags uint8 = ack
			switch op >> 5 {
			case 1:
				flags = syn
			case 2:
				flags = fin
			case 3:
				flags = rst
			case 4:
				tw.wait(time.Duration(arg) * 100 * time.Millisecond)
				continue
			}
			if flags == syn {
				next[conn][dir]++
			}
			tw.seg(src, dst, seq, flags, payload[:n])
		}
		tw.check()
	})
}

// framePayload must give what the header says, without reading it when
// the frame's Payload is the segment's tail, and the empty payload of a
// frame copied without its payload (the header-only copy of a counted
// flow, whose Payload stands in elsewhere).
func TestFramePayload(t *testing.T) {
	var h harness
	a, b := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	f := h.frame(a, b, 1, 1, psh, "GET / HTTP/1.1\r\n\r\n")
	if p, ok := framePayload(&f); !ok || string(p) != "GET / HTTP/1.1\r\n\r\n" {
		t.Errorf("whole frame: %q, %v", p, ok)
	}
	stripped := f
	stripped.Segment = f.Segment[:20]
	stripped.Payload = make([]byte, len(f.Payload))
	if p, ok := framePayload(&stripped); !ok || len(p) != 0 {
		t.Errorf("header-only copy: %q, %v; want an empty payload", p, ok)
	}
	ackOnly := h.frame(b, a, 1, 19, ack, "")
	if p, ok := framePayload(&ackOnly); !ok || len(p) != 0 {
		t.Errorf("pure ACK: %q, %v", p, ok)
	}
	short := f
	short.Segment, short.Payload = f.Segment[:12], nil
	if _, ok := framePayload(&short); ok {
		t.Error("a segment shorter than a TCP header was accepted")
	}
}
