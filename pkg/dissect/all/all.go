// Package all wires every protocol dissector into one registry, in the order
// detection tries them.
package all

import (
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/amqp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dns"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/graphql"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http1"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http2"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/kafka"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/mysql"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/postgres"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/redis"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/tlshello"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/websocket"
)

// Protocols returns every dissector. Strong content signatures come first
// (the HTTP/2 preface, TLS handshake records, the AMQP protocol header, the
// PostgreSQL startup message, Redis command arrays, the MySQL greeting), so
// that weaker ones do not claim their bytes; Kafka, whose requests are only
// plausible numbers, comes last. WebSocket takes over HTTP/1 connections
// after an Upgrade; GraphQL rewrites HTTP entries (an Enrich hook).
func Protocols() []dissect.Protocol {
	return []dissect.Protocol{
		http2.Protocol(),
		tlshello.Protocol(),
		http1.NewProtocol(map[string]http1.UpgradeFunc{"h2c": http2.NewUpgraded, "websocket": websocket.NewUpgraded}),
		amqp.Protocol(),
		postgres.Protocol(),
		redis.Protocol(),
		mysql.Protocol(),
		dns.Protocol(),
		kafka.Protocol(),
		graphql.Protocol(),
	}
}

// Registry returns a registry of every dissector with opts.
func Registry(opts dissect.Options) *dissect.Registry {
	return dissect.NewRegistry(opts, Protocols()...)
}
