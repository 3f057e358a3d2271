// Package tlshello dissects the clear-text start of a TLS connection: the
// ClientHello and ServerHello (RFC 8446, RFC 5246). It emits one entry per
// connection with the server name (SNI), the offered and selected ALPN
// protocols, the negotiated version and cipher suite, and the first alert
// seen in clear, so that encrypted flows are still visible by name.
//
// Entries: Method is the negotiated version (TLS1.3, TLS1.2, ...), Path
// the server name, Status "OK" once the server answered, or the name of
// the first alert seen in clear (protocol_version, bad_certificate, ...);
// Entry.TLS is set. Size counts the bytes each way up to the emission.
//
// Everything after the handshake's clear-text part is only counted. The
// entry is emitted as soon as the outcome is known: at the ServerHello for
// TLS 1.3 (the rest is encrypted), at the server's ChangeCipherSpec for
// TLS 1.2 and older (so that a client's alert rejecting the certificate is
// still seen), at an alert, or at the end of the connection.
package tlshello

import (
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Record and message types (RFC 8446 section 5.1 and 4).
const (
	recordChangeCipherSpec = 20
	recordAlert            = 21
	recordHandshake        = 22
	recordApplicationData  = 23
	recordHeartbeat        = 24

	msgClientHello = 1
	msgServerHello = 2

	recordHeaderLen = 5
	// maxRecord is the largest record a peer may send: 2^14 bytes of
	// plaintext plus the 2048 bytes TLS 1.2 allows for expansion.
	maxRecord = 1<<14 + 2048
	// maxHandshake bounds a hello message kept for parsing; a ClientHello
	// with post-quantum key shares is about 2 KiB.
	maxHandshake = 64 << 10
)

// Errors, as they appear in Entry.Error.
const (
	errNoServerHello = "no server hello"
	errNotCaptured   = "handshake not captured"
	errMalformed     = "malformed handshake"
	errTooLarge      = "handshake message too large"
)

// Protocol returns the TLS handshake dissector.
func Protocol() dissect.Protocol {
	return dissect.Protocol{
		Name:   entry.ProtoTLS,
		Ports:  []uint16{443, 8443, 6443, 4433, 9443, 10250, 2379, 2380, 636, 993, 995, 465},
		Detect: Detect,
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return newParser(c, emit)
		},
	}
}

// Detect says Yes to a handshake record carrying a ClientHello (sent by the
// client) or a ServerHello (sent by the server). Records of a connection
// whose handshake was not captured (application data, alerts) get Maybe, so
// that they are claimed on a TLS port only.
func Detect(data []byte) (dissect.Verdict, bool) {
	if len(data) == 0 {
		return dissect.Maybe, false
	}
	switch data[0] {
	case recordHandshake:
		return detectHandshake(data)
	case recordApplicationData, recordAlert, recordChangeCipherSpec:
		if recordChain(data) {
			return dissect.Maybe, false
		}
	}
	return dissect.No, false
}

// detectHandshake checks the record header and the first message's type.
func detectHandshake(data []byte) (dissect.Verdict, bool) {
	if !plausibleHeader(data) {
		return dissect.No, false
	}
	if len(data) <= recordHeaderLen {
		return dissect.Maybe, false
	}
	n := int(data[3])<<8 | int(data[4])
	if n < 4 {
		return dissect.No, false
	}
	switch data[5] {
	case msgClientHello:
		return dissect.Yes, true
	case msgServerHello:
		return dissect.Yes, false
	}
	return dissect.No, false
}

// plausibleHeader checks what there is of a record header: version 3.x
// (SSL 3.0 to TLS 1.3 all say 3.0 to 3.4) and a length within the limit.
func plausibleHeader(data []byte) bool {
	if len(data) > 1 && data[1] != 3 {
		return false
	}
	if len(data) > 2 && data[2] > 4 {
		return false
	}
	if len(data) > 4 {
		n := int(data[3])<<8 | int(data[4])
		return n > 0 && n <= maxRecord
	}
	return true
}

// recordChain reports whether data starts with two whole, plausible records
// of known types, or is exactly one.
func recordChain(data []byte) bool {
	off, records := 0, 0
	for off+recordHeaderLen <= len(data) && records < 2 {
		h := data[off:]
		if h[0] < recordChangeCipherSpec || h[0] > recordHeartbeat || !plausibleHeader(h[:recordHeaderLen]) {
			return false
		}
		off += recordHeaderLen + (int(h[3])<<8 | int(h[4]))
		records++
	}
	return records == 2 && off <= len(data) || records == 1 && off == len(data)
}

