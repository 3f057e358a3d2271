package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Options configure a Tracer.
type Options struct {
	// RingBytes sizes the ring buffer events cross to user space: a power
	// of two, at least a page. 0 means DefaultRingBytes.
	RingBytes int
	// ProcRoot is the host's proc file system; "" means /proc.
	ProcRoot string
	// Logf receives one-line notices (probes attached); nil drops them.
	Logf func(format string, args ...any)
}

// DefaultRingBytes is the default ring size: at full 16 KiB events, about
// 500 calls in flight before the kernel side counts drops.
const DefaultRingBytes = 8 << 20

func (o Options) withDefaults() Options {
	if o.RingBytes <= 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Tracer loads the TLS uprobe programs, attaches them to the TLS libraries
// and Go binaries of the processes it is asked to scan, and reads their
// events. Read runs on one goroutine; the other methods are safe for
// concurrent use.
type Tracer struct {
	opts Options
	objs tlsObjects
	sys  link.Link
	rd   *ringbuf.Reader
	boot time.Time // wall time of CLOCK_MONOTONIC zero

	mu     sync.Mutex // guards files, netns and closed
	files  map[fileKey]*probedFile
	netns  map[uint32]bool
	closed bool

	rec          ringbuf.Record // owned by Read
	resolver     *tupleResolver // owned by Read
	decodeErrors atomic.Uint64
	resolved     atomic.Uint64
	noTuple      atomic.Uint64
}

// New checks that this kernel and these privileges can trace TLS, loads
// the programs and starts tracing no namespace: call SetNetns (or
// TraceAllNetns), then Scan. A failure wraps ErrUnavailable and says why
// in one line.
func New(opts Options) (*Tracer, error) {
	opts = opts.withDefaults()
	if err := probe(); err != nil {
		return nil, err
	}
	spec, err := loadTls()
	if err != nil {
		return nil, unavailable("reading the BPF objects", err)
	}
	spec.Maps["events"].MaxEntries = uint32(opts.RingBytes)
	if err := spec.Variables["wakeup_bytes"].Set(uint64(opts.RingBytes / 4)); err != nil {
		return nil, unavailable("configuring the BPF objects", err)
	}
	t := &Tracer{opts: opts, files: map[fileKey]*probedFile{}, netns: map[uint32]bool{}}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		return nil, loadError(err)
	}
	if err := t.setFilter(true); err != nil {
		t.objs.Close()
		return nil, unavailable("configuring the BPF maps", err)
	}
	t.sys, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: t.objs.SysEnter})
	if err != nil {
		t.objs.Close()
		return nil, unavailable("attaching the sys_enter raw tracepoint", err)
	}
	t.rd, err = ringbuf.NewReader(t.objs.Events)
	if err != nil {
		t.sys.Close()
		t.objs.Close()
		return nil, unavailable("opening the ring buffer", err)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		t.boot = time.Now().Add(-time.Duration(ts.Nano()))
	}
	t.resolver = newTupleResolver(opts.ProcRoot)
	return t, nil
}

// ErrUnavailable is wrapped by every error of New: TLS tracing cannot run
// here, and capture goes on without it.
var ErrUnavailable = errors.New("eBPF TLS tracing unavailable")

// UnavailableError says why tracing cannot run.
type UnavailableError struct {
	Reason string
	Err    error
}

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

func unavailable(reason string, err error) error { return &UnavailableError{Reason: reason, Err: err} }

// probe checks each requirement in turn, so the reason names the first
// one missing.
func probe() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return permissionOr("cannot lift the memlock limit", err)
	}
	if _, err := btf.LoadKernelSpec(); err != nil {
		return unavailable("the kernel has no BTF (/sys/kernel/btf/vmlinux)", err)
	}
	checks := []struct {
		what string
		err  func() error
	}{
		{"kprobe/uprobe programs", func() error { return features.HaveProgramType(ebpf.Kprobe) }},
		{"raw tracepoint programs", func() error { return features.HaveProgramType(ebpf.RawTracepoint) }},
		{"ring buffer maps", func() error { return features.HaveMapType(ebpf.RingBuf) }},
	}
	for _, c := range checks {
		if err := c.err(); err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				return unavailable("the kernel lacks "+c.what, err)
			}
			return permissionOr("probing "+c.what, err)
		}
	}
	if !uprobeSupport() {
		return unavailable("the kernel has no uprobe support (no uprobe PMU, no tracefs uprobe_events)", nil)
	}
	return nil
}

func permissionOr(reason string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return unavailable("no permission to load BPF programs (needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)", err)
	}
	return unavailable(reason, err)
}

