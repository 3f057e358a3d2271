// Package dissect turns the byte streams of one connection into entries. It
// defines the contract every protocol sub-package implements, and detects
// which protocol a connection speaks, by port and by content.
//
// Parsers are push-based: the assembler hands them bytes as they arrive and
// never waits on them. A parser keeps only bounded state, copies what it keeps
// (data passed to it is valid only during the call), and reports what it
// completes through an Emitter. A parser must never panic on any input; the
// caller still recovers, counts and drops the stream if one does.
package dissect

import (
	"net/netip"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Dir is the direction of bytes on a connection.
type Dir uint8

const (
	ClientToServer Dir = 0
	ServerToClient Dir = 1
)

// Reverse returns the opposite direction.
func (d Dir) Reverse() Dir { return d ^ 1 }

func (d Dir) String() string {
	if d == ClientToServer {
		return "request"
	}
	return "response"
}

// Options are the user's choices that shape every entry.
type Options struct {
	// MaxBody bounds the bytes of a body kept in an entry; the true size is
	// kept too. 0 keeps no body bytes.
	MaxBody int
	// Redact replaces credentials (Authorization, cookies, passwords in
	// handshakes) with entry.Redacted.
	Redact bool
	// Source is copied into Entry.Source.
	Source string
}

// DefaultOptions are the defaults of the CLI and the worker.
func DefaultOptions() Options {
	return Options{MaxBody: 16 << 10, Redact: true, Source: entry.SourceFile}
}

// Conn describes the connection a parser serves. Client and Server are the
// parser's view: when the capture missed the connection's start, the
// detector decides which side is the client.
type Conn struct {
	Transport string // "tcp" or "udp"
	Client    netip.AddrPort
	Server    netip.AddrPort
	FlowID    string
	Opts      *Options
	// Reuse says the emitter keeps nothing of an entry (nor of what it
	// points to) once Emit returns, so a parser may reuse the entry's memory
	// for a later one. Set when the emitter is a Recycler.
	Reuse bool
}

// NewEntry returns an entry with the connection's common fields filled in.
func (c *Conn) NewEntry(proto string, ts time.Time) *entry.Entry {
	return &entry.Entry{
		V:      entry.Version,
		TS:     ts.UTC(),
		Proto:  proto,
		Src:    entry.Endpoint{IP: c.Client.Addr().String(), Port: int(c.Client.Port())},
		Dst:    entry.Endpoint{IP: c.Server.Addr().String(), Port: int(c.Server.Port())},
		Source: c.Opts.Source,
		FlowID: c.FlowID,
	}
}

// Emitter receives the entries a parser completes. The framework assigns
// Entry.ID. Emit must not be called after End returns.
type Emitter interface {
	Emit(*entry.Entry)
}

// Recycler is an Emitter that keeps no reference to an entry, nor to
// anything it points to (its strings included), once Emit returns: it
// renders or deep-copies it. Parsers feeding one may reuse an entry's
// memory (see Conn.Reuse).
type Recycler interface {
	Emitter
	RecyclesEntries()
}

// EmitFunc adapts a function to Emitter.
type EmitFunc func(*entry.Entry)

// Emit calls f(e).
func (f EmitFunc) Emit(e *entry.Entry) { f(e) }

// StreamParser dissects the two byte streams of one TCP connection.
type StreamParser interface {
	// Data delivers the next in-order bytes of one direction; ts is the
	// capture time of the packet that carried them.
	Data(dir Dir, data []byte, ts time.Time)
	// Gap reports that n bytes of dir were lost (capture loss or a
	// reassembly cap). The parser resynchronises at the next message
	// boundary it can find, or ignores the rest of that direction.
	Gap(dir Dir, n int)
	// End flushes what is pending (a request with no response, a
	// close-delimited body) at the end of the connection.
	End(ts time.Time)
}

// DatagramParser dissects the datagrams of one UDP flow.
type DatagramParser interface {
	Datagram(dir Dir, data []byte, ts time.Time)
	End(ts time.Time)
}

// Verdict is a detector's answer about the first bytes of a connection.
type Verdict uint8

const (
	No    Verdict = iota // not this protocol
	Maybe                // too few bytes to tell; ask again with more
	Yes                  // this protocol
)

// Protocol is one dissector: how to recognise it and how to build parsers.
type Protocol struct {
	Name string
	// Ports are the usual server ports, used to orient a connection whose
	// start was not captured and to prefer this protocol when content is
	// ambiguous. Detection by content works on any port.
	Ports []uint16
	// Detect looks at up to the first few KiB sent in one direction of a
	// connection (from its start, or from wherever the capture began). It
	// returns Yes when the bytes are this protocol, and fromClient when the
	// sender of data is the client. Detect must be cheap and must not keep
	// data.
	Detect func(data []byte) (v Verdict, fromClient bool)
	// NewStream builds a TCP parser; nil when the protocol has no TCP form.
	NewStream func(c *Conn, emit Emitter) StreamParser
	// NewDatagram builds a UDP parser; nil when the protocol has no UDP form.
	NewDatagram func(c *Conn, emit Emitter) DatagramParser
	// Enrich, when set, sees every entry that any parser of the registry
	// emits, before it is passed on, and may rewrite it: a protocol carried
	// inside another one (GraphQL over HTTP) has Enrich and no parsers. It
	// must be cheap for entries it does not concern.
	Enrich func(e *entry.Entry)
	// SharedState says that the protocol's parsers share what they learn
	// between connections (Kafka's topic ids, learned from Metadata on one
	// connection and used on others). The pipeline then keeps the flows on
	// its Ports on one shard, so that they see each other's packets in
	// capture order and the output does not depend on the shards' timing.
	SharedState bool
}

// HasPort reports whether p lists port as one of its usual ports.
func (p *Protocol) HasPort(port uint16) bool {
	for _, q := range p.Ports {
		if q == port {
			return true
		}
	}
	return false
}

// ParserStats counts what a parser could not turn into entries. The caller
// sums them per protocol and reports them, so nothing is lost silently.
type ParserStats struct {
	Entries int64 // entries emitted
	Dropped int64 // messages dropped, e.g. responses with no request
	Resyncs int64 // times framing was lost and searched for again
	Skipped int64 // bytes skipped while resynchronising or over a cap
}

// Add adds o to s.
func (s *ParserStats) Add(o ParserStats) {
	s.Entries += o.Entries
	s.Dropped += o.Dropped
	s.Resyncs += o.Resyncs
	s.Skipped += o.Skipped
}

// StatsReporter is implemented by parsers that keep ParserStats; the caller
// reads them when the parser ends.
type StatsReporter interface {
	Stats() ParserStats
}
