// Package dissecttest is the shared test harness of the stream dissectors:
// scripted conversations (steps), the ways of splitting them into Data
// calls (chunkings), an Emitter that keeps entries, and a default Conn.
package dissecttest

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// EndAfter is when Feed ends the stream, relative to its t0: late enough
// that no test step comes after it.
const EndAfter = (1 << 20) * time.Millisecond

// Step is one event of a conversation: bytes of one direction captured at
// t0+At, or, when Gap > 0, Gap bytes of that direction lost.
type Step struct {
	Dir  dissect.Dir
	Data []byte
	Gap  int
	At   time.Duration
}

// CS is client-to-server bytes at ms milliseconds, the parts concatenated.
func CS(ms int, parts ...[]byte) Step { return data(dissect.ClientToServer, ms, parts) }

// SC is server-to-client bytes at ms milliseconds, the parts concatenated.
func SC(ms int, parts ...[]byte) Step { return data(dissect.ServerToClient, ms, parts) }

// GapStep is n lost bytes of dir.
func GapStep(dir dissect.Dir, n int) Step { return Step{Dir: dir, Gap: n} }

func data(dir dissect.Dir, ms int, parts [][]byte) Step {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return Step{Dir: dir, Data: b, At: time.Duration(ms) * time.Millisecond}
}

// maxRandomChunk bounds a random chunk so that most messages of a test
// span several Data calls.
const maxRandomChunk = 23

// Chunkings returns the ways a test splits n bytes into the lengths of
// successive Data calls: all at once, one byte at a time, and random
// lengths that depend only on seed and n (so failures reproduce).
func Chunkings(seed uint64) map[string]func(n int) []int {
	return map[string]func(n int) []int{
		"whole": func(n int) []int { return []int{n} },
		"bytewise": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = 1
			}
			return out
		},
		"random": func(n int) []int {
			r := rand.New(rand.NewPCG(uint64(n), seed))
			var out []int
			for n > 0 {
				k := 1 + r.IntN(min(n, maxRandomChunk))
				out = append(out, k)
				n -= k
			}
			return out
		},
	}
}

// Collector is an Emitter that keeps every entry, in order.
type Collector struct{ Entries []*entry.Entry }

// Emit implements dissect.Emitter.
func (c *Collector) Emit(e *entry.Entry) { c.Entries = append(c.Entries, e) }

// Conn is a TCP connection from 10.0.0.1:40000 to 10.0.0.2:serverPort
// with default options; a test may change its Opts.
func Conn(serverPort uint16) *dissect.Conn {
	opts := dissect.DefaultOptions()
	return &dissect.Conn{
		Transport: "tcp",
		Client:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 1}), 40000),
		Server:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 2}), serverPort),
		FlowID:    "f1",
		Opts:      &opts,
	}
}

// Feed plays steps into p, splitting each step's bytes as chunk says, then
// ends the stream at t0+EndAfter.
func Feed(p dissect.StreamParser, steps []Step, chunk func(int) []int, t0 time.Time) {
	for _, s := range steps {
		if s.Gap > 0 {
			p.Gap(s.Dir, s.Gap)
			continue
		}
		b := s.Data
		ts := t0.Add(s.At)
		for _, n := range chunk(len(b)) {
			p.Data(s.Dir, b[:n], ts)
			b = b[n:]
		}
	}
	p.End(t0.Add(EndAfter))
}
