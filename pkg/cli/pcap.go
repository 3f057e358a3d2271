package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hubclient"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// PcapOptions are the options of `kubectl shark pcap`.
type PcapOptions struct {
	configFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams

	Write  string
	Count  int
	Since  time.Duration
	Follow bool

	session *sessionFlags
	args    []string
}

// NewPcapOptions returns the defaults of `pcap`.
func NewPcapOptions(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *PcapOptions {
	return &PcapOptions{configFlags: flags, IOStreams: streams, session: newSessionFlags()}
}

// NewCmdPcap returns `kubectl shark pcap`.
func NewCmdPcap(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := NewPcapOptions(flags, streams)
	cmd := &cobra.Command{
		Use:   "pcap [POD-REGEX] [-n NS[,NS...]] [-A] [-l SELECTOR] [-c N] [--duration D] [--since D --session ID] [-w FILE]",
		Short: "Stream the raw packets of pods as pcapng, one interface per pod",
		Long: `pcap writes the packets of the pods you name as one pcapng stream, merged from
every node, with one interface per pod named namespace/pod. It writes to stdout
(never to a terminal) or to the file given with -w.

Live by default: it starts a session and streams packets as they are captured,
until Ctrl-C, --duration or -c. With --session it joins a running session (of
tap or ui), and --since exports what that session's workers have stored.`,
		Example: `  # Into Wireshark, live
  kubectl shark pcap -n demo 'front.*' | wireshark -k -i -

  # 1000 packets of the cart pods into a file
  kubectl shark pcap -n demo -l app=cart -c 1000 -w cart.pcapng

  # The last 5 minutes of a running session, for tshark
  kubectl shark pcap --session abc123 --since 5m | tshark -r - -Y http`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.args = args
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Write, "write", "w", o.Write, "write to this file instead of stdout")
	f.IntVarP(&o.Count, "count", "c", o.Count, "stop after this many packets (0: no limit)")
	f.DurationVar(&o.Since, "since", o.Since, "with --session: packets stored in the last D, e.g. 5m")
	f.BoolVar(&o.Follow, "follow", o.Follow, "with --since: go on with live packets after the stored ones")
	o.session.add(f)
	return cmd
}

// Validate checks the flags before anything is created.
func (o *PcapOptions) Validate() error {
	if o.Count < 0 {
		return fmt.Errorf("--count must be >= 0, got %d", o.Count)
	}
	if o.Since < 0 {
		return fmt.Errorf("--since must be positive, got %v", o.Since)
	}
	if o.Since > 0 && o.session.Session == "" {
		return errors.New("--since exports what a running session stored: name it with --session ID (a new session has stored nothing yet)")
	}
	if o.Follow && o.Since == 0 {
		return errors.New("--follow goes with --since (without --since, pcap is live anyway)")
	}
	if o.Write == "" {
		if f, ok := o.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return errors.New("refusing to write binary pcapng to a terminal: pipe it (| tshark -r -) or use -w FILE")
		}
	}
	return nil
}

// Run streams the packets.
func (o *PcapOptions) Run(ctx context.Context) error {
	l, err := prepare(liveConfig{configFlags: o.configFlags, flags: o.session, args: o.args, errOut: o.ErrOut})
	if err != nil {
		return err
	}
	runCtx, cancel, err := l.begin(ctx)
	defer l.close()
	if err != nil {
		return ignoreDryRun(err)
	}
	defer cancel()
	go func() {
		select {
		case err := <-l.fatal:
			l.say("%v", err)
			cancel()
		case <-runCtx.Done():
		}
	}()
	// Without --since it is live: packets from now on, not what a running
	// session stored before. Follow too, for a hub older than live.
	live := o.Since == 0
	q := hubclient.PcapQuery{Since: o.Since, Follow: o.Follow || live, Live: live}
	if l.sess != nil {
		// A new session: stream once every worker is connected, or the
		// export would miss the nodes whose worker came late.
		if err := l.waitCapturing(runCtx); err != nil {
			return ignoreEnd(err)
		}
	}
	out, closeOut, err := o.output()
	if err != nil {
		return err
	}
	body, err := l.hub.Pcap(runCtx, q)
	if err != nil {
		closeOut()
		return ignoreEnd(err)
	}
	defer body.Close()
	go func() { <-runCtx.Done(); body.Close() }()
	n, err := copyPcapng(out, body, o.Count)
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	l.say("%d packets written", n)
	if runCtx.Err() != nil || errors.Is(err, syscall.EPIPE) {
		return nil
	}
	return err
}

func (o *PcapOptions) output() (io.Writer, func() error, error) {
	if o.Write == "" {
		return o.Out, func() error { return nil }, nil
	}
	f, err := os.Create(o.Write)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

// ignoreEnd treats the end of the command's context as a normal end.
func ignoreEnd(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// waitCapturing returns once the hub reports a connected worker on every
// node that has one.
func (l *live) waitCapturing(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &workerWaiter{l: l, done: cancel}
	err := l.hub.Subscribe(wctx, wire.FilterNone, w)
	if w.ok {
		return nil
	}
	if err == nil || errors.Is(err, context.Canceled) {
		return ctx.Err()
	}
	return err
}

// workerWaiter is a subscription that only reads stats.
type workerWaiter struct {
	l    *live
	done context.CancelFunc
	ok   bool
}

func (w *workerWaiter) Entry(*entry.Entry) {}
func (w *workerWaiter) Dropped(uint64)     {}
func (w *workerWaiter) Disconnected(error) {}
func (w *workerWaiter) Reconnected(time.Duration) {
}

func (w *workerWaiter) Stats(s wire.SessionStats) {
	want := w.l.sess.WorkerNodes()
	if len(want) == 0 {
		return
	}
	var have []string
	for _, st := range s.Workers {
		have = append(have, st.Node)
	}
	for _, n := range want {
		if !slices.Contains(have, n) {
			return
		}
	}
	w.ok = true
	w.done()
}
