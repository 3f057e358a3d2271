package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-shark/kubectl-shark/pkg/session"
)

// CleanOptions are the options of `kubectl shark clean`.
type CleanOptions struct {
	configFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams

	All     bool
	Wait    bool
	Timeout time.Duration

	manager *session.Manager
}

// NewCleanOptions returns the defaults of `clean`.
func NewCleanOptions(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *CleanOptions {
	return &CleanOptions{configFlags: flags, IOStreams: streams, Timeout: 2 * time.Minute}
}

// NewCmdClean returns `kubectl shark clean`.
func NewCmdClean(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewCleanOptions(flags, streams)
	cmd := &cobra.Command{
		Use:   "clean [--all] [--wait]",
		Short: "Remove what any kubectl shark session left in the cluster",
		Long: `clean removes the objects of kubectl shark sessions, found by their labels
(app.kubernetes.io/managed-by=kubectl-shark, shark.io/session). It never deletes
a namespace that kubectl shark did not create. Sessions whose hub is running, or
that started in the last two minutes, are kept unless --all is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&o.All, "all", o.All, "also remove sessions that look alive")
	cmd.Flags().BoolVar(&o.Wait, "wait", o.Wait, "wait until everything is really gone")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "how long --wait waits")
	return cmd
}

// Complete builds the client from the kubeconfig flags.
func (o *CleanOptions) Complete() error {
	cfg, err := o.configFlags.ToRESTConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ns, _, err := o.configFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return err
	}
	o.manager = &session.Manager{Client: client, Host: cfg.Host, Namespace: ns, WaitTimeout: o.Timeout}
	return nil
}

// Run removes the leftovers and says what it did.
func (o *CleanOptions) Run(ctx context.Context) error {
	rep, err := o.manager.Clean(ctx, o.All, o.Wait)
	for _, r := range rep.Removed {
		fmt.Fprintf(o.Out, "removed %s\n", r)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(o.ErrOut, "kept %s\n", s)
	}
	for _, u := range rep.Unsearched {
		fmt.Fprintf(o.ErrOut, "warning: could not search %s\n", u)
	}
	if err == nil && len(rep.Removed) == 0 {
		fmt.Fprintln(o.Out, "nothing to clean")
	}
	return err
}
