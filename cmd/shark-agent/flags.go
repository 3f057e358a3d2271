//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
	"github.com/kubectl-shark/kubectl-shark/pkg/worker"
)

// byteSize is a flag value in bytes that takes suffixes: 200MB, 64Mi, 1G.
type byteSize int64

func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{40, "Ti"}, {30, "Gi"}, {20, "Mi"}, {10, "Ki"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
func (b *byteSize) Type() string { return "size" }

func (b *byteSize) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

// parseSize reads a byte count with an optional K, M, G or T suffix
// (powers of 1024; Ki, KB, KiB alike).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	u := strings.ToUpper(t)
	u = strings.TrimSuffix(strings.TrimSuffix(u, "B"), "I")
	mult := int64(1)
	if u != "" {
		switch u[len(u)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			u = u[:len(u)-1]
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(u), 64)
	if err != nil || !(n >= 0 && n*float64(mult) <= 1<<62) { // also refuses NaN
		return 0, fmt.Errorf("bad size %q (want bytes, or a number with K, M, G, T)", s)
	}
	return int64(n * float64(mult)), nil
}

// captureFlags configure the AF_PACKET sockets.
type captureFlags struct {
	RingSize     byteSize
	BlockSize    byteSize
	BlockTimeout time.Duration
	SnapLen      int
	BPF          string
	BPFRaw       string
}

func newCaptureFlags() captureFlags {
	return captureFlags{
		RingSize:     afpacket.DefaultRingSize,
		BlockSize:    afpacket.DefaultBlockSize,
		BlockTimeout: afpacket.DefaultBlockTimeout,
		SnapLen:      afpacket.DefaultSnapLen,
	}
}

func (c *captureFlags) add(fs *pflag.FlagSet) {
	fs.Var(&c.RingSize, "ring-size", "kernel ring per network namespace, absorbs bursts while the reader is busy (kernel memory, outside --max-memory)")
	fs.Var(&c.BlockSize, "ring-block-size", "ring block size: a power of two of at least 64Ki")
	fs.DurationVar(&c.BlockTimeout, "ring-block-timeout", c.BlockTimeout, "the kernel hands a ring block over when it is full or this long after its first packet: longer means fewer wake-ups, later entries")
	fs.IntVar(&c.SnapLen, "snaplen", c.SnapLen, "bytes kept of each packet, from its IP header")
	fs.StringVar(&c.BPF, "bpf", c.BPF, `kernel packet filter, a tcpdump subset: host, net, port, portrange, src/dst, tcp, udp, icmp, ip, ip6, and/or/not (e.g. "tcp port 80 and not host 10.0.0.1")`)
	fs.StringVar(&c.BPFRaw, "bpf-raw", c.BPFRaw, "kernel packet filter as a classic BPF program in `tcpdump -ddd` form (newlines or commas), for packets that start at the IP header; @FILE reads it from a file")
}

func (c *captureFlags) options() (afpacket.Options, error) {
	o := afpacket.Options{
		RingSize:     int(c.RingSize),
		BlockSize:    int(c.BlockSize),
		BlockTimeout: c.BlockTimeout,
		SnapLen:      c.SnapLen,
		Filter:       c.BPF,
	}
	if c.BPFRaw != "" {
		if c.BPF != "" {
			return o, errors.New("--bpf and --bpf-raw cannot be used together")
		}
		text := c.BPFRaw
		if name, ok := strings.CutPrefix(text, "@"); ok {
			b, err := os.ReadFile(name)
			if err != nil {
				return o, fmt.Errorf("--bpf-raw: %w", err)
			}
			text = string(b)
		}
		prog, err := afpacket.ParseRawFilter(text)
		if err != nil {
			return o, fmt.Errorf("--bpf-raw: %w", err)
		}
		o.RawFilter = prog
	}
	if c.SnapLen < 64 {
		return o, fmt.Errorf("--snaplen must be at least 64, got %d", c.SnapLen)
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// outputFlags choose how entries are filtered and shown, as in `tap`.
type outputFlags struct {
	Filter   string
	Output   string
	Template string
	Color    string
	MaxBody  int
	NoRedact bool

	filter   *filter.Filter
	renderer render.Renderer
}

func newOutputFlags(format string) outputFlags {
	return outputFlags{Output: format, Color: "auto", MaxBody: dissect.DefaultOptions().MaxBody}
}

func (o *outputFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&o.Filter, "filter", o.Filter, `CEL expression over entries, e.g. 'proto == "http" && int(status) >= 500'`)
	fs.StringVarP(&o.Output, "output", "o", o.Output, "output format: line, wide, json")
	fs.StringVar(&o.Template, "template", o.Template, "Go template for each entry (implies -o template)")
	fs.StringVar(&o.Color, "color", o.Color, "colors: auto, always, never")
	fs.IntVar(&o.MaxBody, "max-body", o.MaxBody, "bytes of each body kept in an entry (the true size is always shown)")
	fs.BoolVar(&o.NoRedact, "no-redact", o.NoRedact, "show credentials (Authorization, cookies, passwords) instead of redacting them")
}

// validate compiles the filter and builds the renderer for out.
func (o *outputFlags) validate(out io.Writer) error {
	if o.Template != "" {
		o.Output = string(render.FormatTemplate)
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
	isTTY := false
	if f, ok := out.(*os.File); ok {
		isTTY = term.IsTerminal(int(f.Fd()))
	}
	r, err := render.New(render.Options{
		Format: render.Format(o.Output), Template: o.Template, Color: render.ColorMode(o.Color), IsTTY: isTTY,
		NoHeaders: true,
	})
	if err != nil {
		return err
	}
	o.renderer = r
	return nil
}

func (o *outputFlags) dissect() dissect.Options {
	d := dissect.DefaultOptions()
	d.MaxBody = o.MaxBody
	d.Redact = !o.NoRedact
	return d
}

func (o *outputFlags) render() pipeline.RenderFunc {
	return func(dst []byte, e *entry.Entry) []byte {
		if o.filter != nil && !o.filter.Match(e) {
			return dst
		}
		return o.renderer.Append(dst, e)
	}
}

// printStats summarises a run on w; with all false it prints only when
// something was lost.
func printStats(w io.Writer, st worker.Stats, all bool) {
	lost := st.KernelDrops + st.CorruptLost + st.DissectDrops + st.SinkDrops + st.ShedPackets + st.BehindPackets
	if !all && lost == 0 && st.Assemble.Gaps == 0 {
		return
	}
	var entries uint64
	for _, n := range st.Entries {
		entries += n
	}
	fmt.Fprintf(w, "%d packets captured (%d bytes), %d dropped by the kernel (ring full, %d freezes), %d not dissected (queue full), %d not dissected (memory), %d not dissected (capture behind), %d not stored (queue full); %d TCP and %d UDP flows, %d TCP gaps; %d entries; %d packets of unclaimed flows summarised\n",
		st.Packets, st.Bytes, st.KernelDrops, st.RingFreezes, st.DissectDrops, st.ShedPackets, st.BehindPackets, st.SinkDrops,
		st.Assemble.TCPFlows, st.Assemble.UDPFlows, st.Assemble.Gaps, entries, st.Summarised)
	if st.CorruptLost > 0 {
		fmt.Fprintf(w, "%d packets lost in capture ring blocks whose layout was inconsistent\n", st.CorruptLost)
	}
}
