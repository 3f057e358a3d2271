package http2

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Bounds of one connection's state.
const (
	maxStreams = 1000     // open streams tracked; the oldest is evicted past it
	maxResync  = 64 << 10 // bytes held while looking for a frame boundary
	maxCtrl    = 4 << 10  // payload kept of a control frame (SETTINGS, GOAWAY, ...)
	closedRing = 256      // recently completed streams whose late frames are ignored
	// bigBuffer is the capacity above which a reused buffer is released
	// after use rather than kept for the next frame.
	bigBuffer = 64 << 10
	// maxSpare bounds the body buffers kept for reuse.
	maxSpare = 4
)

// halfState is where one direction's byte stream stands.
type halfState uint8

const (
	stPreface halfState = iota // the first bytes: the client preface, or not
	stSync                     // looking for a frame boundary
	stFrames                   // in sync, reading frames
)

// phase is the part of a frame's payload being read.
type phase uint8

const (
	phPrefix  phase = iota // pad length, priority fields, promised stream id
	phContent              // data, or a header block fragment
	phPad                  // padding
	phCtrl                 // a control frame's payload, kept (bounded)
	phSkip                 // ignored bytes
)

// half is one direction of the connection: the byte stream of one peer.
// halves are indexed by the direction the caller names; dir is the
// direction as the parser understands it, which differs after a flip.
type half struct {
	dir    dissect.Dir
	state  halfState
	pre    int  // bytes of the client preface matched
	seen   bool // bytes (or a gap) arrived
	synced bool // was in sync at least once
	gapped bool // lost bytes to a gap
	mid    bool // the HPACK context started unknown
	why    string
	lastTS time.Time

	// The frame being read.
	hdr     [frameHeaderLen]byte
	hdrN    int
	fh      frameHeader
	inFrame bool
	phase   phase
	left    uint32 // bytes left in this phase
	rest    uint32 // bytes left in the payload
	prefix  [6]byte
	prefixN int
	damaged bool    // bytes of this frame were lost to a gap
	target  *stream // the stream the frame's content is for; nil to discard
	ctrl    []byte

	blk  headerBlock
	hdec *headerDecoder

	rs, rsSpare []byte // resynchronisation buffer and its spare
}

// headerBlock is a header block being assembled from HEADERS or
// PUSH_PROMISE and CONTINUATION frames.
type headerBlock struct {
	active    bool
	stream    uint32 // the stream whose headers these are (the promised one for a push)
	push      bool
	endStream bool
	failed    string    // why it cannot be decoded; "" when it can
	ts        time.Time // of its first frame
	size      int64     // bytes of its frames, headers included
	buf       []byte
}

// parser dissects one HTTP/2 connection.
type parser struct {
	conn     dissect.Conn // a copy: its sides swap if the parser re-orients
	emit     dissect.Emitter
	opts     dissect.Options
	halves   [2]*half // by the caller's direction
	streams  map[uint32]*stream
	closed   [closedRing]uint32
	closedN  int
	seq      uint64
	oriented bool // which side is the client is known for sure
	goaway   string
	ended    bool
	stats    dissect.ParserStats

	tmpl    entry.Entry // the fields every entry of the connection shares
	spare   [][]byte    // body buffers of completed streams, for reuse
	scratch []byte      // to render gRPC messages in
	retired []*stream   // completed during this call, recycled as it returns
}

func newParser(c *dissect.Conn, emit dissect.Emitter) *parser {
	p := &parser{conn: *c, emit: emit, streams: make(map[uint32]*stream)}
	p.opts = dissect.DefaultOptions()
	if c.Opts != nil {
		p.opts = *c.Opts
	}
	p.opts.MaxBody = max(p.opts.MaxBody, 0)
	p.conn.Opts = &p.opts
	p.tmpl = *p.conn.NewEntry("", time.Time{})
	for d := range p.halves {
		p.halves[d] = &half{dir: dissect.Dir(d), hdec: newHeaderDecoder(), why: whyPlain}
	}
	return p
}

// Stats implements dissect.StatsReporter.
func (p *parser) Stats() dissect.ParserStats { return p.stats }

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	if p.ended || dir > dissect.ServerToClient || len(data) == 0 {
		return
	}
	h := p.halves[dir]
	h.seen = true
	h.lastTS = ts
	p.feed(h, data, ts)
	p.reuseStreams()
}

