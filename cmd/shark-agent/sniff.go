//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/worker"
)

// sniffRingSize is sniff's default ring: it captures one namespace.
const sniffRingSize = 64 << 20

// SniffOptions are the options of `shark-agent sniff`.
type SniffOptions struct {
	IOStreams

	Interface   string
	Netns       string
	PID         int
	Write       string
	MetricsAddr string
	MaxMemory   byteSize
	Stats       bool
	CPUProfile  string
	Shards      int
	TLS         bool
	ZeroCopy    bool

	capture captureFlags
	output  outputFlags

	target   worker.Target
	captureO afpacket.Options
	format   store.Format
}

// NewSniffOptions returns the defaults of `sniff`.
func NewSniffOptions(streams IOStreams) *SniffOptions {
	o := &SniffOptions{
		IOStreams: streams,
		MaxMemory: worker.DefaultMaxMemory,
		capture:   newCaptureFlags(),
		output:    newOutputFlags("line"),
	}
	// One namespace: a ring as large as tcpdump -B 65536.
	o.capture.RingSize = sniffRingSize
	return o
}

// NewCmdSniff returns `shark-agent sniff`.
func NewCmdSniff(streams IOStreams) *cobra.Command {
	return newCmdSniff(NewSniffOptions(streams))
}

func newCmdSniff(o *SniffOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sniff -i IFACE | --netns PATH | --pid PID [--filter EXPR] [-o line|wide|json] [-w out.pcapng]",
		Short: "Capture a network namespace on this machine and show its request/response traffic",
		Long: `sniff captures with AF_PACKET on any Linux machine, no Kubernetes needed: an
interface of this namespace (-i), or every interface of another network
namespace (--netns, --pid; add -i to pick one). It prints entries like
kubectl shark tap, and can write the raw packets to a pcapng or pcap file.`,
		Example: `  # Everything on eth0
  shark-agent sniff -i eth0

  # A container's network namespace, HTTP errors only, as NDJSON
  shark-agent sniff --pid 4242 --filter 'proto == "http" && int(status) >= 500' -o json

  # Keep the packets too, with a kernel filter
  shark-agent sniff --netns /run/netns/blue --bpf 'tcp port 8080' -w blue.pcapng

  # Decrypted HTTPS of a process's namespace (OpenSSL, Go crypto/tls)
  shark-agent sniff --pid 4242 --tls

  # Raw packets to Wireshark, no entries
  shark-agent sniff -i any -w - | wireshark -k -i -`,
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
	f.StringVarP(&o.Interface, "interface", "i", o.Interface, `interface to capture ("any" or empty with --netns/--pid: all of them)`)
	f.StringVar(&o.Netns, "netns", o.Netns, "network namespace file to capture (/run/netns/NAME, /proc/PID/ns/net)")
	f.IntVar(&o.PID, "pid", o.PID, "capture the network namespace of this process")
	f.StringVarP(&o.Write, "write", "w", o.Write, `write the raw packets to this file (.pcap: pcap, else pcapng; "-": pcapng to stdout, and no entries)`)
	f.StringVar(&o.MetricsAddr, "metrics-addr", o.MetricsAddr, "serve Prometheus metrics on this address (off by default)")
	f.Var(&o.MaxMemory, "max-memory", "memory budget; over it, dissection pauses (capture and -w go on)")
	f.BoolVar(&o.Stats, "stats", o.Stats, "print capture statistics to stderr at the end")
	f.IntVar(&o.Shards, "shards", o.Shards, "dissection goroutines (0: one per CPU)")
	f.BoolVar(&o.TLS, "tls", o.TLS, "also show the TLS plaintext of the namespace's processes (eBPF uprobes on OpenSSL and Go crypto/tls)")
	f.BoolVar(&o.ZeroCopy, "zero-copy", o.ZeroCopy, "experimental: hand packets on in the kernel ring's blocks instead of copying them (less CPU; under heavy load held blocks leave the kernel less room)")
	f.StringVar(&o.CPUProfile, "cpuprofile", o.CPUProfile, "write a CPU profile to this file (benchmarks)")
	f.MarkHidden("cpuprofile")
	o.capture.add(f)
	o.output.add(f)
	return cmd
}

