//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/ui"
	"github.com/kubectl-shark/kubectl-shark/pkg/version"
)

// HubOptions are the options of `shark-agent hub`. The flags match what
// pkg/session puts in the hub pod.
type HubOptions struct {
	IOStreams
	ListenWorker string
	ListenAPI    string
	Session      string
	Namespace    string
	IdleTimeout  time.Duration
	TLSDir       string
	// SelfDelete is "namespace", "pod" or "none"; "auto" picks namespace
	// for a session namespace (shark-<session>) and pod otherwise.
	SelfDelete string
	PodName    string

	opts hub.Options
}

// NewHubOptions returns the defaults of `hub`.
func NewHubOptions(streams IOStreams) *HubOptions {
	return &HubOptions{
		IOStreams:    streams,
		ListenWorker: ":8443",
		ListenAPI:    ":8899",
		IdleTimeout:  60 * time.Second,
		TLSDir:       "/etc/shark/tls",
		SelfDelete:   "auto",
		PodName:      os.Getenv("POD_NAME"),
	}
}

// NewCmdHub returns `shark-agent hub`.
func NewCmdHub(streams IOStreams) *cobra.Command {
	o := NewHubOptions(streams)
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run a session's hub: worker fan-in, filtered subscriptions, pcap merge, dashboard",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ListenWorker, "listen-worker", o.ListenWorker, "TLS address workers dial")
	f.StringVar(&o.ListenAPI, "listen-api", o.ListenAPI, "HTTP address of the API and dashboard (reached through a port-forward)")
	f.StringVar(&o.Session, "session", o.Session, "session id")
	f.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace the hub runs in")
	f.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "remove the session when no client has been heard from for this long (0: never)")
	f.StringVar(&o.TLSDir, "tls-dir", o.TLSDir, "directory with hub.crt, hub.key and token")
	f.StringVar(&o.SelfDelete, "self-delete", o.SelfDelete, "what to delete when idle: auto, namespace, pod, none")
	f.StringVar(&o.PodName, "pod-name", o.PodName, "the hub's own pod (for --self-delete=pod; default $POD_NAME)")
	return cmd
}

// Complete fills the hub's options from the flags.
func (o *HubOptions) Complete() error {
	if o.SelfDelete == "auto" {
		o.SelfDelete = "pod"
		if o.Session != "" && o.Namespace == "shark-"+o.Session {
			o.SelfDelete = "namespace"
		}
	}
	o.opts = hub.NewOptions()
	o.opts.WorkerAddr = o.ListenWorker
	o.opts.APIAddr = o.ListenAPI
	o.opts.CertFile = filepath.Join(o.TLSDir, "hub.crt")
	o.opts.KeyFile = filepath.Join(o.TLSDir, "hub.key")
	o.opts.TokenFile = filepath.Join(o.TLSDir, "token")
	o.opts.SessionID = o.Session
	o.opts.Namespace = o.Namespace
	o.opts.IdleTimeout = o.IdleTimeout
	o.opts.Version = version.Version
	o.opts.Dashboard = ui.Files()
	o.opts.Logger = slog.New(slog.NewTextHandler(o.ErrOut, nil))
	return nil
}

// Validate checks the flags and builds the self-delete function.
func (o *HubOptions) Validate() error {
	var err error
	switch o.SelfDelete {
	case "none":
	case "namespace":
		if o.Namespace == "" {
			return errors.New("--self-delete=namespace needs --namespace")
		}
		o.opts.SelfDelete, err = hub.DeleteNamespace(o.Namespace)
	case "pod":
		if o.Namespace == "" || o.PodName == "" {
			return errors.New("--self-delete=pod needs --namespace and --pod-name (or $POD_NAME)")
		}
		o.opts.SelfDelete, err = hub.DeletePod(o.Namespace, o.PodName)
	default:
		return fmt.Errorf("--self-delete must be auto, namespace, pod or none, not %q", o.SelfDelete)
	}
	if err != nil {
		return fmt.Errorf("self-delete needs in-cluster credentials (use --self-delete=none outside a cluster): %w", err)
	}
	return nil
}

// Run serves until the context is done.
func (o *HubOptions) Run(ctx context.Context) error {
	return hub.Run(ctx, o.opts)
}