// feed runs data through h's state machine. Resynchronisation may hand back
// buffered bytes to replay before the rest of data.
func (p *parser) feed(h *half, data []byte, ts time.Time) {
	var pending []byte
	for !p.ended {
		if len(data) == 0 {
			if len(pending) == 0 {
				return
			}
			data, pending = pending, nil
		}
		switch h.state {
		case stPreface:
			data = p.preface(h, data)
		case stSync:
			replay, rest := p.resync(h, data)
			if replay == nil {
				data = rest
				break
			}
			// The replay is at most maxResync bytes, all of which fit in
			// the emptied buffer if sync is lost again, so a rest arises
			// only here, once.
			if len(rest) > 0 {
				if len(pending) > 0 {
					p.stats.Skipped += int64(len(pending))
				}
				pending = rest
			}
			data = replay
		case stFrames:
			data = data[p.frames(h, data, ts):]
		}
	}
}

// preface matches the client connection preface at the start of h.
func (p *parser) preface(h *half, data []byte) []byte {
	n := 0
	for ; n < len(data) && h.pre < len(clientPreface); n++ {
		if data[n] != clientPreface[h.pre] {
			// Not a connection start: look for frames in what came.
			h.rs = append(h.rs[:0], clientPreface[:h.pre]...)
			h.pre = 0
			h.state = stSync
			if h.dir == dissect.ClientToServer {
				p.setMid(h)
			}
			return data[n:]
		}
		h.pre++
	}
	if h.pre == len(clientPreface) {
		p.sawPreface(h)
	}
	return data[n:]
}

// sawPreface starts frames after the client preface, and the other side's
// frames at its start if it has sent nothing yet.
func (p *parser) sawPreface(h *half) {
	if h.dir != dissect.ClientToServer {
		p.flip()
	}
	p.oriented = true
	h.state, h.synced = stFrames, true
	if o := p.other(h); !o.seen {
		o.state, o.synced = stFrames, true
	}
}

// other returns the half of the other peer.
func (p *parser) other(h *half) *half {
	if p.halves[0] == h {
		return p.halves[1]
	}
	return p.halves[0]
}

// setMid records that h's HPACK context started unknown.
func (p *parser) setMid(h *half) {
	if !h.mid {
		h.mid = true
		h.hdec.reset()
	}
	if !h.gapped {
		h.why = whyMid
	}
}

// syncState is what syncPoint found.
type syncState uint8

const (
	syncNone  syncState = iota // no frame boundary in the bytes
	syncWait                   // a candidate needs more bytes to be confirmed
	syncFound                  // a confirmed frame boundary
)

// minChain is how many plausible frames must chain from a candidate
// boundary before the parser trusts it. Two would do for detection, but a
// false boundary inside a body would make up streams, so the parser waits
// for more (up to a full buffer, or the connection's end).
const minChain = 4

// syncPoint looks for a frame boundary in b: a plausible frame header
// followed by at least minChain-1 more with no implausible one in between,
// or by at least one more when b cannot grow: a full buffer, or the end of
// the connection (final) if the frames end exactly where b does.
func syncPoint(b []byte, final bool) (int, syncState) {
	for i := 0; i+frameHeaderLen <= len(b); i++ {
		if b[i+3] > lastKnownFrame {
			continue // the type byte: a quick test before the full one
		}
		h := parseFrameHeader(b[i:])
		if !h.plausible() {
			continue
		}
		n, broken, end := chain(b[i:])
		full := i == 0 && len(b) >= maxResync
		switch {
		case broken:
		case n >= minChain || n >= 2 && (full || final && i+end == len(b)):
			return bestChain(b, i), syncFound
		case !full && 2*frameHeaderLen+int(h.length) <= maxResync:
			return i, syncWait
		}
	}
	if final {
		return len(b), syncNone
	}
	return max(0, len(b)-frameHeaderLen+1), syncNone
}

// resync buffers data until a frame boundary is confirmed. It then returns
// the buffered bytes from the boundary on to replay, and what of data it
// did not take.
func (p *parser) resync(h *half, data []byte) (replay, rest []byte) {
	take := min(len(data), maxResync-len(h.rs))
	h.rs = append(h.rs, data[:take]...)
	rest = data[take:]
	return p.synced(h, rest, false)
}

