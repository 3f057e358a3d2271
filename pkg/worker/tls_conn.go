package worker

import (
	"net/netip"
	"sync"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/tracer"
)

// TLS plaintext becomes synthetic TCP: each traced connection is replayed
// as a handshake (SYN, SYN-ACK, ACK, so the assembler knows who opened it)
// and then one segment per plaintext chunk, with sequence numbers that
// follow each direction's byte count. Bytes the tracer could not copy
// (truncated calls, lost chunks) leave holes in the sequence space, which
// the assembler reports as gaps, as it would for packet loss.

// Bounds of the connection table.
const (
	maxTLSConns = 16384
	// tlsConnIdle closes a connection that moved no plaintext this long
	// (FIN both ways, so its flow ends in the assembler too).
	tlsConnIdle = 90 * time.Second
	tlsISN      = 1 // initial sequence number of both directions
)

// tlsConnKey identifies one side's view of a connection: the process, its
// TLS object and the socket's ends.
type tlsConnKey struct {
	pid           uint32
	conn          uint64
	local, remote netip.AddrPort
}

// tlsFlowKey identifies a connection whichever side traced it: both ends,
// ordered. Loopback ends are only unique inside their namespace.
type tlsFlowKey struct {
	a, b  netip.AddrPort
	netns uint32
}

func flowKeyOf(ev *tracer.Event) tlsFlowKey {
	a, b := ev.Local, ev.Remote
	if b.Addr().Less(a.Addr()) || (a.Addr() == b.Addr() && b.Port() < a.Port()) {
		a, b = b, a
	}
	k := tlsFlowKey{a: a, b: b}
	if a.Addr().IsLoopback() {
		k.netns = ev.Netns
	}
	return k
}

// tlsConn is the replay state of one connection.
type tlsConn struct {
	flow           tlsFlowKey
	iface          int
	client, server netip.AddrPort
	// Per direction, 0 client to server, 1 server to client: the next
	// sequence number, and the call whose chunks are arriving.
	next     [2]uint32
	callBase [2]uint32
	callLen  [2]uint32
	callOpen [2]bool
	last     time.Time
	// procs: this connection's ends in the process table; known tells
	// which ends are there already, so later chunks take no lock.
	procs *tlsProcs
	known [2]bool // client, server
}

// tlsConnStats count what the replay dropped.
type tlsConnStats struct {
	conns     uint64 // connections replayed
	chunks    uint64 // plaintext chunks replayed
	dupSide   uint64 // chunks of a connection already traced from its other end
	noTuple   uint64 // chunks whose socket ends are unknown
	tableFull uint64 // chunks of new connections refused past maxTLSConns
}

// tlsReplay turns events into packets. It is owned by one goroutine.
type tlsReplay struct {
	conns map[tlsConnKey]*tlsConn
	flows map[tlsFlowKey]tlsConnKey
	max   int
	stats tlsConnStats
	buf   []byte
	// emit receives each packet; pkt is reused after it returns.
	emit func(iface int, ts time.Time, pkt []byte)
	// procs names the processes at the ends of replayed connections.
	procs *tlsProcs
}

func newTLSReplay(emit func(iface int, ts time.Time, pkt []byte)) *tlsReplay {
	return &tlsReplay{
		conns: map[tlsConnKey]*tlsConn{},
		flows: map[tlsFlowKey]tlsConnKey{},
		max:   maxTLSConns,
		emit:  emit,
		procs: newTLSProcs(),
	}
}

// handle replays one event on capture interface iface. isServer tells,
// for a connection seen the first time, whether the traced process is its
// server end.
func (r *tlsReplay) handle(ev *tracer.Event, ts time.Time, iface int, isServer func(ev *tracer.Event) bool) {
	if !ev.HasTuple() {
		r.stats.noTuple++
		return
	}
	key := tlsConnKey{pid: ev.PID, conn: ev.Conn, local: ev.Local, remote: ev.Remote}
	c := r.conns[key]
	if c == nil {
		flow := flowKeyOf(ev)
		if other, taken := r.flows[flow]; taken {
			// The other end is traced too (client and server both in
			// targeted pods): one replay of the connection is enough,
			// but it names this end's process.
			r.stats.dupSide++
			if c := r.conns[other]; c != nil {
				c.noteProcess(ev)
			}
			return
		}
		if len(r.conns) >= r.max {
			r.stats.tableFull++
			return
		}
		c = r.open(ev, ts, iface, flow, isServer(ev))
		r.conns[key] = c
		r.flows[flow] = key
	}
	c.last = ts
	c.noteProcess(ev)
	r.data(c, ev, ts)
}

func (r *tlsReplay) open(ev *tracer.Event, ts time.Time, iface int, flow tlsFlowKey, server bool) *tlsConn {
	c := &tlsConn{flow: flow, iface: iface, client: ev.Local, server: ev.Remote, procs: r.procs}
	if server {
		c.client, c.server = ev.Remote, ev.Local
	}
	r.stats.conns++
	r.packet(c.iface, ts, c.client, c.server, tlsISN, 0, tcpSYN, nil)
	r.packet(c.iface, ts, c.server, c.client, tlsISN, tlsISN+1, tcpSYN|tcpACK, nil)
	r.packet(c.iface, ts, c.client, c.server, tlsISN+1, tlsISN+1, tcpACK, nil)
	c.next = [2]uint32{tlsISN + 1, tlsISN + 1}
	return c
}

