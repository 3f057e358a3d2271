package http2

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/grpc"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"golang.org/x/net/http2/hpack"
)

// Errors, as they appear in Entry.Error.
const (
	errNoResponse    = "no response"
	errIncomplete    = "response incomplete"
	errEvicted       = "too many concurrent streams (evicted)"
	errGap           = "capture gap"
	errBlockTooLarge = "header block too large"
	errBlockBroken   = "header block interrupted"
	errListTooLarge  = "header list too large (truncated)"
	errNoRequest     = "request not captured (capture started mid-connection)"
	errNoRespHeaders = "response headers not captured (capture started mid-connection)"

	whyPlain = "undecodable header block"
	whyMid   = "undecodable header block (capture started mid-connection)"
	whyGap   = "undecodable header block (capture gap)"
)

// grpcKind says whether a stream is a gRPC call.
type grpcKind uint8

const (
	grpcUnknown grpcKind = iota // headers did not tell (undecodable)
	grpcNo
	grpcYes
)

// stream is one HTTP/2 stream: a request and its response. Arrays indexed
// by dissect.Dir hold the request side at 0 and the response side at 1.
type stream struct {
	id         uint32
	seq        uint64 // creation order, for eviction
	start      time.Time
	last       time.Time
	reqStarted bool

	req      entry.HTTPRequest
	resp     entry.HTTPResponse
	reqSeen  bool // request headers (or a push promise) seen
	respSeen bool // final response headers seen
	ended    [2]bool
	done     bool
	size     entry.Size
	err      string

	body        [2]bodyBuf
	upgradeBody *entry.Body // the request body of an h2c upgrade, sent in HTTP/1.1
	coding      [2]string   // content-encoding
	grpcEnc     [2]string   // grpc-encoding
	grpc        grpcKind
	msgs        [2]msgReader

	// Kept with the stream when it is recycled (Conn.Reuse): its entry,
	// and the header maps of its last use, emptied.
	ent   entry.Entry
	http  entry.HTTP
	spare [2]map[string]string
}

// account counts a frame of n bytes sent on s.
func (s *stream) account(dir dissect.Dir, n int64, ts time.Time) {
	if dir == dissect.ClientToServer {
		s.size.Request += n
	} else {
		s.size.Response += n
	}
	s.touch(dir, ts)
}

// touch moves the stream's time span to cover ts. The request side may be
// read after the response side; its first frame still starts the exchange.
func (s *stream) touch(dir dissect.Dir, ts time.Time) {
	if dir == dissect.ClientToServer && !s.reqStarted {
		s.reqStarted = true
		if ts.Before(s.start) {
			s.start = ts
		}
	}
	if ts.After(s.last) {
		s.last = ts
	}
}

// fail records the first thing that went wrong.
func (s *stream) fail(err string) {
	if s.err == "" {
		s.err = err
	}
}

// lost records n body bytes of dir lost to the capture.
func (s *stream) lost(dir dissect.Dir, n int) {
	s.body[dir].hole(n)
	s.msgs[dir].hole()
	s.fail(errGap)
}

// streamFor returns the open stream id, creating it when create is set and
// it did not complete recently.
func (p *parser) streamFor(id uint32, ts time.Time, create bool) *stream {
	if s := p.streams[id]; s != nil {
		return s
	}
	if !create || p.recentlyClosed(id) {
		return nil
	}
	return p.newStream(id, ts)
}

func (p *parser) newStream(id uint32, ts time.Time) *stream {
	if len(p.streams) >= maxStreams {
		p.evictOldest()
	}
	p.seq++
	s := streamPool.Get().(*stream)
	s.id, s.seq, s.start, s.last = id, p.seq, ts, ts
	p.streams[id] = s
	return s
}

// streamPool recycles the streams of parsers whose entries are rendered
// before Emit returns (Conn.Reuse), as http1 recycles its exchanges: a
// stream is half a kilobyte, and a fresh one is a page fault as often as
// not.
var streamPool = sync.Pool{New: func() any { return new(stream) }}

// reuseStreams recycles the streams completed during a call to the parser,
// once it returns and no caller holds them. A frame still being read for
// one (a half's target) goes on finding it done: that one is left to the
// collector.
func (p *parser) reuseStreams() {
	for i, s := range p.retired {
		if s != p.halves[0].target && s != p.halves[1].target {
			spare := [2]map[string]string{s.req.Headers, s.resp.Headers}
			for d, m := range spare {
				if m == nil {
					spare[d] = s.spare[d]
				}
				clear(spare[d])
			}
			*s = stream{spare: spare}
			streamPool.Put(s)
		}
		p.retired[i] = nil
	}
	p.retired = p.retired[:0]
}

