//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/version"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
	"github.com/kubectl-shark/kubectl-shark/pkg/worker"
)

// WorkerOptions are the options of `shark-agent worker`.
type WorkerOptions struct {
	IOStreams

	PodUIDs      []string
	TargetsFile  string
	Node         string
	Name         string
	StorageDir   string
	StorageLimit byteSize
	TTL          time.Duration
	NoStore      bool
	MaxMemory    byteSize
	ProcRoot     string
	Stats        bool
	Shards       int
	NoTLS        bool
	Hub          string
	CAFile       string
	TokenFile    string

	capture captureFlags
	output  outputFlags

	targets  []worker.Target
	captureO afpacket.Options
	hubTLS   *tls.Config
	hubToken string
}

// Where the session's Secret is mounted in worker pods: pkg/session's
// TLSMountPath with SecretCACert and SecretToken (a test keeps them equal;
// the agent does not import pkg/session, which pulls in client-go).
const (
	defaultCAFile    = "/etc/shark/tls/ca.crt"
	defaultTokenFile = "/etc/shark/tls/token"
)

// NewWorkerOptions returns the defaults of `worker`.
func NewWorkerOptions(streams IOStreams) *WorkerOptions {
	return &WorkerOptions{
		IOStreams:    streams,
		StorageDir:   filepath.Join(os.TempDir(), "shark-store"),
		StorageLimit: store.DefaultLimit,
		TTL:          10 * time.Minute,
		MaxMemory:    worker.DefaultMaxMemory,
		ProcRoot:     "/proc",
		capture:      newCaptureFlags(),
		output:       newOutputFlags("json"),
		CAFile:       defaultCAFile,
		TokenFile:    defaultTokenFile,
	}
}

// NewCmdWorker returns `shark-agent worker`.
func NewCmdWorker(streams IOStreams) *cobra.Command {
	return newCmdWorker(NewWorkerOptions(streams))
}

func newCmdWorker(o *WorkerOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker --hub HOST:PORT | --pod-uid UID=NAMESPACE/NAME... | --targets-file FILE",
		Short: "Capture the traffic of pods on this node, keep it in a pcap ring, print entries",
		Long: `worker finds each target pod's network namespace through /proc (by the pod UID
in its processes' cgroup paths), captures there with AF_PACKET, keeps the raw
packets in a size- and time-bounded pcap ring, and writes the dissected entries
to stdout (NDJSON by default). Pods that start, restart or go away are attached
or released within a second. It opens no listening port.

With --hub, as in a kubectl shark session, the worker dials the session's hub
over TLS (verified with the session CA, authenticated with the session token):
the hub sends the targets of this node and the filter its subscribers want,
the worker sends the matching entries, its stats and the pcap exports the hub
asks for. It reconnects whenever the connection is lost; stdout stays quiet.`,
		Example: `  # Two pods, NDJSON on stdout
  shark-agent worker --pod-uid 8f6c2a57-3c1e-4a3b-9d2e-0123456789ab=shop/cart-7d9f \
      --pod-uid 0c1e...=shop/front-1a2b

  # In a session: targets from the hub, entries to it
  shark-agent worker --hub 10.244.0.12:8443 --node "$NODE_NAME" \
      --ca-file /etc/shark/tls/ca.crt --token-file /etc/shark/tls/token

  # Targets from a file (one UID=namespace/name per line), re-read when it changes
  shark-agent worker --targets-file /run/shark/targets --storage-dir /data --storage-limit 500Mi`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Hub, "hub", o.Hub, "the session hub's worker port HOST:PORT: targets come from it and entries go to it")
	f.StringVar(&o.CAFile, "ca-file", o.CAFile, "with --hub: the session CA (PEM) that signed the hub's certificate")
	f.StringVar(&o.TokenFile, "token-file", o.TokenFile, "with --hub: the file holding the session token")
	f.StringArrayVar(&o.PodUIDs, "pod-uid", o.PodUIDs, "a target pod as UID=namespace/name (repeatable)")
	f.StringVar(&o.TargetsFile, "targets-file", o.TargetsFile, "file of targets, one UID=namespace/name per line; re-read when it changes")
	f.StringVar(&o.Node, "node", o.Node, "node name for entries (default $NODE_NAME, else the host name)")
	f.StringVar(&o.Name, "name", o.Name, "worker name for entries (default $POD_NAME, else the host name)")
	f.StringVar(&o.StorageDir, "storage-dir", o.StorageDir, "directory of the pcap ring (an emptyDir in the cluster)")
	f.Var(&o.StorageLimit, "storage-limit", "bytes of the pcap ring on disk; the oldest packets go first")
	f.DurationVar(&o.TTL, "ttl", o.TTL, "drop stored packets older than this (0: only the size limit)")
	f.BoolVar(&o.NoStore, "no-store", o.NoStore, "keep no raw packets")
	f.Var(&o.MaxMemory, "max-memory", "memory budget; over it, dissection pauses (capture and storage go on)")
	f.StringVar(&o.ProcRoot, "proc", o.ProcRoot, "the host's proc file system")
	f.BoolVar(&o.Stats, "stats", o.Stats, "print capture statistics to stderr at the end")
	f.IntVar(&o.Shards, "shards", o.Shards, "dissection goroutines (0: one per CPU)")
	f.BoolVar(&o.NoTLS, "no-tls", o.NoTLS, "do not trace TLS plaintext with eBPF (OpenSSL, Go crypto/tls); capture with AF_PACKET only")
	o.capture.add(f)
	o.output.add(f)
	return cmd
}

// Complete fills in names from the environment.
func (o *WorkerOptions) Complete(_ *cobra.Command, _ []string) error {
	if o.Node == "" {
		o.Node = os.Getenv("NODE_NAME")
	}
	if o.Node == "" {
		o.Node = hostname()
	}
	if o.Name == "" {
		o.Name = os.Getenv("POD_NAME")
	}
	if o.Name == "" {
		o.Name = hostname()
	}
	return nil
}

// Validate checks the flags before anything is opened.
func (o *WorkerOptions) Validate() error {
	if o.Hub != "" {
		if err := o.validateHub(); err != nil {
			return err
		}
	} else if len(o.PodUIDs) == 0 && o.TargetsFile == "" {
		return errors.New("worker needs targets: --hub HOST:PORT, --pod-uid UID=namespace/name or --targets-file FILE")
	}
	for _, s := range o.PodUIDs {
		t, err := worker.ParseTarget(s)
		if err != nil {
			return fmt.Errorf("--pod-uid: %w", err)
		}
		o.targets = append(o.targets, t)
	}
	if o.TargetsFile != "" {
		if _, err := readTargets(o.TargetsFile); err != nil {
			return fmt.Errorf("--targets-file: %w", err)
		}
	}
	if !o.NoStore && o.StorageLimit < 1<<20 {
		return fmt.Errorf("--storage-limit must be at least 1Mi, got %d bytes", o.StorageLimit)
	}
	if o.TTL < 0 {
		return fmt.Errorf("--ttl must not be negative, got %v", o.TTL)
	}
	if o.MaxMemory < 0 {
		return fmt.Errorf("--max-memory must not be negative")
	}
	copts, err := o.capture.options()
	if err != nil {
		return err
	}
	o.captureO = copts
	return o.output.validate(o.Out)
}

// validateHub checks --hub and reads the session CA and token.
func (o *WorkerOptions) validateHub() error {
	if len(o.PodUIDs) > 0 || o.TargetsFile != "" {
		return errors.New("--hub takes the targets from the hub: drop --pod-uid and --targets-file")
	}
	if err := checkHostPort(o.Hub); err != nil {
		return fmt.Errorf("--hub: %w", err)
	}
	ca, err := os.ReadFile(o.CAFile)
	if err != nil {
		return fmt.Errorf("--ca-file: %w", err)
	}
	if o.hubTLS, err = wire.WorkerTLSConfig(ca); err != nil {
		return fmt.Errorf("--ca-file %s: %w", o.CAFile, err)
	}
	tok, err := os.ReadFile(o.TokenFile)
	if err != nil {
		return fmt.Errorf("--token-file: %w", err)
	}
	if o.hubToken = strings.TrimSpace(string(tok)); o.hubToken == "" {
		return fmt.Errorf("--token-file %s is empty", o.TokenFile)
	}
	return nil
}

// checkHostPort accepts HOST:PORT with a port number.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not HOST:PORT (e.g. 10.244.0.12:8443)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	return nil
}

func readTargets(path string) ([]worker.Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return worker.ParseTargets(f)
}

