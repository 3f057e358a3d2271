//go:build linux

// Command shark-agent is the in-cluster binary of kubectl shark. `worker`
// captures the traffic of pods on its node; `sniff` captures one network
// namespace on any Linux machine, with the same output as `kubectl shark
// tap`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := NewCmdAgent(IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