// parser is the StreamParser of one TLS connection.
type parser struct {
	conn   *dissect.Conn
	emit   dissect.Emitter
	e      *entry.Entry
	info   entry.TLSInfo
	halves [2]half

	clientHello bool   // a ClientHello was parsed
	serverHello bool   // a (final) ServerHello was parsed
	legacy      bool   // the version negotiated is TLS 1.2 or older
	sessionID   []byte // the ClientHello's, to spot a TLS 1.2 resumption
	first, last time.Time
	done        bool // the entry was emitted; later bytes are ignored
	stats       dissect.ParserStats
}

var (
	_ dissect.StreamParser  = (*parser)(nil)
	_ dissect.StatsReporter = (*parser)(nil)
)

func newParser(c *dissect.Conn, emit dissect.Emitter) *parser {
	if c.Opts == nil {
		cc, opts := *c, dissect.DefaultOptions()
		cc.Opts = &opts
		c = &cc
	}
	return &parser{conn: c, emit: emit}
}

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	if p.done || len(data) == 0 {
		return
	}
	if p.first.IsZero() {
		p.first = ts
	}
	p.last = ts
	h := &p.halves[dir]
	h.wire += int64(len(data))
	h.feed(p, dir, data)
}

// Gap implements dissect.StreamParser: record framing is lost, so the
// direction is no longer parsed.
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.done || n <= 0 {
		return
	}
	h := &p.halves[dir]
	if !h.lost {
		h.lost = true
		p.stats.Resyncs++
	}
	p.stats.Skipped += int64(n)
}

// End implements dissect.StreamParser: a connection whose outcome was not
// yet emitted is emitted now.
func (p *parser) End(time.Time) {
	if p.done {
		return
	}
	switch {
	case p.serverHello:
		p.finish("")
	case p.clientHello:
		p.finish(errNoServerHello)
	case p.first.IsZero():
		p.done = true // no bytes at all: nothing to say
	default:
		p.finish(errNotCaptured)
	}
}

// Stats implements dissect.StatsReporter.
func (p *parser) Stats() dissect.ParserStats { return p.stats }

// finish emits the connection's entry, once.
func (p *parser) finish(err string) {
	if p.done {
		return
	}
	p.done = true
	e := p.conn.NewEntry(entry.ProtoTLS, p.first)
	e.TLS = true
	e.ElapsedUS = max(0, p.last.Sub(p.first).Microseconds())
	e.Method = p.info.Version
	e.Path = p.info.SNI
	switch {
	case p.info.Alert != "":
		e.Status = p.info.Alert
	case p.serverHello:
		e.Status = "OK"
	}
	e.Error = err
	for i := range p.halves {
		if e.Error == "" {
			e.Error = p.halves[i].broken
		}
	}
	e.Size = entry.Size{Request: p.halves[0].wire, Response: p.halves[1].wire}
	info := p.info
	e.TLSInfo = &info
	p.stats.Entries++
	p.emit.Emit(e)
}

// alert records an alert sent in clear. An alert during the clear-text
// handshake ends it (fatal, or a close), so the outcome is known.
func (p *parser) alert(desc byte) {
	if p.info.Alert == "" {
		p.info.Alert = alertName(desc)
	}
	if p.serverHello || p.clientHello {
		p.finish("")
	} else {
		p.finish(errNotCaptured)
	}
}

// changeCipherSpec: after the server's, the rest of the handshake is
// encrypted, so the outcome is known.
func (p *parser) changeCipherSpec(dir dissect.Dir) {
	if dir == dissect.ServerToClient {
		p.finish("")
	}
}

// handshake handles one whole handshake message of dir.
func (p *parser) handshake(dir dissect.Dir, typ byte, body []byte) {
	switch {
	case typ == msgClientHello && dir == dissect.ClientToServer:
		p.parseClientHello(body)
	case typ == msgServerHello && dir == dissect.ServerToClient:
		p.parseServerHello(body)
	}
}

// undecodable marks a direction whose handshake could not be parsed.
func (p *parser) undecodable(dir dissect.Dir, err string) {
	h := &p.halves[dir]
	if h.broken == "" {
		h.broken = err
	}
	h.lost = true
}