// synced looks for a boundary in h.rs. Found, it switches h to frames and
// returns the bytes to replay from there.
func (p *parser) synced(h *half, rest []byte, final bool) (replay, remain []byte) {
	off, st := syncPoint(h.rs, final)
	p.stats.Skipped += int64(off)
	if st != syncFound {
		h.rs = h.rs[:copy(h.rs, h.rs[off:])]
		return nil, rest
	}
	first := parseFrameHeader(h.rs[off:])
	fresh := off == 0 && !h.synced && !h.gapped && h.dir == dissect.ServerToClient &&
		first.typ == frameSettings && !first.has(flagAck)
	if !fresh && !h.synced {
		// A server's first frame is SETTINGS; anything else means the
		// capture began after the connection's start.
		p.setMid(h)
	}
	if h.synced {
		p.stats.Resyncs++
	}
	h.synced = true
	h.state = stFrames
	replay = h.rs[off:]
	h.rs, h.rsSpare = h.rsSpare[:0], h.rs
	if cap(h.rs) > maxResync {
		h.rs = nil
	}
	return replay, rest
}

// flushSync, at the end of the connection, accepts a boundary that a
// shorter chain supports and reads the frames held after it.
func (p *parser) flushSync(h *half, ts time.Time) {
	// Each round replays from a boundary past the previous one, so the
	// buffer shrinks until it is empty or holds no boundary.
	for h.state == stSync && len(h.rs) > 0 {
		replay, _ := p.synced(h, nil, true)
		if replay == nil {
			break
		}
		p.feed(h, replay, ts)
	}
	h.rs = h.rs[:0]
}

// frames reads frames from data and returns how much it used; it stops
// early when sync is lost.
func (p *parser) frames(h *half, data []byte, ts time.Time) int {
	i := 0
	for i < len(data) && h.state == stFrames && !p.ended {
		if !h.inFrame {
			n := copy(h.hdr[h.hdrN:], data[i:])
			h.hdrN += n
			i += n
			if h.hdrN == frameHeaderLen {
				h.hdrN = 0
				p.beginFrame(h, ts)
			}
			continue
		}
		i += p.payload(h, data[i:], ts)
	}
	return i
}

// loseSync drops out of frames after an implausible frame header: the
// header's bytes are searched again for a boundary.
func (p *parser) loseSync(h *half) {
	p.stats.Resyncs++
	p.abandonFrame(h, errBlockBroken)
	h.state = stSync
	h.rs = append(h.rs[:0], h.hdr[:]...)
	p.hpackLost(h, whyPlain)
}

// hpackLost resets h's dynamic table after blocks were lost or could not be
// parsed; why says so in the entries of blocks that then cannot be decoded.
func (p *parser) hpackLost(h *half, why string) {
	h.hdec.reset()
	if h.why == whyPlain {
		h.why = why
	}
}

// beginFrame starts the frame whose header is in h.hdr.
func (p *parser) beginFrame(h *half, ts time.Time) {
	fh := parseFrameHeader(h.hdr[:])
	if !fh.valid() {
		p.loseSync(h)
		return
	}
	if h.blk.active && (fh.typ != frameContinuation || fh.stream != h.blk.stream) {
		// A header block must continue in CONTINUATION frames of its
		// stream, with nothing in between.
		h.blk.failed = errBlockBroken
		p.finishBlock(h, ts)
	}
	h.fh, h.inFrame, h.damaged, h.target = fh, true, false, nil
	h.rest, h.prefixN = fh.length, 0
	h.ctrl = h.ctrl[:0]
	switch fh.typ {
	case frameData:
		h.target = p.streamFor(fh.stream, ts, false)
		h.phase, h.left = phPrefix, fh.prefixLen()
	case frameHeaders:
		p.startBlock(h, fh.stream, false, fh.has(flagEndStream), ts)
		h.phase, h.left = phPrefix, fh.prefixLen()
	case framePushPromise:
		if !p.oriented && h.dir == dissect.ClientToServer {
			p.flip() // only servers push
		}
		h.phase, h.left = phPrefix, fh.prefixLen()
	case frameContinuation:
		if !h.blk.active {
			// The start of this block was lost, and what it added to
			// the dynamic table is unknown.
			p.hpackLost(h, whyPlain)
			h.phase, h.left = phSkip, fh.length
			break
		}
		h.phase, h.left = phContent, fh.length
	case framePriority, frameRSTStream, frameSettings, framePing, frameGoAway, frameWindowUpdate:
		h.phase, h.left = phCtrl, fh.length
		if fh.typ == frameRSTStream {
			h.target = p.streams[fh.stream]
		}
	default:
		h.phase, h.left = phSkip, fh.length
	}
	if s := h.target; s != nil {
		s.account(h.dir, frameHeaderLen+int64(fh.length), ts)
	}
	if h.blk.active {
		// Header frames count for the stream once the block completes.
		h.blk.size += frameHeaderLen + int64(fh.length)
	}
	p.nextPhase(h, ts)
}

