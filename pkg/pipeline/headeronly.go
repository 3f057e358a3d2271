package pipeline

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// headerOnly is the set of TCP flows the shards only count (no parser
// claimed them; see assemble.Counter). The reader copies just the headers
// of their packets into a round: a bulk transfer of an unknown protocol
// then costs no copy of its payload. Shards add and remove flows
// (Assembler.OnCounted); the reader looks them up by the flow hash it
// computes anyway to pick the shard.
type headerOnly struct {
	n  atomic.Int64 // flows in m: the reader skips the lookup when zero
	mu sync.RWMutex
	m  map[uint64]capture.Pair // by flowHash; a colliding second flow is left out
}

// set adds (on) or removes a flow; the assemblers call it (OnCounted).
func (h *headerOnly) set(a, b netip.AddrPort, on bool) {
	hash := endHash(a.Addr().As16(), a.Port()) + endHash(b.Addr().As16(), b.Port())
	k := capture.PairOf(a, b)
	h.mu.Lock()
	defer h.mu.Unlock()
	old, ok := h.m[hash]
	switch {
	case on && !ok:
		if h.m == nil {
			h.m = make(map[uint64]capture.Pair)
		}
		h.m[hash] = k
	case !on && ok && old == k:
		delete(h.m, hash)
	}
	h.n.Store(int64(len(h.m)))
}

// zeros stands in for the payload of a frame copied without it: the count
// path reads only its length. Nothing writes to it.
var zeros [capture.MaxPacketLen]byte

// strip reports whether only the headers of f, whose flowHash is hash,
// need copying. A SYN on a counted flow's ports is a new connection, whose
// bytes are needed for detection: the flow leaves the set (the shard,
// which may still be counting the old one, removes it again when that
// ends, to no effect).
func (h *headerOnly) strip(f *capture.Frame, hash uint64) bool {
	if h.n.Load() == 0 || f.Proto != capture.IPProtoTCP {
		return false
	}
	syn := f.Flags&capture.TCPSyn != 0
	if !syn && (len(f.Payload) == 0 || len(f.Payload) > len(zeros)) {
		return false
	}
	h.mu.RLock()
	k, ok := h.m[hash]
	h.mu.RUnlock()
	if !ok || k != capture.PairOf(netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort)) {
		return false
	}
	if syn {
		h.set(k.Lo, k.Hi, false)
		return false
	}
	return true
}
