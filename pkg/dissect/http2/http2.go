// Package http2 dissects HTTP/2 connections in cleartext (h2c, prior
// knowledge or upgraded from HTTP/1.1, and TLS plaintext from the eBPF
// source) into entries: one per stream, and one per gRPC call.
//
// The parser reads frames straight from the byte stream of each direction
// (9-byte header, then the payload, which is never buffered whole except
// for small control frames). Header blocks are decoded with one HPACK
// decoder per direction whose dynamic table follows every block, including
// after a mid-connection start, where blocks that need entries the capture
// never saw are marked undecodable rather than guessed. gRPC calls
// (content-type application/grpc*) are split into their length-prefixed
// messages, of which the first few each way are rendered without a schema.
package http2

import (
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Protocol returns the HTTP/2 and gRPC dissector. Its ports are the usual
// cleartext gRPC server ports: gRPC's documented default and its neighbours,
// the default of the grpc-spring starters, and 9000. Content detection works
// on any port; the ports orient connections whose start was not captured and
// whose frames do not tell.
func Protocol() dissect.Protocol {
	return dissect.Protocol{
		Name:   entry.ProtoHTTP2,
		Ports:  []uint16{50051, 50052, 50053, 6565, 9000},
		Detect: Detect,
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return newParser(c, emit)
		},
	}
}
