package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// runKafkaBroker serves franz-go's in-memory Kafka broker. Kafka clients
// connect to the address a broker advertises in its metadata, so the broker
// must advertise the Service name, not the pod's listen address.
func runKafkaBroker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kafka-broker", flag.ContinueOnError)
	addr := fs.String("addr", envOr("KAFKA_ADDR", ":9092"), "listen address")
	advertise := fs.String("advertise", envOr("KAFKA_ADVERTISE", "kafka:9092"), "HOST:PORT clients reach the broker at")
	if err := fs.Parse(args); err != nil {
		return err
	}
	advHost, advPort, err := net.SplitHostPort(*advertise)
	if err != nil {
		return fmt.Errorf("-advertise: %w", err)
	}
	_, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	if advPort != port {
		return fmt.Errorf("-advertise port %s differs from the listen port %s", advPort, port)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("-addr port: %w", err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(p),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, *addr)
			if err != nil {
				return nil, err
			}
			return advertisedListener{Listener: ln, addr: advertisedAddr(net.JoinHostPort(advHost, advPort))}, nil
		}),
		kfake.SeedTopics(3, ordersTopic),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		return err
	}
	defer c.Close()
	slog.Info("kafka broker", "listen", *addr, "advertise", *advertise, "topics", ordersTopic)
	<-ctx.Done()
	return nil
}

// advertisedListener reports the advertised address as its own, which is
// what kfake puts in metadata and coordinator answers.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }
