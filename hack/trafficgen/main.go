// Command trafficgen runs real servers and clients that produce the traffic
// kubectl shark dissects: HTTP/1.1, h2c, gRPC and DNS. The recorder script
// (hack/record-testdata.sh) runs it inside a network namespace to make
// testdata captures, and the demo app runs its servers in the cluster.
//
// Every client is bounded in count and time, stops by itself, and can log
// what it did (-log FILE) as a tshark.Summary, so tests can compare a
// dissector's counts with the clients' own.
//
//	trafficgen http-server -addr 127.0.0.1:8080
//	trafficgen http-client -url http://127.0.0.1:8080 -n 100 -c 4 -log a.json
//	trafficgen merge -o testdata/http1.expected.json a.json b.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{
	"http-server":        {"serve the HTTP/1.1 demo API", runHTTPServer},
	"http-client":        {"drive the HTTP/1.1 API: keep-alive, methods, pipelining", runHTTPClient},
	"h2c-server":         {"serve the demo API over h2c (prior knowledge and Upgrade)", runH2CServer},
	"h2-client":          {"drive the API over h2c with prior knowledge", runH2Client},
	"h2c-upgrade-client": {"drive the API over HTTP/1.1 Upgrade: h2c, by hand", runH2CUpgradeClient},
	"grpc-server":        {"serve demo.Catalog and grpc.health.v1 over gRPC", runGRPCServer},
	"grpc-client":        {"call demo.Catalog: unary, errors, streaming", runGRPCClient},
	"dns-client":         {"query a DNS server over UDP and TCP", runDNSClient},
	"curl-client":        {"drive the HTTP API with curl (HTTP/1.1 and h2c)", runCurlClient},
	"dig-client":         {"query a DNS server with dig", runDigClient},
	"merge":              {"sum client logs into one expected summary", runMerge},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "trafficgen:", err)
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
	fmt.Fprintln(w, "usage: trafficgen COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-20s %s\n", name, commands[name].summary)
	}
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string) *flag.FlagSet {
	return flag.NewFlagSet(name, flag.ContinueOnError)
}
