// Package cli holds the cobra commands of the plugin. Each command has an
// Options struct with Complete, Validate and Run; defaults live once, in its
// NewXOptions.
package cli

import (
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// NewCmdShark returns the root command, `kubectl shark`.
func NewCmdShark(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	cmd := &cobra.Command{
		Use:   "kubectl-shark",
		Short: "See what your pods say to each other: live L7 traffic capture",
		Long: `kubectl shark captures the traffic of the pods you name and shows it as
request/response entries (HTTP/1, HTTP/2, gRPC, DNS, ...), a pcapng stream, or a
dashboard. In a cluster it creates short-lived privileged worker pods, which it
removes when it exits.`,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl shark",
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	flags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(NewCmdTap(flags, streams))
	cmd.AddCommand(NewCmdPcap(flags, streams))
	cmd.AddCommand(NewCmdUI(flags, streams))
	cmd.AddCommand(NewCmdClean(flags, streams))
	cmd.AddCommand(NewCmdVersion(flags, streams))
	registerCompletions(cmd, flags)
	return cmd
}
