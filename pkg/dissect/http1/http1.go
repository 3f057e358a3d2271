// Package http1 dissects HTTP/1.0 and HTTP/1.1 connections into entries:
// one entry per request and its final response.
//
// The parser is push-based and parses bytes directly (no net/http on the hot
// path). It pairs pipelined requests with responses in order, follows
// Content-Length, chunked and close-delimited framing, resynchronises on the
// next start line after a capture gap or a mid-stream start, and hands the
// connection to another parser after a 101 Switching Protocols (h2c) through
// the hooks given to NewProtocol.
//
// Entries: TS is when the request's first byte was seen, ElapsedUS runs to
// the last byte of the final response (for a close-delimited body, the last
// byte before the connection closed). Size counts every byte each side sent
// for the exchange, heads, chunk framing and 1xx responses included. A
// request that got no response is emitted at End (or when the pipelining
// bound drops it) with Error "no response" and no Status; a response whose
// request the capture missed is dropped and counted in Stats.
package http1

import (
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Bounds on what one connection may hold.
const (
	maxHead        = 64 << 10 // a request or response head, and the trailers of one body
	maxStartLine   = 16 << 10 // a request or status line, while looking for one
	maxOutstanding = 100      // pipelined requests waiting for a response
	maxQueued      = 1 << 20  // bytes those requests may hold (heads and kept bodies)
	maxHold        = 64 << 10 // client bytes held while an Upgrade or CONNECT is decided
	maxChunkExt    = 4 << 10  // chunk extensions of one chunk-size line
)

// UpgradeFunc builds the parser that takes over a connection after a 101
// Switching Protocols. req is the entry of the upgrade exchange (request head
// and the 101 response); it is emitted right after the hook returns, so the
// hook must only read it and copy what it needs. The returned parser gets
// every later byte of both directions, starting with the bytes that followed
// the upgrade request and the 101 response.
type UpgradeFunc func(c *dissect.Conn, emit dissect.Emitter, req *entry.Entry) dissect.StreamParser

// Protocol returns the HTTP/1 dissector with no upgrade hooks: upgraded
// connections emit their 101 exchange and the rest is not parsed.
func Protocol() dissect.Protocol { return NewProtocol(nil) }

// NewProtocol returns the HTTP/1 dissector. upgrades maps an Upgrade token
// ("h2c", "websocket"; any case) to the parser that takes the connection
// over after a 101 response naming it.
func NewProtocol(upgrades map[string]UpgradeFunc) dissect.Protocol {
	ups := make(map[string]UpgradeFunc, len(upgrades))
	for k, f := range upgrades {
		if f != nil {
			ups[strings.ToLower(k)] = f
		}
	}
	return dissect.Protocol{
		Name:   entry.ProtoHTTP,
		Ports:  []uint16{80, 8080, 8000, 3000, 5000, 8081, 8888, 9090},
		Detect: Detect,
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return newParser(c, emit, ups)
		},
	}
}