// Run captures until the context ends.
func (o *WorkerOptions) Run(ctx context.Context) error {
	logf := logger(o.ErrOut)
	var sinks []worker.Sink
	var st *store.Store
	if !o.NoStore {
		var err error
		st, err = store.Open(store.Options{Dir: o.StorageDir, Limit: int64(o.StorageLimit), TTL: o.TTL})
		if err != nil {
			return err
		}
		defer st.RemoveAll()
		sinks = append(sinks, st)
	}
	if o.MaxMemory > 0 {
		// A soft limit makes the GC work harder before shedding starts.
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(o.MaxMemory)))
	}
	out, render := o.Out, o.output.render()
	var link *worker.HubLink
	if o.Hub != "" {
		var err error
		if link, err = o.newHubLink(st, logf); err != nil {
			return err
		}
		out, render = io.Discard, o.hubRender(link)
		sinks = append(sinks, link) // follow exports tap live packets
	}
	w, err := worker.New(worker.Options{
		Node: o.Node, Name: o.Name,
		Out:       out,
		Render:    render,
		Dissect:   o.output.dissect(),
		Capture:   o.captureO,
		Sinks:     sinks,
		MaxMemory: int64(o.MaxMemory),
		Shards:    o.Shards,
		ProcRoot:  o.ProcRoot,
		Logf:      logf,
		TLS:       !o.NoTLS,
	})
	if err != nil {
		return err
	}
	if link != nil {
		err = runWithHub(ctx, w, link)
		ls := link.Stats()
		logf("hub: %d entries sent in %d batches, %d dropped; %d connections", ls.Sent, ls.Batches, ls.Dropped, ls.Connects)
	} else {
		if err := o.setTargets(w, logf); err != nil {
			return err
		}
		if o.TargetsFile != "" {
			go o.watchTargets(ctx, w, logf)
		}
		err = w.Run(ctx)
	}
	printStats(o.ErrOut, w.Stats(), o.Stats)
	if errors.Is(err, syscall.EPIPE) {
		return nil
	}
	return err
}

// newHubLink prepares the link to the hub; st, when not nil, answers pcap
// requests.
func (o *WorkerOptions) newHubLink(st *store.Store, logf func(string, ...any)) (*worker.HubLink, error) {
	opts := worker.HubOptions{
		Addr: o.Hub, TLS: o.hubTLS, Token: o.hubToken,
		Hello: wire.Hello{Node: o.Node, Worker: o.Name, Version: version.Version},
		Logf:  logf,
	}
	if st != nil {
		opts.Store = st
	}
	return worker.NewHubLink(opts)
}

// hubRender sends entries to the hub; a local --filter applies first.
func (o *WorkerOptions) hubRender(link *worker.HubLink) pipeline.RenderFunc {
	f := o.output.filter
	if f == nil {
		return link.Render
	}
	return func(dst []byte, e *entry.Entry) []byte {
		if !f.Match(e) {
			return dst
		}
		return link.Render(dst, e)
	}
}

// runWithHub runs the worker and its hub link until ctx ends or the
// worker fails.
func runWithHub(ctx context.Context, w *worker.Worker, link *worker.HubLink) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(ctx, w) }()
	err := w.Run(ctx)
	cancel()
	if lerr := <-linkDone; err == nil {
		err = lerr
	}
	return err
}

// setTargets applies the flag targets plus the file's.
func (o *WorkerOptions) setTargets(w *worker.Worker, logf func(string, ...any)) error {
	ts := append([]worker.Target(nil), o.targets...)
	if o.TargetsFile != "" {
		more, err := readTargets(o.TargetsFile)
		if err != nil {
			return err
		}
		ts = append(ts, more...)
	}
	if err := w.SetTargets(ts); err != nil {
		return err
	}
	logf("%d targets", len(ts))
	return nil
}

// watchTargets re-reads the targets file when its size or time changes.
// A bad file is reported and the previous targets stay.
func (o *WorkerOptions) watchTargets(ctx context.Context, w *worker.Worker, logf func(string, ...any)) {
	var last os.FileInfo
	if fi, err := os.Stat(o.TargetsFile); err == nil {
		last = fi
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fi, err := os.Stat(o.TargetsFile)
		if err != nil || (last != nil && fi.ModTime().Equal(last.ModTime()) && fi.Size() == last.Size()) {
			continue
		}
		last = fi
		if err := o.setTargets(w, logf); err != nil {
			logf("targets file %s: %v (keeping the previous targets)", o.TargetsFile, err)
		}
	}
}
