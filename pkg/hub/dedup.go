package hub

import (
	"sync"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// When both ends of a call through a Service are tapped, the exchange is
// captured twice: in the client's network namespace, addressed to the
// Service IP, and in the server's, addressed to the pod after the node's
// DNAT. The two copies have the same client address and port, the same
// request, nearly the same start time, and different destinations; one
// TCP connection never has two destinations, so that is a safe test.
const (
	// dedupTolerance is how far apart the two copies' start times may be
	// (two nodes' clocks, and the hop between the namespaces).
	dedupTolerance = 250 * time.Millisecond
	// dedupKeep is how long an exchange is remembered.
	dedupKeep = 5 * time.Second
	// dedupMaxKeys bounds the memory; past it, new exchanges are not
	// remembered until the next sweep (a duplicate may then get through).
	dedupMaxKeys = 200_000
)

type dedupKey struct {
	srcIP                       string
	srcPort                     int
	proto, method, path, status string
}

type dedupSeen struct {
	dstIP string
	ts    time.Time // the exchange's start
	added time.Time
}

// natDedup remembers recent exchanges to drop their second copy.
type natDedup struct {
	mu        sync.Mutex
	seen      map[dedupKey]dedupSeen
	lastSweep time.Time
}

func newNATDedup() *natDedup { return &natDedup{seen: map[dedupKey]dedupSeen{}} }

// duplicate reports whether e is the second copy of an exchange already
// passed on, and remembers e otherwise.
func (d *natDedup) duplicate(e *entry.Entry, now time.Time) bool {
	if e.Src.IP == "" || e.Src.Port == 0 || e.Dst.IP == "" {
		return false
	}
	k := dedupKey{e.Src.IP, e.Src.Port, e.Proto, e.Method, e.Path, e.Status}
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.lastSweep) > time.Second {
		d.sweep(now)
	}
	if s, ok := d.seen[k]; ok && now.Sub(s.added) < dedupKeep && s.dstIP != e.Dst.IP {
		if dt := e.TS.Sub(s.ts); dt < dedupTolerance && dt > -dedupTolerance {
			return true
		}
	}
	if len(d.seen) < dedupMaxKeys {
		d.seen[k] = dedupSeen{dstIP: e.Dst.IP, ts: e.TS, added: now}
	}
	return false
}

func (d *natDedup) sweep(now time.Time) {
	d.lastSweep = now
	for k, s := range d.seen {
		if now.Sub(s.added) >= dedupKeep {
			delete(d.seen, k)
		}
	}
}
