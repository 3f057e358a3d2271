package http2

import (
	"encoding/base64"
	"maps"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// NewUpgraded returns the parser of a connection upgraded from HTTP/1.1 with
// "Upgrade: h2c" (RFC 7540 section 3.2). req is the entry of the upgrade
// request: it becomes the request of stream 1, whose response the server
// sends as HTTP/2 frames right after its 101. The client sends the
// connection preface, then frames. req is only read; nil is allowed.
func NewUpgraded(c *dissect.Conn, emit dissect.Emitter, req *entry.Entry) dissect.StreamParser {
	p := newParser(c, emit)
	p.oriented = true
	srv := p.halves[dissect.ServerToClient]
	srv.state, srv.synced = stFrames, true
	if req == nil {
		return p
	}
	s := p.newStream(1, req.TS)
	s.reqSeen, s.reqStarted = true, true
	s.ended[dissect.ClientToServer] = true
	s.size.Request = req.Size.Request
	s.req.Method, s.req.Target = req.Method, req.Path
	if req.HTTP == nil || req.HTTP.Request == nil {
		return p
	}
	r := req.HTTP.Request
	s.req.Method, s.req.Target = r.Method, r.Target
	s.req.Authority = r.Authority
	if s.req.Authority == "" {
		s.req.Authority = r.Headers["host"]
	}
	s.req.Headers = maps.Clone(r.Headers)
	s.req.Trailers = maps.Clone(r.Trailers)
	body := r.Body
	s.upgradeBody = &body
	s.grpc = grpcNo
	if isGRPC(r.Headers["content-type"]) {
		s.grpc = grpcYes
	}
	// The client's settings ride in HTTP2-Settings; they bound the
	// server's HPACK encoder like a SETTINGS frame would.
	if v, ok := r.Headers["http2-settings"]; ok {
		if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(v), "=")); err == nil {
			p.settings(p.halves[dissect.ClientToServer], b)
		}
	}
	return p
}