// payload consumes payload bytes of the current frame and returns how many.
func (p *parser) payload(h *half, b []byte, ts time.Time) int {
	n := min(uint32(len(b)), h.left)
	chunk := b[:n]
	switch h.phase {
	case phPrefix:
		h.prefixN += copy(h.prefix[h.prefixN:], chunk)
	case phContent:
		p.content(h, chunk)
	case phCtrl:
		if room := maxCtrl - len(h.ctrl); room > 0 {
			h.ctrl = append(h.ctrl, chunk[:min(len(chunk), room)]...)
		}
	}
	h.left -= n
	h.rest -= n
	p.nextPhase(h, ts)
	return int(n)
}

// nextPhase moves past phases that are complete, and ends the frame after
// the last.
func (p *parser) nextPhase(h *half, ts time.Time) {
	for h.inFrame && h.left == 0 {
		switch h.phase {
		case phPrefix:
			p.prefixDone(h, ts)
		case phContent:
			h.phase, h.left = phPad, h.rest
		default:
			p.endFrame(h, ts)
		}
	}
}

// prefixDone reads the pad length and the promised stream, and starts the
// content.
func (p *parser) prefixDone(h *half, ts time.Time) {
	fh := h.fh
	var pad uint32
	if fh.has(flagPadded) {
		pad = uint32(h.prefix[0])
	}
	if pad > h.rest {
		// Padding longer than the payload: a malformed frame.
		if h.blk.active {
			h.blk.failed = errBlockBroken
		}
		h.phase, h.left = phSkip, h.rest
		return
	}
	if fh.typ == framePushPromise {
		off := 0
		if fh.has(flagPadded) {
			off = 1
		}
		promised := binary.BigEndian.Uint32(h.prefix[off:]) & 0x7fffffff
		p.startBlock(h, promised, true, false, ts)
		h.blk.size = frameHeaderLen + int64(fh.length)
	}
	h.phase, h.left = phContent, h.rest-pad
}

// content delivers a chunk of a frame's content.
func (p *parser) content(h *half, b []byte) {
	switch h.fh.typ {
	case frameData:
		if s := h.target; s != nil {
			p.data(s, h.dir, b)
		}
	case frameHeaders, framePushPromise, frameContinuation:
		blk := &h.blk
		if !blk.active || blk.failed != "" {
			return
		}
		if len(blk.buf)+len(b) > maxHeaderBlock {
			blk.failed = errBlockTooLarge
			return
		}
		blk.buf = append(blk.buf, b...)
	}
}

// endFrame acts on a complete frame.
func (p *parser) endFrame(h *half, ts time.Time) {
	h.inFrame = false
	fh := h.fh
	switch fh.typ {
	case frameData:
		if s := h.target; s != nil && fh.has(flagEndStream) {
			p.sideEnded(s, h.dir, ts)
		}
	case frameHeaders, framePushPromise, frameContinuation:
		if h.blk.active && fh.has(flagEndHeaders) {
			p.finishBlock(h, ts)
		}
	case frameRSTStream:
		if s := h.target; s != nil && len(h.ctrl) == 4 && !h.damaged {
			p.rstStream(s, binary.BigEndian.Uint32(h.ctrl))
		}
	case frameSettings:
		if !fh.has(flagAck) && !h.damaged {
			p.settings(h, h.ctrl)
		}
	case frameGoAway:
		if len(h.ctrl) >= 8 && !h.damaged {
			p.goAway(h, binary.BigEndian.Uint32(h.ctrl)&0x7fffffff, binary.BigEndian.Uint32(h.ctrl[4:]))
		}
	}
	h.target = nil
	if cap(h.ctrl) > maxCtrl {
		h.ctrl = nil
	}
}

