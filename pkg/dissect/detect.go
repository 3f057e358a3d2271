package dissect

import (
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Detection bounds: how much of a connection is held back while deciding
// which protocol it speaks, before giving up and only summarising it.
const (
	detectBytes     = 4096 // per direction
	detectChunks    = 64   // data chunks held, both directions
	detectDatagrams = 4    // UDP datagrams tried
)

// Registry holds the known protocols, in priority order, and the options
// shared by every parser. It is read-only after NewRegistry, so shards share it.
type Registry struct {
	protos []*Protocol
	opts   *Options
	enrich []func(*entry.Entry) // the protocols' Enrich hooks, in order
}

// NewRegistry returns a registry of protos with opts.
func NewRegistry(opts Options, protos ...Protocol) *Registry {
	r := &Registry{opts: &opts}
	for i := range protos {
		r.protos = append(r.protos, &protos[i])
		if protos[i].Enrich != nil {
			r.enrich = append(r.enrich, protos[i].Enrich)
		}
	}
	return r
}

// Options returns the options every parser of r gets.
func (r *Registry) Options() *Options { return r.opts }

// SharedPorts returns the ports of the protocols whose parsers share state
// between connections (Protocol.SharedState).
func (r *Registry) SharedPorts() []uint16 {
	var ports []uint16
	for _, p := range r.protos {
		if p.SharedState {
			ports = append(ports, p.Ports...)
		}
	}
	return ports
}

// Lookup returns the protocol named name, or nil.
func (r *Registry) Lookup(name string) *Protocol {
	for _, p := range r.protos {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Opener says which side of a flow opened it, when the capture saw that.
type Opener uint8

const (
	OpenerUnknown Opener = iota
	OpenerA
	OpenerB
)

// FlowInfo is what the detector knows of a flow before seeing its bytes. A
// is the sender of the first packet captured.
type FlowInfo struct {
	Transport string // "tcp" or "udp"
	A, B      netip.AddrPort
	Opener    Opener
	ID        string
}

// ConnHandler detects the protocol of one flow and feeds its parser. It
// holds back the first bytes (bounded) until a protocol says Yes, then
// replays them. Flows no protocol claims are summarised in one entry when
// they end, so nothing silently disappears.
type ConnHandler struct {
	reg      *Registry
	info     FlowInfo
	emit     Emitter
	recycles bool  // emit is a Recycler
	stats    Stats // may be nil
	n        int   // entries emitted, for ids
	id       []byte

	state   connState
	aClient bool // orientation, once decided
	stream  StreamParser
	dgram   DatagramParser
	proto   string

	// Held back while detecting.
	held  [2][]byte // [0] from A, [1] from B
	order []heldChunk
	tries int

	first, last time.Time
	bytes, pkts [2]int64
}

type connState uint8

const (
	detecting connState = iota
	parsing
	unknown
)

type heldChunk struct {
	fromA  bool
	gap    int // a gap of this many bytes instead of data
	off, n int
	ts     time.Time
}

// Stats sums the ParserStats of ended parsers by protocol name. One map per
// shard: it is not safe for concurrent use.
type Stats map[string]*ParserStats

// Add adds o to s.
func (s Stats) Add(o Stats) {
	for name, st := range o {
		if s[name] == nil {
			s[name] = &ParserStats{}
		}
		s[name].Add(*st)
	}
}

// Dropped sums the messages every protocol dropped.
func (s Stats) Dropped() (n int64) {
	for _, st := range s {
		n += st.Dropped
	}
	return n
}

// NewConn returns the handler of a new flow; entries go to emit, and the
// parser's counts are added to stats (if not nil) when the flow ends.
func (r *Registry) NewConn(info FlowInfo, emit Emitter, stats Stats) *ConnHandler {
	_, recycles := emit.(Recycler)
	return &ConnHandler{reg: r, info: info, emit: emit, recycles: recycles, stats: stats}
}

// Proto names the protocol detected so far, or "".
func (c *ConnHandler) Proto() string { return c.proto }

// Emit assigns the entry its id, lets the registry's Enrich hooks see it,
// and passes it on.
func (c *ConnHandler) Emit(e *entry.Entry) {
	c.n++
	c.id = strconv.AppendInt(append(append(c.id[:0], c.info.ID...), '-'), int64(c.n), 10)
	if c.recycles {
		// Rendered before Emit returns: the id may live in c.id.
		e.ID = unsafe.String(unsafe.SliceData(c.id), len(c.id))
	} else {
		e.ID = string(c.id)
	}
	for _, f := range c.reg.enrich {
		f(e)
	}
	c.emit.Emit(e)
}

func side(fromA bool) int {
	if fromA {
		return 0
	}
	return 1
}

func (c *ConnHandler) account(fromA bool, n int, ts time.Time) {
	if c.first.IsZero() {
		c.first = ts
	}
	if ts.After(c.last) {
		c.last = ts
	}
	c.bytes[side(fromA)] += int64(n)
	c.pkts[side(fromA)]++
}

func (c *ConnHandler) dir(fromA bool) Dir {
	if fromA == c.aClient {
		return ClientToServer
	}
	return ServerToClient
}

// Data implements assemble.Handler.
func (c *ConnHandler) Data(fromA bool, data []byte, ts time.Time) {
	c.account(fromA, len(data), ts)
	switch c.state {
	case parsing:
		c.stream.Data(c.dir(fromA), data, ts)
	case detecting:
		c.hold(fromA, data, ts)
		c.detectStream(false)
	}
}

// Counting implements assemble.Counter: a TCP flow no protocol claimed
// needs only its byte and packet counts for its summary, so the assembler
// may stop reassembling it.
func (c *ConnHandler) Counting() bool {
	return c.state == unknown && c.info.Transport == "tcp"
}

// Count implements assemble.Counter: n new payload bytes from one side,
// in pkts segments.
func (c *ConnHandler) Count(fromA bool, n, pkts int, ts time.Time) {
	c.account(fromA, n, ts)
	c.pkts[side(fromA)] += int64(pkts - 1)
}

// Gap implements assemble.Handler.
func (c *ConnHandler) Gap(fromA bool, n int) {
	switch c.state {
	case parsing:
		c.stream.Gap(c.dir(fromA), n)
	case detecting:
		if len(c.order) < detectChunks {
			c.order = append(c.order, heldChunk{fromA: fromA, gap: n})
		}
	}
}

func (c *ConnHandler) hold(fromA bool, data []byte, ts time.Time) {
	s := side(fromA)
	room := detectBytes - len(c.held[s])
	if room <= 0 || len(c.order) >= detectChunks {
		return
	}
	if len(data) > room {
		data = data[:room]
	}
	c.order = append(c.order, heldChunk{fromA: fromA, off: len(c.held[s]), n: len(data), ts: ts})
	c.held[s] = append(c.held[s], data...)
}

// detectStream asks every TCP protocol about the bytes held so far. final
// is set when no more bytes will come.
func (c *ConnHandler) detectStream(final bool) {
	var maybe *Protocol
	for _, p := range c.reg.protos {
		if p.NewStream == nil {
			continue
		}
		for s := 0; s < 2; s++ {
			if len(c.held[s]) == 0 {
				continue
			}
			v, fromClient := p.Detect(c.held[s])
			switch v {
			case Yes:
				c.start(p, s == 0 == fromClient)
				return
			case Maybe:
				if maybe == nil && c.serverPortOf(p) {
					maybe = p
				}
			}
		}
	}
	full := len(c.held[0]) >= detectBytes || len(c.held[1]) >= detectBytes || len(c.order) >= detectChunks
	both := len(c.held[0]) > 0 && len(c.held[1]) > 0
	if !final && !full && !both {
		return // the other side may still say more
	}
	if maybe != nil && (final || full) {
		// Content is inconclusive but the port is this protocol's.
		c.start(maybe, c.portOrientation(maybe))
		return
	}
	if !final && !full && maybe != nil {
		return
	}
	c.giveUp()
}

// serverPortOf reports whether either end uses one of p's usual ports.
func (c *ConnHandler) serverPortOf(p *Protocol) bool {
	return p.HasPort(c.info.A.Port()) || p.HasPort(c.info.B.Port())
}

// portOrientation says whether A is the client, judging by p's ports.
func (c *ConnHandler) portOrientation(p *Protocol) bool {
	if p.HasPort(c.info.B.Port()) {
		return true
	}
	if p.HasPort(c.info.A.Port()) {
		return false
	}
	return c.defaultOrientation()
}

// defaultOrientation: the side that opened the connection is the client;
// failing that, the side with the higher (ephemeral) port.
func (c *ConnHandler) defaultOrientation() bool {
	switch c.info.Opener {
	case OpenerA:
		return true
	case OpenerB:
		return false
	}
	return c.info.A.Port() >= c.info.B.Port()
}

func (c *ConnHandler) conn() *Conn {
	client, server := c.info.A, c.info.B
	if !c.aClient {
		client, server = server, client
	}
	return &Conn{Transport: c.info.Transport, Client: client, Server: server, FlowID: c.info.ID, Opts: c.reg.opts, Reuse: c.recycles}
}

func (c *ConnHandler) start(p *Protocol, aClient bool) {
	c.aClient = aClient
	c.proto = p.Name
	c.state = parsing
	c.stream = p.NewStream(c.conn(), c)
	for _, h := range c.order {
		if h.gap > 0 {
			c.stream.Gap(c.dir(h.fromA), h.gap)
			continue
		}
		c.stream.Data(c.dir(h.fromA), c.held[side(h.fromA)][h.off:h.off+h.n], h.ts)
	}
	c.release()
}

func (c *ConnHandler) giveUp() {
	c.state = unknown
	c.aClient = c.defaultOrientation()
	c.release()
}

func (c *ConnHandler) release() {
	c.held = [2][]byte{}
	c.order = nil
}

// Datagram implements assemble.Handler.
func (c *ConnHandler) Datagram(fromA bool, data []byte, ts time.Time) {
	c.account(fromA, len(data), ts)
	switch c.state {
	case parsing:
		c.dgram.Datagram(c.dir(fromA), data, ts)
		return
	case unknown:
		return
	}
	for _, p := range c.reg.protos {
		if p.NewDatagram == nil {
			continue
		}
		if v, fromClient := p.Detect(data); v == Yes {
			c.aClient = fromA == fromClient
			c.proto = p.Name
			c.state = parsing
			c.dgram = p.NewDatagram(c.conn(), c)
			c.dgram.Datagram(c.dir(fromA), data, ts)
			return
		}
	}
	if c.tries++; c.tries >= detectDatagrams {
		c.giveUp()
	}
}

// End implements assemble.Handler.
func (c *ConnHandler) End(ts time.Time, reason string) {
	if c.state == detecting && c.info.Transport == "tcp" {
		c.detectStream(true)
	}
	switch c.state {
	case parsing:
		var parser any = c.dgram
		if c.stream != nil {
			c.stream.End(ts)
			parser = c.stream
		} else {
			c.dgram.End(ts)
		}
		c.count(parser)
	default:
		c.summarise(reason)
	}
}

func (c *ConnHandler) count(parser any) {
	sr, ok := parser.(StatsReporter)
	if !ok || c.stats == nil {
		return
	}
	st := c.stats[c.proto]
	if st == nil {
		st = &ParserStats{}
		c.stats[c.proto] = st
	}
	st.Add(sr.Stats())
}

// summarise emits the one entry of a flow no protocol claimed.
func (c *ConnHandler) summarise(reason string) {
	if c.info.Transport == "udp" && c.state == detecting {
		c.aClient = c.defaultOrientation()
	}
	proto := entry.ProtoTCP
	if c.info.Transport == "udp" {
		proto = entry.ProtoUDP
	}
	ts := c.first
	if ts.IsZero() {
		return // no payload either way: nothing to say
	}
	e := c.conn().NewEntry(proto, ts)
	cs, ss := side(c.aClient), side(!c.aClient)
	e.ElapsedUS = c.last.Sub(c.first).Microseconds()
	e.Status = reason
	e.Size = entry.Size{Request: c.bytes[cs], Response: c.bytes[ss]}
	e.Conn = &entry.ConnInfo{
		Transport:     c.info.Transport,
		ClientBytes:   c.bytes[cs],
		ServerBytes:   c.bytes[ss],
		ClientPackets: c.pkts[cs],
		ServerPackets: c.pkts[ss],
		End:           reason,
	}
	c.Emit(e)
}
