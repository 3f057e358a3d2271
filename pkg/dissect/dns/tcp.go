package dns

import (
	"encoding/binary"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

// streamParser reads length-prefixed messages (RFC 1035 4.2.2) from both
// directions of a TCP connection; a connection may carry many queries,
// pipelined and answered out of order (RFC 7766 6.2.1.1).
type streamParser struct {
	t    *tracker
	dirs [2]frameReader
}

func newStream(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
	return &streamParser{t: newTracker(c, emit, "tcp")}
}

// frameReader reassembles the frames of one direction. buf holds at most
// one frame (64 KiB + 2), and only when a frame spans several segments.
type frameReader struct {
	buf    []byte
	start  time.Time // when the first byte of the current frame arrived
	desync bool      // after a gap: wait for bytes that look like a frame
}

func (p *streamParser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	r := &p.dirs[dir&1]
	if r.desync {
		if !frameStart(data) {
			p.t.stats.Skipped += int64(len(data))
			return
		}
		r.desync = false
	}
	for len(data) > 0 {
		if len(r.buf) == 0 {
			r.start = ts
			if n, ok := frameLen(data); ok && len(data) >= 2+n {
				p.frame(data[:2+n], r.start, ts) // whole frame in hand: no copy
				data = data[2+n:]
				continue
			}
		}
		data = r.fill(data)
		if n, ok := frameLen(r.buf); ok && len(r.buf) == 2+n {
			p.frame(r.buf, r.start, ts)
			r.buf = r.buf[:0]
		}
	}
}

// fill copies from data into the buffer up to the end of the current frame
// and returns what is left.
func (r *frameReader) fill(data []byte) []byte {
	need := 2
	if n, ok := frameLen(r.buf); ok {
		need = 2 + n
	}
	take := min(need-len(r.buf), len(data))
	r.buf = append(r.buf, data[:take]...)
	return data[take:]
}

func frameLen(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(b)), true
}

// frame handles one complete frame, length prefix included; start is when
// its first byte arrived and end when its last did.
func (p *streamParser) frame(f []byte, start, end time.Time) {
	m, err := parseMessage(f[2:])
	if err != nil {
		p.t.stats.Dropped++
		p.t.expire(end)
		return
	}
	m.size = len(f)
	ts := end // a response counts from its last byte
	if !m.response() {
		ts = start // a query from its first
	}
	p.t.message(m, ts)
}

// frameStart reports whether data plausibly starts a frame, to resume
// after a gap; DNS frames usually start a segment.
func frameStart(data []byte) bool {
	n, ok := frameLen(data)
	if !ok || n < headerLen || len(data) < 2+headerLen {
		return false
	}
	return readHeader(data[2:]).plausible()
}

// Gap drops the partial frame of dir and resynchronises on a later segment
// that starts a frame.
func (p *streamParser) Gap(dir dissect.Dir, _ int) {
	r := &p.dirs[dir&1]
	p.t.stats.Resyncs++
	p.t.stats.Skipped += int64(len(r.buf))
	r.buf = r.buf[:0]
	r.desync = true
}

func (p *streamParser) End(time.Time) {
	for i := range p.dirs {
		p.t.stats.Skipped += int64(len(p.dirs[i].buf))
		p.dirs[i].buf = nil
	}
	p.t.end()
}

// Stats implements dissect.StatsReporter.
func (p *streamParser) Stats() dissect.ParserStats { return p.t.stats }
