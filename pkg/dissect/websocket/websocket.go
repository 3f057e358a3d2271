// Package websocket dissects the frames of a WebSocket connection (RFC
// 6455) after an HTTP/1.1 Upgrade: it unmasks them, reassembles fragmented
// messages, inflates permessage-deflate messages (RFC 7692) and emits one
// entry per message and per control frame, with the payload bounded by
// Options.MaxBody.
//
// Entries: Method is the opcode in upper case (TEXT, BINARY, CLOSE, PING,
// PONG), Path the target of the upgrade request, Status the close code of a
// close frame (empty otherwise); Src is always the client, and WS.Dir says
// who sent the message. A message cut by a gap or the end of the capture
// is emitted with Error set; after a gap, a direction is only counted.
//
// The HTTP/1 dissector hands a connection over with NewUpgraded after a 101
// response naming "websocket".
package websocket

import (
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Errors, as they appear in Entry.Error.
const (
	errGap          = "capture gap"
	errIncomplete   = "incomplete message"
	errBadFrame     = "malformed frame"
	errInflate      = "undecodable compressed message"
	errInflateLimit = "compressed message over the limit"
	errOrphan       = "continuation without a message"
)

// maxCloseReason bounds a close reason (the protocol allows 123 bytes).
const maxCloseReason = 123

// NewUpgraded returns the parser of a connection that switched to
// WebSocket; it has the signature of http1.UpgradeFunc. req is the upgrade
// exchange (request and 101 response): its target becomes every entry's
// path, and its Sec-WebSocket-Extensions response header says whether
// messages may be compressed. req is only read; nil is allowed.
func NewUpgraded(c *dissect.Conn, emit dissect.Emitter, req *entry.Entry) dissect.StreamParser {
	if c.Opts == nil {
		cc, opts := *c, dissect.DefaultOptions()
		cc.Opts = &opts
		c = &cc
	}
	p := &parser{conn: c, emit: emit, maxBody: max(c.Opts.MaxBody, 0)}
	p.tmpl = *c.NewEntry(entry.ProtoWS, time.Time{})
	if req != nil {
		p.path = req.Path
		if h := req.HTTP; h != nil && h.Response != nil {
			p.deflate = parseDeflate(h.Response.Headers["sec-websocket-extensions"])
		}
	}
	for d := range p.halves {
		p.halves[d].dir = dissect.Dir(d)
	}
	return p
}

// parser is the StreamParser of one WebSocket connection.
type parser struct {
	conn    *dissect.Conn
	emit    dissect.Emitter
	tmpl    entry.Entry // the connection's common entry fields
	path    string
	maxBody int
	deflate deflateParams
	halves  [2]half
	ended   bool
	stats   dissect.ParserStats
}

var (
	_ dissect.StreamParser  = (*parser)(nil)
	_ dissect.StatsReporter = (*parser)(nil)
)

// Data implements dissect.StreamParser.
func (p *parser) Data(dir dissect.Dir, data []byte, ts time.Time) {
	if p.ended || len(data) == 0 {
		return
	}
	p.halves[dir].feed(p, data, ts)
}

// Gap implements dissect.StreamParser: frame boundaries are lost for good
// (client frames are masked with random keys, so there is nothing to
// search for); the message in progress is emitted with an error and the
// direction is only counted from then on.
func (p *parser) Gap(dir dissect.Dir, n int) {
	if p.ended || n <= 0 {
		return
	}
	h := &p.halves[dir]
	p.stats.Skipped += int64(n)
	if h.lost {
		return
	}
	h.lost = true
	p.stats.Resyncs++
	if h.msg.active {
		h.msg.err = errGap
		p.finish(h, &h.msg)
	}
	if h.ctl.active {
		h.ctl.err = errGap
		p.finish(h, &h.ctl)
	}
}

// End implements dissect.StreamParser: messages cut short by the end of the
// connection are emitted with an error.
func (p *parser) End(time.Time) {
	if p.ended {
		return
	}
	for d := range p.halves {
		h := &p.halves[d]
		for _, m := range []*message{&h.ctl, &h.msg} {
			if m.active {
				if m.err == "" {
					m.err = errIncomplete
				}
				p.finish(h, m)
			}
		}
	}
	p.ended = true
}

// Stats implements dissect.StatsReporter.
func (p *parser) Stats() dissect.ParserStats { return p.stats }

// finish emits the entry of message m of h and resets m.
func (p *parser) finish(h *half, m *message) {
	// One allocation holds the entry and its WS object.
	x := new(struct {
		e  entry.Entry
		ws entry.WS
	})
	e, ws := &x.e, &x.ws
	t := &p.tmpl
	e.V, e.Proto, e.Src, e.Dst, e.Source, e.FlowID = t.V, t.Proto, t.Src, t.Dst, t.Source, t.FlowID
	e.TS = m.start.UTC()
	e.ElapsedUS = max(0, m.last.Sub(m.start).Microseconds())
	e.Path = p.path
	ws.Opcode, ws.Dir, ws.Compressed = opcodeName(m.opcode), "client", m.compressed
	if h.dir == dissect.ServerToClient {
		ws.Dir = "server"
		e.Size.Response = m.wire
	} else {
		e.Size.Request = m.wire
	}
	e.Method = methodName(m.opcode)
	if m.frames > 1 {
		ws.Frames = m.frames
	}
	err := m.err
	if m.opcode == opClose {
		p.closeFrame(e, ws, m)
	} else if e2 := p.payload(h, m, &ws.Payload); err == "" {
		err = e2
	}
	e.Error = err
	e.WS = ws
	m.reset()
	p.stats.Entries++
	p.emit.Emit(e)
}

// closeFrame fills the close code and reason of a close frame.
func (p *parser) closeFrame(e *entry.Entry, ws *entry.WS, m *message) {
	ws.Payload.Size = m.size
	if len(m.keep) >= 2 {
		ws.CloseCode = int(m.keep[0])<<8 | int(m.keep[1])
		ws.CloseReason = string(trimPartialRune(m.keep[2:min(len(m.keep), 2+maxCloseReason)]))
		e.Status = strconv.Itoa(ws.CloseCode)
	}
}

// methodName is the entry's method for an opcode.
func methodName(op byte) string {
	switch op {
	case opText:
		return "TEXT"
	case opBinary:
		return "BINARY"
	case opClose:
		return "CLOSE"
	case opPing:
		return "PING"
	case opPong:
		return "PONG"
	}
	return strings.ToUpper(opcodeName(op))
}

// opcodeName names an opcode; reserved ones by number.
func opcodeName(op byte) string {
	switch op {
	case opText:
		return "text"
	case opBinary:
		return "binary"
	case opClose:
		return "close"
	case opPing:
		return "ping"
	case opPong:
		return "pong"
	}
	return "opcode" + strconv.Itoa(int(op))
}