// abandonFrame ends the frame being read without its remaining bytes.
func (p *parser) abandonFrame(h *half, why string) {
	if h.inFrame {
		p.damageFrame(h, why)
		h.inFrame = false
		h.target = nil
	}
	if h.blk.active {
		h.blk.failed = why
		p.finishBlock(h, h.lastTS)
	}
	h.hdrN = 0
}

// damageFrame records that bytes of the current frame were lost.
func (p *parser) damageFrame(h *half, why string) {
	h.damaged = true
	switch h.fh.typ {
	case frameData:
		if s := h.target; s != nil && !s.done {
			s.lost(h.dir, int(h.rest))
		}
	case frameHeaders, framePushPromise, frameContinuation:
		if h.blk.active {
			h.blk.failed = why
		} else {
			p.hpackLost(h, whyGap)
		}
	}
}

// Gap implements dissect.StreamParser.
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.ended || dir > dissect.ServerToClient || n <= 0 {
		return
	}
	h := p.halves[dir]
	h.seen = true
	p.stats.Skipped += int64(n)
	if h.state == stFrames && h.inFrame && uint64(n) <= uint64(h.rest) {
		p.gapInFrame(h, uint32(n))
		return
	}
	// The frame boundary is lost: whatever was in flight may be missing.
	p.abandonFrame(h, errGap)
	for _, s := range p.streams {
		if !s.ended[h.dir] {
			s.fail(errGap)
		}
	}
	h.gapped = true
	h.why = whyGap
	p.hpackLost(h, whyGap)
	h.state = stSync
	h.rs = h.rs[:0]
	h.pre = 0
}

// gapInFrame skips n lost bytes inside the current frame, whose boundaries
// are still known.
func (p *parser) gapInFrame(h *half, n uint32) {
	switch {
	case h.phase == phContent && n <= h.left:
		if h.fh.typ == frameData {
			if s := h.target; s != nil && !s.done {
				s.lost(h.dir, int(n))
			}
		} else if h.blk.active {
			h.blk.failed = errGap
		}
	case h.phase == phPad && n <= h.left:
	default:
		// The gap covers fields the rest of the frame depends on.
		p.damageFrame(h, errGap)
		h.phase, h.left = phSkip, h.rest
	}
	h.left -= n
	h.rest -= n
	p.nextPhase(h, h.lastTS)
}

// End implements dissect.StreamParser.
func (p *parser) End(ts time.Time) {
	if p.ended {
		return
	}
	for _, h := range p.halves {
		p.flushSync(h, ts)
	}
	ids := make([]uint32, 0, len(p.streams))
	for id := range p.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := p.streams[id]
		var err string
		switch {
		case !s.respSeen && p.goaway != "":
			err = p.goaway
		case !s.respSeen:
			err = errNoResponse
		case !s.ended[dissect.ServerToClient]:
			err = errIncomplete
		}
		p.finish(s, err)
	}
	p.ended = true
	p.reuseStreams()
}

// flip swaps the parser's idea of which side is the client: the frames
// showed the detector's guess was wrong. Streams built so far had their
// sides mixed up, and are dropped.
func (p *parser) flip() {
	for _, h := range p.halves {
		h.dir = h.dir.Reverse()
	}
	p.conn.Client, p.conn.Server = p.conn.Server, p.conn.Client
	p.tmpl = *p.conn.NewEntry("", time.Time{})
	for id, s := range p.streams {
		s.done = true
		delete(p.streams, id)
		p.stats.Dropped++
	}
}

// settings applies a SETTINGS frame's parameters. The header table size
// bounds the other direction's encoder.
func (p *parser) settings(h *half, b []byte) {
	for ; len(b) >= 6; b = b[6:] {
		if binary.BigEndian.Uint16(b) == settingsHeaderTableSize {
			p.other(h).hdec.peerTableSize(binary.BigEndian.Uint32(b[2:]))
		}
	}
}

// goAway completes the streams the sender says it never processed: those
// the receiver opened above lastID.
func (p *parser) goAway(h *half, lastID, code uint32) {
	name := errCodeName(code)
	if code != 0 {
		p.goaway = "GOAWAY " + name
	}
	// Streams the receiver of the GOAWAY opened: odd ones if the sender
	// is the server.
	parity := uint32(1)
	if h.dir == dissect.ClientToServer {
		parity = 0
	}
	var ids []uint32
	for id, s := range p.streams {
		if id > lastID && id%2 == parity && !s.respSeen {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		p.finish(p.streams[id], "GOAWAY "+name+" (stream not processed)")
	}
}
