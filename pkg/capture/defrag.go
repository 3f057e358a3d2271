package capture

import (
	"bytes"
	"net/netip"
	"time"
)

// fragKey identifies the datagram a fragment belongs to (RFC 791, 8200).
// For IPv6, proto is the fragment header's next header.
type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

// fragPiece is one fragment's payload: bytes [off, end) of the datagram,
// stored at buf[pos:].
type fragPiece struct{ off, end, pos int32 }

// fragDatagram collects the fragments of one datagram in arrival order;
// pieces is kept sorted by offset and free of overlaps.
type fragDatagram struct {
	key    fragKey
	first  int64 // packet time of its first fragment, ns
	total  int   // payload length, once the last fragment arrived; else -1
	have   int   // payload bytes held
	wire   int   // wire length of its frames
	dead   bool  // overlapped: drop the rest of its fragments until timeout
	pieces []fragPiece
	buf    []byte
	cost   int // bytes charged against defrag.limit
	older  *fragDatagram
	newer  *fragDatagram
}

const (
	maxDatagram      = 65535
	maxFragPieces    = 1024 // 8-byte fragments of a 64 KiB datagram need 8192: refuse
	fragOverhead     = 256  // bytes charged per datagram for its bookkeeping
	fragPieceCost    = 12
	minFragBuf       = 2048
	maxFreeDatagrams = 16
)

// defrag reassembles IP datagrams within a memory budget. Datagrams are
// listed oldest first, so timeouts and evictions take the oldest.
type defrag struct {
	limit   int   // bytes; negative disables reassembly
	timeout int64 // ns of packet time
	now     int64 // latest packet time seen, ns
	held    int   // bytes charged, live and free datagrams alike
	table   map[fragKey]*fragDatagram
	oldest  *fragDatagram
	newest  *fragDatagram
	free    []*fragDatagram // recycled with their buffers
	out     []byte          // the last reassembled payload
	wire    int             // wire length of the last reassembled datagram
	stats   *DecoderStats
}

// tick advances packet time and drops datagrams that timed out.
func (q *defrag) tick(ts time.Time) {
	if now := ts.UnixNano(); now > q.now {
		q.now = now
	}
	for q.oldest != nil && q.now-q.oldest.first > q.timeout {
		q.evict(q.oldest)
	}
}

// add stores one fragment: off and more come from its header, data is its
// payload and wire its frame's length. When the fragment completes its
// datagram, add returns the reassembled payload, valid until the next add.
func (q *defrag) add(key fragKey, off int, more bool, data []byte, wire int) ([]byte, bool) {
	if q.limit < 0 || len(data) == 0 || off+len(data) > maxDatagram || (more && len(data)%8 != 0) {
		q.stats.FragmentsDropped++
		return nil, false
	}
	dg := q.table[key]
	if dg == nil {
		if dg = q.create(key); dg == nil {
			q.stats.FragmentsDropped++
			return nil, false
		}
	}
	if dg.dead {
		q.stats.FragmentsDropped++
		return nil, false
	}
	end := off + len(data)
	if !dg.fits(off, end, more) {
		q.kill(dg)
		return nil, false
	}
	i, dup, overlap := dg.search(off, end, data)
	switch {
	case dup: // a retransmitted or doubly captured copy: harmless
		q.stats.FragmentsDropped++
		return nil, false
	case overlap:
		q.kill(dg)
		return nil, false
	case !q.reserve(dg, len(data)):
		q.kill(dg)
		return nil, false
	}
	dg.insert(i, off, end, data)
	dg.wire += wire
	if !more {
		dg.total = end
	}
	if dg.total >= 0 && dg.have == dg.total {
		return q.complete(dg), true
	}
	return nil, false
}

// fits checks a fragment against what the datagram already knows of its
// length.
func (dg *fragDatagram) fits(off, end int, more bool) bool {
	if len(dg.pieces) > 0 && !more && dg.pieces[len(dg.pieces)-1].end > int32(end) {
		return false // data beyond the claimed end
	}
	if dg.total < 0 {
		return true
	}
	if !more {
		return end == dg.total // two different last fragments
	}
	return end <= dg.total
}

// search finds where [off, end) goes in pieces and whether it duplicates
// or overlaps a piece already held. A duplicate has the same bounds and
// the same bytes (RFC 8200 allows dropping exact duplicates only).
func (dg *fragDatagram) search(off, end int, data []byte) (i int, dup, overlap bool) {
	lo, hi := 0, len(dg.pieces)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if int(dg.pieces[mid].off) < off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	i = lo
	if i < len(dg.pieces) {
		p := dg.pieces[i]
		if int(p.off) == off && int(p.end) == end {
			held := dg.buf[p.pos : int(p.pos)+end-off]
			return i, bytes.Equal(held, data), !bytes.Equal(held, data)
		}
		if int(p.off) < end {
			return i, false, true
		}
	}
	if i > 0 && int(dg.pieces[i-1].end) > off {
		return i, false, true
	}
	return i, false, false
}

func (dg *fragDatagram) insert(i, off, end int, data []byte) {
	pos := len(dg.buf)
	dg.buf = append(dg.buf, data...) // reserve made room: no allocation
	dg.pieces = append(dg.pieces, fragPiece{})
	copy(dg.pieces[i+1:], dg.pieces[i:])
	dg.pieces[i] = fragPiece{off: int32(off), end: int32(end), pos: int32(pos)}
	dg.have += end - off
}

// reserve makes room in dg for n more bytes and one more piece, charging
// the budget and evicting older datagrams (never dg) to stay within it.
func (q *defrag) reserve(dg *fragDatagram, n int) bool {
	if len(dg.pieces) >= maxFragPieces {
		return false
	}
	bufCap, pieceCap := cap(dg.buf), cap(dg.pieces)
	if len(dg.buf)+n > bufCap {
		bufCap = min(max(2*bufCap, len(dg.buf)+n, minFragBuf), maxDatagram)
	}
	if len(dg.pieces) == pieceCap {
		pieceCap = min(max(2*pieceCap, 8), maxFragPieces)
	}
	extra := bufCap - cap(dg.buf) + (pieceCap-cap(dg.pieces))*fragPieceCost
	if extra == 0 {
		return true
	}
	if !q.makeRoom(extra, dg) {
		return false
	}
	if bufCap > cap(dg.buf) {
		buf := make([]byte, len(dg.buf), bufCap)
		copy(buf, dg.buf)
		dg.buf = buf
	}
	if pieceCap > cap(dg.pieces) {
		pieces := make([]fragPiece, len(dg.pieces), pieceCap)
		copy(pieces, dg.pieces)
		dg.pieces = pieces
	}
	q.held += extra
	dg.cost += extra
	return true
}

// makeRoom frees memory until n more bytes fit in the budget: recycled
// datagrams first, then the oldest live ones other than keep.
func (q *defrag) makeRoom(n int, keep *fragDatagram) bool {
	for q.held+n > q.limit {
		switch {
		case len(q.free) > 0:
			dg := q.free[len(q.free)-1]
			q.free[len(q.free)-1] = nil
			q.free = q.free[:len(q.free)-1]
			q.held -= dg.cost
		case q.oldest != nil && q.oldest != keep:
			q.evict(q.oldest)
		default:
			return false
		}
	}
	return true
}

// create starts a datagram, recycling a free one when it can.
func (q *defrag) create(key fragKey) *fragDatagram {
	var dg *fragDatagram
	if n := len(q.free); n > 0 {
		dg = q.free[n-1]
		q.free[n-1] = nil
		q.free = q.free[:n-1]
	} else {
		if !q.makeRoom(fragOverhead, nil) {
			return nil
		}
		dg = &fragDatagram{cost: fragOverhead}
		q.held += fragOverhead
	}
	dg.key, dg.first, dg.total = key, q.now, -1
	if q.table == nil {
		q.table = make(map[fragKey]*fragDatagram)
	}
	q.table[key] = dg
	dg.older = q.newest
	if q.newest != nil {
		q.newest.newer = dg
	} else {
		q.oldest = dg
	}
	q.newest = dg
	return dg
}

// kill drops what dg holds and keeps it as a tombstone, so that the rest
// of its fragments are dropped too (RFC 5722).
func (q *defrag) kill(dg *fragDatagram) {
	q.stats.FragmentsDropped += uint64(len(dg.pieces)) + 1
	dg.dead = true
	dg.pieces = dg.pieces[:0]
	dg.buf = dg.buf[:0]
	dg.have = 0
}

// evict drops an incomplete datagram (timeout or memory pressure).
func (q *defrag) evict(dg *fragDatagram) {
	if !dg.dead {
		q.stats.FragmentsDropped += uint64(len(dg.pieces))
	}
	q.release(dg)
}

// complete copies the pieces of a full datagram into the output buffer.
func (q *defrag) complete(dg *fragDatagram) []byte {
	if q.out == nil {
		q.out = make([]byte, maxDatagram)
	}
	for _, p := range dg.pieces {
		copy(q.out[p.off:p.end], dg.buf[p.pos:])
	}
	n := dg.total
	q.wire = dg.wire
	q.release(dg)
	return q.out[:n]
}

// release unlinks dg and recycles it (or forgets it if enough are free).
func (q *defrag) release(dg *fragDatagram) {
	delete(q.table, dg.key)
	if dg.older != nil {
		dg.older.newer = dg.newer
	} else {
		q.oldest = dg.newer
	}
	if dg.newer != nil {
		dg.newer.older = dg.older
	} else {
		q.newest = dg.older
	}
	*dg = fragDatagram{pieces: dg.pieces[:0], buf: dg.buf[:0], cost: dg.cost}
	if len(q.free) < maxFreeDatagrams {
		q.free = append(q.free, dg)
		return
	}
	q.held -= dg.cost
}
