// Package all wires every protocol dissector into one registry, in the order
// detection tries them.
package all

import (
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/amqp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dns"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http1"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http2"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/kafka"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/postgres"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/redis"
)

// Protocols returns every dissector. Strong content signatures come first
// (the HTTP/2 preface, the AMQP protocol header, the PostgreSQL startup
// message, Redis command arrays), so that weaker ones do not claim their
// bytes; Kafka, whose requests are only plausible numbers, comes last.
func Protocols() []dissect.Protocol {
	return []dissect.Protocol{
		http2.Protocol(),
		http1.NewProtocol(map[string]http1.UpgradeFunc{"h2c": http2.NewUpgraded}),
		amqp.Protocol(),
		postgres.Protocol(),
		redis.Protocol(),
		dns.Protocol(),
		kafka.Protocol(),
	}
}

// Registry returns a registry of every dissector with opts.
func Registry(opts dissect.Options) *dissect.Registry {
	return dissect.NewRegistry(opts, Protocols()...)
}
