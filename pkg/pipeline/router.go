package pipeline

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// router picks the shard of each packet. The flows on the ports of a
// protocol whose parsers share state between connections all go to shard
// 0, so that they see each other's packets in capture order. Any other
// flow must stay on one shard for as long as that shard's assembler may
// hold it, but which shard is free: a flow hash alone put 69% of the bench
// capture's packets on one of two shards (a handful of heavy keep-alive
// connections), and that shard alone then set the pace.
//
// So flows are hashed into buckets, and a bucket is given, when first
// used, to the shard with the fewest recently active buckets. A bucket is
// given up only after all its flows have been idle for longer than the
// assemblers keep an idle connection (plus their once-a-second flush), at
// a round boundary: its shard has closed them all by the end of that
// round, so a later packet on those ports starts a new connection on any
// shard exactly as it would have on the old one. Everything depends only
// on the packet sequence, so the same capture is routed the same way
// every time. UDP flows, cheap and short, keep the plain hash.
type router struct {
	shards  int
	pinned  *portSet      // ports of shared-state protocols; nil for none
	keep    time.Duration // how long a bucket outlives its last packet
	buckets []bucket      // routeBuckets of them; nil for one shard
	active  []int         // per shard: buckets with a packet in the last recent
	swept   time.Time     // packet time of the last sweep
}

const (
	routeBuckets = 4096
	recent       = 2 * time.Second
)

type bucket struct {
	last  time.Time // newest packet time (the assemblers' clock)
	shard int32
	used  bool
}

// newRouter routes to shards shards; shared are the ports of shared-state
// protocols.
func newRouter(shards int, tcpIdle time.Duration, shared []uint16) *router {
	r := &router{shards: shards}
	if shards == 1 {
		return r
	}
	// 2 s beyond the idle timeout: the assembler closes idle flows up to
	// a second late (it flushes once a second).
	r.keep = tcpIdle + 2*time.Second
	r.buckets = make([]bucket, routeBuckets)
	r.active = make([]int, shards)
	for _, port := range shared {
		if r.pinned == nil {
			r.pinned = new(portSet)
		}
		r.pinned.add(port)
	}
	return r
}

// shard returns the shard of f, whose flowHash is hash.
func (r *router) shard(f *capture.Frame, hash uint64) int {
	switch {
	case r.shards == 1:
		return 0
	case r.pinned != nil && (r.pinned.has(f.SrcPort) || r.pinned.has(f.DstPort)):
		return 0
	case f.Proto == capture.IPProtoTCP:
		return r.tcpShard(hash, f.Timestamp)
	}
	return shardOfHash(hash, r.shards)
}

// tcpShard returns the shard of a TCP packet of the flow with this hash.
func (r *router) tcpShard(hash uint64, ts time.Time) int {
	b := &r.buckets[mix(hash)%routeBuckets]
	if !b.used {
		best := 0
		for i, n := range r.active {
			if n < r.active[best] {
				best = i
			}
		}
		r.active[best]++
		*b = bucket{last: ts, shard: int32(best), used: true}
	} else if ts.After(b.last) {
		b.last = ts
	}
	return int(b.shard)
}

// sweep frees the buckets idle past keep and recounts the active ones, at
// most once a second of packet time. Call it at a round boundary, after
// the round went out: now is that round's time.
func (r *router) sweep(now time.Time) {
	if r.buckets == nil || now.Sub(r.swept) < time.Second {
		return
	}
	r.swept = now
	clear(r.active)
	for i := range r.buckets {
		b := &r.buckets[i]
		switch idle := now.Sub(b.last); {
		case !b.used:
		case idle > r.keep:
			*b = bucket{}
		case idle <= recent:
			r.active[b.shard]++
		}
	}
}

// portSet is a set of ports, one bit each.
type portSet [1 << 16 / 64]uint64

func (s *portSet) add(port uint16)      { s[port>>6] |= 1 << (port & 63) }
func (s *portSet) has(port uint16) bool { return s[port>>6]&(1<<(port&63)) != 0 }
