package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// runCluster runs a session and prints the entries its hub streams, until
// Ctrl-C, --duration, or a failure; then it removes the session.
func (o *TapOptions) runCluster(ctx context.Context) error {
	if o.NoRedact {
		return errors.New("--no-redact works with --read only: in a cluster, credentials are redacted on the node")
	}
	l, err := prepare(liveConfig{configFlags: o.configFlags, flags: o.session, args: o.args, errOut: o.ErrOut})
	if err != nil {
		return err
	}
	started := time.Now()
	runCtx, cancel, err := l.begin(ctx)
	defer l.close()
	if err != nil {
		return ignoreDryRun(err)
	}
	defer cancel()
	p := &entryPrinter{out: o.Out, errOut: o.ErrOut, r: o.renderer, cancel: cancel, started: started}
	subErr := make(chan error, 1)
	go func() { subErr <- l.hub.Subscribe(runCtx, o.Filter, p) }()
	select {
	case err = <-subErr:
	case err = <-l.fatal:
		cancel()
		<-subErr
	}
	p.summary(o.Stats)
	switch {
	case p.writeErr != nil:
		if errors.Is(p.writeErr, syscall.EPIPE) {
			return nil
		}
		return p.writeErr
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return nil
	}
	return err
}

// entryPrinter renders the entries of a subscription, and tells the user
// what was lost and when the connection to the hub broke.
type entryPrinter struct {
	out, errOut io.Writer
	r           render.Renderer
	cancel      context.CancelFunc
	started     time.Time

	buf      []byte
	entries  uint64
	dropped  uint64
	writeErr error
	first    bool
	workers  map[string]wire.Stats // latest stats by worker
	warned   map[string]wire.Stats // the stats last warned about
	lastWarn time.Time
}

func (p *entryPrinter) Entry(e *entry.Entry) {
	if p.writeErr != nil {
		return
	}
	if !p.first {
		p.first = true
		fmt.Fprintf(p.errOut, "shark: first entry %.1fs after start\n", time.Since(p.started).Seconds())
	}
	p.entries++
	p.buf = p.r.Append(p.buf[:0], e)
	if _, err := p.out.Write(p.buf); err != nil {
		p.writeErr = err
		p.cancel()
	}
}

func (p *entryPrinter) Dropped(n uint64) {
	p.dropped += n
	fmt.Fprintf(p.errOut, "shark: dropped %d entries: this terminal did not keep up (%d in all)\n", n, p.dropped)
}

// Stats warns, at most every 5 s, when a worker starts losing packets or
// entries.
func (p *entryPrinter) Stats(s wire.SessionStats) {
	if p.workers == nil {
		p.workers, p.warned = map[string]wire.Stats{}, map[string]wire.Stats{}
	}
	for _, w := range s.Workers {
		if _, seen := p.workers[w.Worker]; !seen {
			methods := strings.Join(w.Capture, ", ")
			if methods == "" {
				methods = "unknown"
			}
			fmt.Fprintf(p.errOut, "shark: worker on %s connected, capturing with %s\n", w.Node, methods)
		}
		p.workers[w.Worker] = w
	}
	if time.Since(p.lastWarn) < 5*time.Second {
		return
	}
	for name, w := range p.workers {
		last := p.warned[name]
		if lost := lossOf(w) - lossOf(last); lost > 0 {
			p.lastWarn = time.Now()
			p.warned[name] = w
			fmt.Fprintf(p.errOut, "shark: worker on %s lost data: %d kernel drops, %d queue drops, %d packets not dissected (memory), %d entries not sent\n",
				w.Node, w.KernelDrops, w.QueueDrops, w.ShedPackets, w.EntriesDropped)
		}
	}
}

func lossOf(w wire.Stats) uint64 {
	return w.KernelDrops + w.QueueDrops + w.ShedPackets + w.EntriesDropped
}

func (p *entryPrinter) Disconnected(err error) {
	fmt.Fprintf(p.errOut, "shark: lost the connection to the hub (%v); reconnecting\n", err)
}

func (p *entryPrinter) Reconnected(down time.Duration) {
	fmt.Fprintf(p.errOut, "shark: reconnected to the hub after %.1fs\n", down.Seconds())
}

// summary says what the session showed and lost, when asked or when
// something was lost.
func (p *entryPrinter) summary(always bool) {
	var lost uint64
	var packets uint64
	for _, w := range p.workers {
		lost += lossOf(w)
		packets += w.Packets
	}
	if !always && lost == 0 && p.dropped == 0 {
		return
	}
	fmt.Fprintf(p.errOut, "shark: %d entries shown, %d dropped by the hub; workers captured %d packets and lost %d (packets and entries)\n",
		p.entries, p.dropped, packets, lost)
}
