package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/all"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
)

// TapOptions are the options of `kubectl shark tap`.
type TapOptions struct {
	configFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams

	Read     string // a capture file, or "-" for stdin
	Filter   string
	Output   string
	Template string
	Color    string
	MaxBody  int
	NoRedact bool
	Stats    bool

	session *sessionFlags
	args    []string

	filter   *filter.Filter
	renderer render.Renderer
	isTTY    bool
}

// NewTapOptions returns the defaults of `tap`.
func NewTapOptions(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *TapOptions {
	return &TapOptions{
		configFlags: flags,
		IOStreams:   streams,
		Output:      "line",
		Color:       "auto",
		MaxBody:     dissect.DefaultOptions().MaxBody,
		session:     newSessionFlags(),
	}
}

// NewCmdTap returns `kubectl shark tap`.
func NewCmdTap(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewTapOptions(flags, streams)
	cmd := &cobra.Command{
		Use:   "tap [POD-REGEX] [-n NS[,NS...]] [-A] [-l SELECTOR] [--filter EXPR] [-o line|wide|json] | tap --read FILE",
		Short: "Show the request/response traffic of pods, or of a capture file",
		Long: `tap shows the requests and responses of the pods you name, as they happen.
It starts a short-lived session in the cluster: a hub pod, and one privileged
worker pod on each node that hosts a matching pod. Workers capture inside the
pods' network namespaces and dissect HTTP/1, HTTP/2, gRPC, DNS, Redis, Kafka,
AMQP, PostgreSQL and more. Ctrl-C removes the session; if this command dies,
the session removes itself after --idle-timeout.

With --read it dissects a capture file instead, with no cluster at all.`,
		Example: `  # The front pods of namespace demo, as they talk
  kubectl shark tap -n demo 'front.*'

  # Which pods would be tapped, creating nothing
  kubectl shark tap -n demo -l app=cart --dry-run

  # Server errors anywhere, as NDJSON, for one minute
  kubectl shark tap -A --filter 'proto == "http" && int(status) >= 500' -o json --duration 1m

  # Dissect a capture file
  kubectl shark tap --read capture.pcap

  # Only server errors, as NDJSON
  kubectl shark tap --read capture.pcapng --filter 'proto == "http" && int(status) >= 500' -o json

  # Live from tcpdump: entries print as they complete
  tcpdump -i any -U -w - | kubectl shark tap --read -`,
		Args: cobra.MaximumNArgs(1),
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
	f.StringVar(&o.Read, "read", o.Read, "dissect a pcap or pcapng file instead of a cluster (\"-\" reads stdin)")
	f.StringVar(&o.Filter, "filter", o.Filter, "CEL expression over entries, e.g. 'proto == \"http\" && int(status) >= 500'")
	f.StringVarP(&o.Output, "output", "o", o.Output, "output format: line, wide, json")
	f.StringVar(&o.Template, "template", o.Template, "Go template for each entry (implies -o template)")
	f.StringVar(&o.Color, "color", o.Color, "colors: auto, always, never")
	f.IntVar(&o.MaxBody, "max-body", o.MaxBody, "bytes of each body kept in an entry (the true size is always shown)")
	f.BoolVar(&o.NoRedact, "no-redact", o.NoRedact, "show credentials (Authorization, cookies, passwords) instead of redacting them")
	f.BoolVar(&o.Stats, "stats", o.Stats, "print capture statistics to stderr at the end")
	o.session.add(f)
	return cmd
}

// Complete resolves what the flags imply.
func (o *TapOptions) Complete(_ *cobra.Command, args []string) error {
	o.args = args
	if o.Template != "" {
		o.Output = "template"
	}
	if f, ok := o.Out.(*os.File); ok {
		o.isTTY = term.IsTerminal(int(f.Fd()))
	}
	return nil
}

// Validate checks the flags before anything is read or created.
func (o *TapOptions) Validate() error {
	if o.Read != "" && len(o.args) > 0 {
		return errors.New("--read dissects a file: it takes no pod query")
	}
	if o.MaxBody < 0 {
		return fmt.Errorf("--max-body must be >= 0, got %d", o.MaxBody)
	}
	if o.Filter != "" {
		f, err := filter.Compile(o.Filter)
		if err != nil {
			return err
		}
		o.filter = f
	}
	r, err := render.New(render.Options{
		Format:   render.Format(o.Output),
		Template: o.Template,
		Color:    render.ColorMode(o.Color),
		IsTTY:    o.isTTY,
	})
	if err != nil {
		return err
	}
	o.renderer = r
	return nil
}

// Run prints the entries of the pods in scope, or of the capture file.
func (o *TapOptions) Run(ctx context.Context) error {
	if o.Read == "" {
		return o.runCluster(ctx)
	}
	src, err := o.open()
	if err != nil {
		return err
	}
	defer src.Close()
	opts := dissect.DefaultOptions()
	opts.MaxBody = o.MaxBody
	opts.Redact = !o.NoRedact
	st, err := pipeline.Run(ctx, src, o.Out, pipeline.Options{
		Registry: all.Registry(opts),
		Render:   o.render,
		Live:     o.Read == "-",
	})
	if o.Stats {
		printStats(o.ErrOut, st)
	}
	warnDrops(o.ErrOut, st)
	switch {
	case errors.Is(err, capture.ErrTruncated):
		fmt.Fprintf(o.ErrOut, "warning: %v\n", err)
		return nil
	case errors.Is(err, syscall.EPIPE):
		return nil // the reader went away (| head): not an error
	}
	return err
}

func (o *TapOptions) open() (capture.Source, error) {
	if o.Read == "-" {
		return capture.NewReader(o.In)
	}
	return capture.Open(o.Read)
}

func (o *TapOptions) render(dst []byte, e *entry.Entry) []byte {
	if o.filter != nil && !o.filter.Match(e) {
		return dst
	}
	return o.renderer.Append(dst, e)
}

// warnDrops tells the user what the engine had to give up, in one line.
func warnDrops(w io.Writer, st pipeline.Stats) {
	a, d, dropped := st.Assemble, st.Decode, st.Parsers.Dropped()
	if a.Gaps == 0 && a.FlowsDropped == 0 && a.Panics == 0 && d.FragmentsDropped == 0 && dropped == 0 {
		return
	}
	fmt.Fprintf(w, "warning: %d TCP gaps (%d bytes lost), %d flows over the limit, %d flows dropped on parser errors, %d IP fragments dropped, %d messages the parsers could not pair\n",
		a.Gaps, a.GapBytes, a.FlowsDropped, a.Panics, d.FragmentsDropped, dropped)
}

func printStats(w io.Writer, st pipeline.Stats) {
	fmt.Fprintf(w, "packets %d (%d bytes), decoded %d, TCP flows %d, UDP flows %d, entries %d, shown %d\n",
		st.Packets, st.Bytes, st.Decode.Decoded, st.Assemble.TCPFlows, st.Assemble.UDPFlows, st.Entries, st.Written)
}