// data places one chunk at its call's offset in its direction.
func (r *tlsReplay) data(c *tlsConn, ev *tracer.Event, ts time.Time) {
	d := 0 // client to server
	if (ev.Local == c.client) != (ev.Dir == tracer.Sent) {
		d = 1
	}
	if ev.Offset == 0 || !c.callOpen[d] || ev.Offset >= c.callLen[d] {
		// A new call; when its first chunk was lost the missing bytes
		// become a gap before this one.
		c.callBase[d], c.callLen[d], c.callOpen[d] = c.next[d], ev.Len, true
		c.next[d] += ev.Len
	}
	if ev.Last() {
		c.callOpen[d] = false
	}
	if len(ev.Data) == 0 {
		return
	}
	r.stats.chunks++
	from, to := c.client, c.server
	if d == 1 {
		from, to = to, from
	}
	r.packet(c.iface, ts, from, to, c.callBase[d]+ev.Offset, c.next[1-d], tcpPSH|tcpACK, ev.Data)
}

func (r *tlsReplay) packet(iface int, ts time.Time, from, to netip.AddrPort, seq, ack uint32, flags byte, payload []byte) {
	r.buf = appendTCPPacket(r.buf[:0], from, to, seq, ack, flags, payload)
	r.emit(iface, ts, r.buf)
}

// expire closes connections idle since before cutoff: a FIN each way ends
// their flows in the assembler, so pending exchanges are reported.
func (r *tlsReplay) expire(cutoff, now time.Time) {
	for key, c := range r.conns {
		if !c.last.Before(cutoff) {
			continue
		}
		r.packet(c.iface, now, c.client, c.server, c.next[0], c.next[1], tcpFIN|tcpACK, nil)
		r.packet(c.iface, now, c.server, c.client, c.next[1], c.next[0]+1, tcpFIN|tcpACK, nil)
		delete(r.conns, key)
		delete(r.flows, c.flow)
		r.procs.close(c.iface, c.client, c.server, now)
	}
	r.procs.sweep(now.Add(-tlsProcGrace))
}

// noteProcess records the process of the end ev was traced at, once.
func (c *tlsConn) noteProcess(ev *tracer.Event) {
	end := 1
	if ev.Local == c.client {
		end = 0
	}
	if c.known[end] {
		return
	}
	c.known[end] = true
	c.procs.note(c.iface, c.client, c.server, end, tlsProc{pid: int(ev.PID), comm: ev.Command()})
}

// tlsProcGrace keeps the processes of a closed connection this long: its
// last entries may still be on their way through the pipeline.
const tlsProcGrace = 30 * time.Second

// tlsProcs maps replayed connections to the processes at their ends. The
// replay writes it; annotate reads it on the pipeline's shards.
type tlsProcs struct {
	mu sync.Mutex
	m  map[tlsProcKey]*tlsEnds
}

type tlsProcKey struct {
	iface          int
	client, server netip.AddrPort
}

type tlsProc struct {
	pid  int
	comm string
}

type tlsEnds struct {
	procs  [2]tlsProc // client, server; pid 0 when not traced
	closed time.Time  // zero while open
}

func newTLSProcs() *tlsProcs { return &tlsProcs{m: map[tlsProcKey]*tlsEnds{}} }

func (t *tlsProcs) note(iface int, client, server netip.AddrPort, end int, p tlsProc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := tlsProcKey{iface, client, server}
	e := t.m[k]
	if e == nil {
		e = &tlsEnds{}
		t.m[k] = e
	}
	e.procs[end] = p
}

func (t *tlsProcs) close(iface int, client, server netip.AddrPort, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[tlsProcKey{iface, client, server}]; e != nil {
		e.closed = now
	}
}

// sweep forgets connections closed before cutoff.
func (t *tlsProcs) sweep(cutoff time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.m {
		if !e.closed.IsZero() && e.closed.Before(cutoff) {
			delete(t.m, k)
		}
	}
}

// lookup returns the processes at the client and server ends of a
// connection replayed on iface.
func (t *tlsProcs) lookup(iface int, client, server netip.AddrPort) (c, s tlsProc, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[tlsProcKey{iface, client, server}]
	if e == nil {
		return tlsProc{}, tlsProc{}, false
	}
	return e.procs[0], e.procs[1], true
}

// annotate names the traced processes at the ends of an entry of a
// connection replayed on iface. The replay's client is the end that opened
// the connection, as the entry's source is.
func (t *tlsProcs) annotate(e *entry.Entry, iface int) {
	src, ok1 := endpointAddr(&e.Src)
	dst, ok2 := endpointAddr(&e.Dst)
	if !ok1 || !ok2 {
		return
	}
	client, server, ok := t.lookup(iface, src, dst)
	if !ok {
		return
	}
	e.Src.PID, e.Src.Process = client.pid, client.comm
	e.Dst.PID, e.Dst.Process = server.pid, server.comm
}

func endpointAddr(p *entry.Endpoint) (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(p.IP)
	if err != nil || p.Port < 0 || p.Port > 0xffff {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(p.Port)), true
}