// evictOldest completes the stream opened first, to make room.
func (p *parser) evictOldest() {
	var oldest *stream
	for _, s := range p.streams {
		if oldest == nil || s.seq < oldest.seq {
			oldest = s
		}
	}
	if oldest != nil {
		p.finish(oldest, errEvicted)
	}
}

func (p *parser) markClosed(id uint32) {
	p.closed[p.closedN%closedRing] = id
	p.closedN++
}

func (p *parser) recentlyClosed(id uint32) bool {
	for _, c := range p.closed[:min(p.closedN, closedRing)] {
		if c == id {
			return true
		}
	}
	return false
}

// data delivers DATA frame content. Plain bodies are kept up to MaxBody;
// gRPC bodies are split into messages instead, and both are done while the
// headers have not told which the stream is.
func (p *parser) data(s *stream, dir dissect.Dir, b []byte) {
	if s.done {
		return
	}
	if s.grpc == grpcYes {
		s.body[dir].size += int64(len(b))
	} else {
		p.keepBody(&s.body[dir], b)
	}
	if s.grpc != grpcNo {
		s.msgs[dir].feed(b, min(p.opts.MaxBody, maxMessageKeep), dir.String(), s.grpcEnc[dir], &p.scratch)
	}
}

// sideEnded records END_STREAM from dir; the stream completes when both
// sides have ended.
func (p *parser) sideEnded(s *stream, dir dissect.Dir, ts time.Time) {
	if s.done {
		return
	}
	s.ended[dir] = true
	s.touch(dir, ts)
	if s.ended[0] && s.ended[1] {
		p.finish(s, "")
	}
}

// rstStream completes s on RST_STREAM. Resetting a stream whose response
// is complete (a client that did not half-close) is not an error.
func (p *parser) rstStream(s *stream, code uint32) {
	if s.done {
		return
	}
	var err string
	if !s.ended[dissect.ServerToClient] {
		err = "RST_STREAM " + errCodeName(code)
	}
	p.finish(s, err)
}

// startBlock begins a header block for stream id.
func (p *parser) startBlock(h *half, id uint32, push, endStream bool, ts time.Time) {
	h.blk = headerBlock{active: true, stream: id, push: push, endStream: endStream, ts: ts, buf: h.blk.buf[:0]}
}

// finishBlock decodes a complete header block and applies it to its stream.
// A block that cannot be decoded still counts, for the HPACK state (which
// is then reset) and for the stream (whose headers are marked).
func (p *parser) finishBlock(h *half, ts time.Time) {
	b := &h.blk
	b.active = false
	decoded := false
	if b.failed == "" {
		decoded = h.hdec.decode(b.buf)
	} else {
		why := whyPlain
		if b.failed == errGap {
			why = whyGap
		}
		p.hpackLost(h, why)
	}
	if cap(b.buf) > bigBuffer {
		b.buf = nil
	}
	// A stream starts with a complete header block: a block cut short
	// (often one made up by a false frame boundary) makes none.
	s := p.streams[b.stream]
	if s == nil && (decoded || b.failed == errBlockTooLarge) && b.stream != 0 {
		s = p.streamFor(b.stream, b.ts, true)
	}
	if s == nil {
		return
	}
	s = p.applyBlock(h, s, decoded)
	s.account(blockDir(h, b), b.size, b.ts)
	if b.endStream {
		p.sideEnded(s, h.dir, ts)
	}
}

// blockDir is the side of the stream a block belongs to: a push promise
// is the request of the promised stream.
func blockDir(h *half, b *headerBlock) dissect.Dir {
	if b.push {
		return dissect.ClientToServer
	}
	return h.dir
}

// applyBlock applies the decoded block to s, or to the stream that replaces
// it if the block showed the sides were the wrong way round.
func (p *parser) applyBlock(h *half, s *stream, decoded bool) *stream {
	b := &h.blk
	var fields []hpack.HeaderField
	undecodable := b.failed
	if undecodable == "" {
		fields = h.hdec.fields
		if !decoded || h.hdec.unknown > 0 {
			undecodable = h.why
		}
	}
	if !p.oriented {
		r := fieldsRole(fields)
		if b.push {
			r = roleResponse
		}
		if r != roleUnknown {
			p.oriented = true
			if (r == roleRequest) != (h.dir == dissect.ClientToServer) {
				start := s.start
				p.flip()
				s = p.newStream(b.stream, start)
			}
		}
	}
	if undecodable != "" {
		s.fail(undecodable)
	}
	if h.hdec.overflow && b.failed == "" {
		s.fail(errListTooLarge)
	}
	switch {
	case b.push:
		p.requestHead(s, fields, undecodable != "")
		s.ended[dissect.ClientToServer] = true
	case h.dir == dissect.ClientToServer && !s.reqSeen:
		p.requestHead(s, fields, undecodable != "")
	case h.dir == dissect.ClientToServer:
		p.addFields(&s.req.Trailers, nil, fields)
	default:
		p.responseBlock(s, fields, undecodable != "", b.endStream)
	}
	return s
}