func uprobeSupport() bool {
	for _, p := range []string{
		"/sys/bus/event_source/devices/uprobe/type",
		"/sys/kernel/tracing/uprobe_events",
		"/sys/kernel/debug/tracing/uprobe_events",
	} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// loadError turns a load failure into one line: a verifier log is cut to
// its last lines, which say what was rejected.
func loadError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		log := ve.Log
		if len(log) > 4 {
			log = log[len(log)-4:]
		}
		return unavailable("the verifier rejected the programs", fmt.Errorf("%s", strings.Join(log, " | ")))
	}
	return permissionOr("loading the BPF programs", err)
}

// SetNetns traces only the processes of these network namespaces (inode
// numbers); an empty set traces none.
func (t *Tracer) SetNetns(inos []uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	want := make(map[uint32]bool, len(inos))
	for _, ino := range inos {
		want[uint32(ino)] = true
	}
	one := uint8(1)
	for ino := range want {
		if !t.netns[ino] {
			if err := t.objs.NetnsFilter.Put(ino, one); err != nil {
				return fmt.Errorf("tracer: netns filter: %w", err)
			}
		}
	}
	for ino := range t.netns {
		if !want[ino] {
			t.objs.NetnsFilter.Delete(ino)
		}
	}
	t.netns = want
	return t.setFilter(true)
}

// TraceAllNetns traces the processes of every namespace.
func (t *Tracer) TraceAllNetns() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.netns = nil
	return t.setFilter(false)
}

func (t *Tracer) setFilter(on bool) error {
	s := tlsSettings{}
	if on {
		s.FilterNetns = 1
	}
	return t.objs.Config.Put(uint32(0), s)
}

// wantsNetns reports whether processes of namespace ino are traced.
func (t *Tracer) wantsNetns(ino uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.netns == nil || t.netns[ino]
}

// Read waits for the next event and decodes it into ev; ev.Data is valid
// until the next call. The kernel side wakes the reader only when a
// quarter of the ring is waiting, so callers set a deadline (tens of
// milliseconds) to collect events promptly. Events whose socket the kernel side could not
// resolve get their ends from /proc. It returns os.ErrDeadlineExceeded
// after a SetDeadline, and ErrClosed once the tracer is closed.
func (t *Tracer) Read(ev *Event) error {
	for {
		if err := t.rd.ReadInto(&t.rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return ErrClosed
			}
			return err
		}
		if err := ev.Decode(t.rec.RawSample); err != nil {
			t.decodeErrors.Add(1)
			continue
		}
		if !ev.HasTuple() && ev.FD >= 0 {
			if t.resolver.resolve(ev) {
				t.resolved.Add(1)
			}
		}
		if !ev.HasTuple() {
			t.noTuple.Add(1)
		}
		return nil
	}
}

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("tracer: closed")

// SetDeadline makes a waiting Read return os.ErrDeadlineExceeded at tm;
// the zero time waits forever.
func (t *Tracer) SetDeadline(tm time.Time) { t.rd.SetDeadline(tm) }

// Time converts an event's monotonic time to wall time.
func (t *Tracer) Time(mono uint64) time.Time { return t.boot.Add(time.Duration(mono)) }

// Stats count what the tracer saw and lost.
type Stats struct {
	Events         uint64 // events the kernel side wrote
	RingFull       uint64 // events lost to a full ring
	TruncatedBytes uint64 // plaintext past MaxChunks*MaxData per call, not copied
	ReadFaults     uint64 // calls whose buffer could not be read
	NoFD           uint64 // events whose socket was never seen
	CallsFull      uint64 // calls not followed: in-flight table full
	DecodeErrors   uint64
	ResolvedByProc uint64 // events whose ends came from /proc
	NoTuple        uint64 // events with no known ends
	Binaries       int    // files with probes attached
}

// Stats returns the counters so far.
func (t *Tracer) Stats() Stats {
	var st Stats
	vals := []*uint64{&st.Events, &st.RingFull, &st.TruncatedBytes, &st.ReadFaults, &st.NoFD, &st.CallsFull}
	for i, v := range vals {
		var perCPU []uint64
		if err := t.objs.Counters.Lookup(uint32(i), &perCPU); err == nil {
			for _, n := range perCPU {
				*v += n
			}
		}
	}
	st.DecodeErrors = t.decodeErrors.Load()
	st.ResolvedByProc = t.resolved.Load()
	st.NoTuple = t.noTuple.Load()
	t.mu.Lock()
	for _, b := range t.files {
		if len(b.links) > 0 {
			st.Binaries++
		}
	}
	t.mu.Unlock()
	return st
}

// Close detaches every probe and unblocks Read.
func (t *Tracer) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for _, b := range t.files {
		b.close()
	}
	t.mu.Unlock()
	t.sys.Close()
	err := t.rd.Close()
	t.objs.Close()
	return err
}
