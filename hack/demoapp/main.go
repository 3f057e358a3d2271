// Command demoapp is the demo shop that `make demo` deploys into the namespace
// demo, so that kubectl shark has real traffic of every protocol it dissects:
//
//	loadgen ──HTTP/1.1──► front ──gRPC──────► catalog
//	   │                    ├──h2c──────────► cart ──RESP──► redis
//	   │ DNS (CoreDNS)      │                  └──Kafka──► kafka ──► orders ──PG──► postgres
//	   ▼                    └──HTTPS (Go TLS)► secure ◄──HTTPS (curl, OpenSSL)── secure-client
//
// One binary, one subcommand per service; manifests/demo runs each in its own
// Deployment. `demoapp get URL` is a tiny client for `kubectl exec` in tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand; it parses its own flags from args.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{
	"front":        {"HTTP/1.1 shop API: calls catalog (gRPC), cart (h2c) and secure (HTTPS)", runFront},
	"catalog":      {"gRPC shop.catalog.v1.Catalog with health checking", runCatalog},
	"cart":         {"h2c cart API stored in Redis; checkout produces to Kafka", runCart},
	"secure":       {"HTTPS payment API (Go crypto/tls)", runSecure},
	"loadgen":      {"steady traffic to front, with errors, plus DNS lookups", runLoadgen},
	"kafka-broker": {"in-memory Kafka broker (franz-go kfake)", runKafkaBroker},
	"orders":       {"consume orders from Kafka into PostgreSQL", runOrders},
	"certs":        {"write a CA and a server certificate for secure (deploy time)", runCerts},
	"get":          {"GET a URL and print the body; for kubectl exec", runGet},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	err := dispatch(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "demoapp:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, usageOut io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		usage(usageOut)
		return errors.New("no command given")
	}
	cmd, ok := commands[args[0]]
	if !ok {
		usage(usageOut)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd.run(ctx, args[1:])
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: demoapp COMMAND [flags]")
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, commands[n].summary)
	}
}

// envOr gives a flag its default from the environment, so manifests can set
// either.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