// fieldsRole tells a request block from a response block by its
// pseudo-headers.
func fieldsRole(fields []hpack.HeaderField) role {
	for _, f := range fields {
		switch f.Name {
		case ":status":
			return roleResponse
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			return roleRequest
		}
	}
	return roleUnknown
}

// requestHead fills the request from its header block.
func (p *parser) requestHead(s *stream, fields []hpack.HeaderField, undecodable bool) {
	s.reqSeen = true
	r := &s.req
	var host, ctype string
	for _, f := range fields {
		switch f.Name {
		case ":method":
			r.Method = f.Value
		case ":path":
			r.Target = f.Value
		case ":authority":
			r.Authority = f.Value
		case "host":
			host = f.Value
		case "content-type":
			ctype = f.Value
		case "content-encoding":
			s.coding[dissect.ClientToServer] = f.Value
		case "grpc-encoding":
			s.grpcEnc[dissect.ClientToServer] = f.Value
		}
	}
	if r.Authority == "" {
		r.Authority = host
	}
	p.addFields(&r.Headers, &s.spare[dissect.ClientToServer], fields)
	switch {
	case ctype != "":
		s.grpc = grpcNo
		if isGRPC(ctype) {
			s.grpc = grpcYes
		}
	case !undecodable:
		s.grpc = grpcNo
	}
}

// responseBlock applies a response-side block: an informational response,
// the final response head, or trailers.
func (p *parser) responseBlock(s *stream, fields []hpack.HeaderField, undecodable, endStream bool) {
	status, hasStatus := 0, false
	var ctype string
	for _, f := range fields {
		switch f.Name {
		case ":status":
			status, _ = strconv.Atoi(f.Value)
			hasStatus = true
		case "content-type":
			ctype = f.Value
		case "content-encoding":
			s.coding[dissect.ServerToClient] = f.Value
		case "grpc-encoding":
			s.grpcEnc[dissect.ServerToClient] = f.Value
		}
	}
	switch {
	case s.respSeen:
		p.addFields(&s.resp.Trailers, nil, fields)
	case hasStatus && status >= 100 && status < 200:
		s.resp.Informational++
	case hasStatus || !endStream || undecodable:
		s.respSeen = true
		s.resp.Status = status
		p.addFields(&s.resp.Headers, &s.spare[dissect.ServerToClient], fields)
		switch {
		case isGRPC(ctype):
			s.grpc = grpcYes
		case ctype != "" && s.grpc == grpcUnknown:
			s.grpc = grpcNo
		}
	default:
		// Trailers of a response whose head was before the capture.
		s.respSeen = true
		s.fail(errNoRespHeaders)
		p.addFields(&s.resp.Trailers, nil, fields)
	}
}

// addFields adds the regular (not pseudo) fields to *m, redacting secrets.
// A map for them comes from *spare, a recycled stream's, when there is one.
func (p *parser) addFields(m, spare *map[string]string, fields []hpack.HeaderField) {
	for _, f := range fields {
		if f.Name == "" || f.Name[0] == ':' {
			continue
		}
		if *m == nil {
			if spare != nil && *spare != nil {
				*m, *spare = *spare, nil
			} else {
				*m = make(map[string]string, regular(fields))
			}
		}
		name := strings.ToLower(f.Name) // no allocation when already lower case
		addHeader(*m, name, entry.HeaderValue(name, f.Value, p.opts.Redact))
	}
}

// regular counts the fields that are not pseudo-headers.
func regular(fields []hpack.HeaderField) int {
	n := 0
	for _, f := range fields {
		if f.Name != "" && f.Name[0] != ':' {
			n++
		}
	}
	return n
}

// addHeader sets a header, joining repeated ones as HTTP/1 would: cookies
// (split into fields in HTTP/2) with "; ", others with ", ".
func addHeader(m map[string]string, name, v string) {
	old, ok := m[name]
	switch {
	case !ok:
		m[name] = v
	case v == entry.Redacted && old == entry.Redacted:
	case name == "cookie":
		m[name] = old + "; " + v
	default:
		m[name] = old + ", " + v
	}
}

// finish emits s's entry and forgets the stream.
func (p *parser) finish(s *stream, err string) {
	if s.done {
		return
	}
	s.done = true
	delete(p.streams, s.id)
	p.markClosed(s.id)
	p.stats.Entries++
	e := p.entryOf(s, err)
	for d := range s.body {
		p.recycle(s.body[d].keep)
		p.recycle(s.msgs[d].keep)
	}
	p.emit.Emit(e)
	if p.conn.Reuse {
		p.retired = append(p.retired, s) // the entry pointed into it
	}
}

// keepBody adds body bytes, taking the buffer for them from the spares.
func (p *parser) keepBody(b *bodyBuf, data []byte) {
	if b.keep == nil && p.opts.MaxBody > 0 && len(p.spare) > 0 {
		b.keep = p.spare[len(p.spare)-1][:0]
		p.spare = p.spare[:len(p.spare)-1]
	}
	b.add(data, p.opts.MaxBody)
}

// recycle keeps a body buffer of a completed stream for the next one: the
// entry holds copies of its bytes.
func (p *parser) recycle(b []byte) {
	if cap(b) >= 512 && cap(b) <= max(p.opts.MaxBody, maxMessageKeep) && len(p.spare) < maxSpare {
		p.spare = append(p.spare, b)
	}
}

// entryOf builds the entry of a completed (or abandoned) stream.
func (p *parser) entryOf(s *stream, err string) *entry.Entry {
	call := s.grpc == grpcYes || s.grpc == grpcUnknown && s.looksGRPC()
	proto := entry.ProtoHTTP2
	if call {
		proto = entry.ProtoGRPC
	}
	var e *entry.Entry
	var h *entry.HTTP
	if p.conn.Reuse {
		e, h = &s.ent, &s.http // recycled with the stream
	} else {
		e, h = new(entry.Entry), new(entry.HTTP)
	}
	*e = p.tmpl
	e.TS, e.Proto = s.start.UTC(), proto
	e.ElapsedUS = max(0, s.last.Sub(s.start).Microseconds())
	e.Method, e.Path = s.req.Method, s.req.Target
	e.Size = s.size
	e.Error = s.err
	if e.Error == "" {
		e.Error = err
	}
	*h = entry.HTTP{Version: "2", Stream: s.id}
	if s.reqSeen {
		s.req.Body = p.body(s, dissect.ClientToServer, call)
		h.Request = &s.req
	} else if e.Error == "" {
		e.Error = errNoRequest
	}
	if s.respSeen {
		s.resp.Body = p.body(s, dissect.ServerToClient, call)
		h.Response = &s.resp
		if s.resp.Status > 0 {
			e.Status = statusText(s.resp.Status)
		}
	}
	e.HTTP = h
	if call {
		e.GRPC = p.grpcOf(s)
		e.Status = e.GRPC.Status
	}
	return e
}

// statusTexts are the decimal forms of the HTTP status codes, made once so
// that entries do not allocate them.
var statusTexts = func() (t [600]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code >= 100 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

// body renders one side's body. A gRPC body is rendered as messages
// instead, so its HTTP body carries only its size.
func (p *parser) body(s *stream, dir dissect.Dir, call bool) entry.Body {
	if dir == dissect.ClientToServer && s.upgradeBody != nil {
		return *s.upgradeBody
	}
	b := &s.body[dir]
	if call {
		return entry.Body{Size: b.size, Truncated: b.size > 0}
	}
	return b.body(s.coding[dir], p.opts.MaxBody)
}

// grpcOf builds the gRPC view of a call.
func (p *parser) grpcOf(s *stream) *entry.GRPC {
	g := &entry.GRPC{Code: -1}
	g.Service, g.Method = splitMethod(s.req.Target)
	if t := s.msgs[dissect.ServerToClient].webTrailers(); t != nil {
		for k, v := range t {
			if s.resp.Trailers == nil {
				s.resp.Trailers = make(map[string]string, len(t))
			}
			addHeader(s.resp.Trailers, k, entry.HeaderValue(k, v, p.opts.Redact))
		}
	}
	if code := grpcStatus(s.resp.Trailers, s.resp.Headers); code >= 0 {
		g.Code, g.Status = code, grpc.CodeName(code)
	} else if s.respSeen && s.resp.Status != 200 && s.resp.Status != 0 {
		g.Status = statusText(s.resp.Status)
	}
	msg, ok := s.resp.Trailers["grpc-message"]
	if !ok {
		msg = s.resp.Headers["grpc-message"]
	}
	g.Message = percentDecode(msg)
	req, resp := &s.msgs[dissect.ClientToServer], &s.msgs[dissect.ServerToClient]
	g.RequestMessages, g.ResponseMessages = req.count, resp.count
	if n := req.kept + resp.kept; n > 0 {
		g.Messages = make([]entry.GRPCMessage, 0, n)
		g.Messages = append(append(g.Messages, req.msgs[:req.kept]...), resp.msgs[:resp.kept]...)
	}
	return g
}