// Complete resolves the target.
func (o *SniffOptions) Complete(_ *cobra.Command, _ []string) error {
	iface := o.Interface
	if iface == "any" {
		iface = ""
	}
	switch {
	case o.Netns != "":
		o.target = worker.Target{Netns: o.Netns, Interface: iface, Label: labelOf(filepath.Base(o.Netns), iface)}
	case o.PID != 0:
		o.target = worker.Target{Netns: fmt.Sprintf("/proc/%d/ns/net", o.PID), Interface: iface, Label: labelOf(fmt.Sprintf("pid:%d", o.PID), iface)}
	default:
		o.target = worker.Target{Netns: "/proc/self/ns/net", Interface: iface, Label: labelOf("", iface)}
	}
	if strings.HasSuffix(o.Write, ".pcap") {
		o.format = store.FormatPcap
	} else {
		o.format = store.FormatPcapng
	}
	return nil
}

func labelOf(ns, iface string) string {
	switch {
	case iface == "" && ns == "":
		return "any"
	case iface == "":
		return ns
	case ns == "":
		return iface
	}
	return ns + ":" + iface
}

// Validate checks the flags before anything is opened.
func (o *SniffOptions) Validate() error {
	switch {
	case o.Interface == "" && o.Netns == "" && o.PID == 0:
		return errors.New("sniff needs -i IFACE, --netns PATH or --pid PID")
	case o.Netns != "" && o.PID != 0:
		return errors.New("--netns and --pid cannot be used together")
	case o.PID < 0:
		return fmt.Errorf("--pid must be positive, got %d", o.PID)
	case o.MaxMemory < 0:
		return errors.New("--max-memory must not be negative")
	}
	if _, err := afpacket.NetnsInode(o.target.Netns); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	if o.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.MetricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	copts, err := o.capture.options()
	if err != nil {
		return err
	}
	o.captureO = copts
	return o.output.validate(o.Out)
}

// Run captures until the context ends.
func (o *SniffOptions) Run(ctx context.Context) error {
	logf := logger(o.ErrOut)
	out := o.Out
	var sinks []worker.Sink
	var ws *worker.WriterSink
	if o.Write != "" {
		var dst io.Writer = o.Out
		if o.Write == "-" {
			out = io.Discard
		} else {
			f, err := os.Create(o.Write)
			if err != nil {
				return err
			}
			defer f.Close()
			dst = f
		}
		pw, err := store.NewWriter(dst, o.format)
		if err != nil {
			return err
		}
		ws = worker.NewWriterSink(pw)
		sinks = append(sinks, ws)
	}
	w, err := worker.New(worker.Options{
		Node:      hostname(),
		Out:       out,
		Render:    o.output.render(),
		Dissect:   o.output.dissect(),
		Capture:   o.captureO,
		Sinks:     sinks,
		NoDissect: o.Write == "-",
		MaxMemory: int64(o.MaxMemory),
		Shards:    o.Shards,
		TLS:       o.TLS,
		ZeroCopy:  o.ZeroCopy,
		Logf: func(format string, args ...any) {
			if o.Stats || !quietNotice(format) {
				logf(format, args...)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := w.SetTargets([]worker.Target{o.target}); err != nil {
		return err
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.MetricsAddr != "" {
		stop, err := serveMetrics(o.MetricsAddr, w)
		if err != nil {
			return err
		}
		defer stop()
	}
	err = w.Run(ctx)
	if ws != nil {
		if werr := ws.Close(); werr != nil && err == nil {
			err = fmt.Errorf("writing %s: %w", o.Write, werr)
		}
	}
	printStats(o.ErrOut, w.Stats(), o.Stats)
	if errors.Is(err, syscall.EPIPE) {
		return nil
	}
	return err
}

// quietNotice reports the worker's notices sniff shows only with --stats.
func quietNotice(format string) bool {
	for _, p := range []string{"attached", "released", "TLS probes on", "eBPF TLS tracing active"} {
		if strings.HasPrefix(format, p) {
			return true
		}
	}
	return false
}

// serveMetrics serves the worker's registry until stop.
func serveMetrics(addr string, w *worker.Worker) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(w.Metrics(), promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
