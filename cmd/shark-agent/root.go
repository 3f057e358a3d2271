//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-shark/kubectl-shark/pkg/version"
)

// IOStreams are the agent's standard streams; tests swap them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// NewCmdAgent returns the root command.
func NewCmdAgent(streams IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shark-agent",
		Short: "kubectl shark's node agent: capture pods' traffic, or sniff a network namespace",
		Long: `shark-agent runs in the cluster as kubectl shark's worker (one per node with
target pods) and, outside any cluster, sniffs a network namespace on a Linux
machine with the output formats of kubectl shark tap.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(NewCmdWorker(streams), NewCmdSniff(streams), NewCmdHub(streams), newCmdVersion(streams))
	return cmd
}

func newCmdVersion(streams IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agent's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(streams.Out, "shark-agent %s (%s/%s, %s)\n",
				version.Version, runtime.GOOS, runtime.GOARCH, runtime.Version())
			return err
		},
	}
}

// logger writes timestamped one-line notices.
func logger(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "%s shark-agent: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
}

// hostname is the default node and worker name.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
