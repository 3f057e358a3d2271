package pipeline

import "time"

// router picks the shard of each TCP packet. A flow must stay on one shard
// for as long as that shard's assembler may hold it, but which shard is
// free: a flow hash alone put 69% of the bench capture's packets on one of
// two shards (a handful of heavy keep-alive connections), and that shard
// alone then set the pace.
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
	keep    time.Duration // how long a bucket outlives its last packet
	buckets [routeBuckets]bucket
	active  []int     // per shard: buckets with a packet in the last recent
	swept   time.Time // packet time of the last sweep
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

func newRouter(shards int, tcpIdle time.Duration) *router {
	// 2 s beyond the idle timeout: the assembler closes idle flows up to
	// a second late (it flushes once a second).
	return &router{keep: tcpIdle + 2*time.Second, active: make([]int, shards)}
}

// shard returns the shard of a TCP packet of the flow with this hash.
func (r *router) shard(hash uint64, ts time.Time) int {
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
	if now.Sub(r.swept) < time.Second {
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
