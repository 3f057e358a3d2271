package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// smallBuffers dials with a tiny receive buffer, so that a client that
// does not read pushes back on the hub quickly.
func smallBuffers(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return d.DialContext(ctx, network, addr)
}

// smallSendBuffers accepts connections with a tiny send buffer (which
// also turns off its autotuning), so that the hub feels a client that
// does not read after a few entries.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSlowSubscriber checks that a subscriber that does not keep up loses
// entries, is told exactly how many, and never slows down another one.
func TestSlowSubscriber(t *testing.T) {
	ctx := testCtx(t)
	opts := hub.NewOptions()
	opts.SubscriberQueue = 32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.APIListener = smallSendBuffers{l}
	h := hubtest.Start(t, opts)
	w := dialWorker(ctx, t, h, "n1", "w1")
	fast, err := h.Subscribe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	slow, err := hubtest.Subscribe(ctx, h.APIAddr, h.PKI.Token, "", &hubtest.SubscribeOptions{Dial: smallBuffers, Queue: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitFilter(ctx, ""); err != nil {
		t.Fatal(err)
	}

	// The slow subscriber reads one entry every 20ms (not stalled: the hub
	// would cut off a client that takes no write for 10s) until the worker
	// is done, then reads the rest: what it gets plus what it is told it
	// lost must be everything, in order.
	const total, batch = 1200, 30
	var finished atomic.Bool
	type result struct {
		got, dropped uint64
		err          error
	}
	slowDone := make(chan result, 1)
	go func() {
		var r result
		last := -1
		for r.got+r.dropped < total {
			e, err := slow.NextEntry(ctx, &r.dropped)
			if err != nil {
				r.err = err
				break
			}
			id, _ := strconv.Atoi(e.ID)
			if id <= last {
				r.err = fmt.Errorf("entry %d after %d", id, last)
				break
			}
			last = id
			r.got++
			if !finished.Load() {
				time.Sleep(20 * time.Millisecond)
			}
		}
		slowDone <- r
	}()

	// Entries of about 2 KiB, in batches the fast subscriber's queue holds:
	// the worker sends the next batch once the fast one has the last.
	body := strings.Repeat("x", 2000)
	for i := 0; i < total; i += batch {
		es := make([]entry.Entry, batch)
		for j := range es {
			es[j] = httpEntry(strconv.Itoa(i+j), "10.0.0.1", "10.0.0.2")
			es[j].HTTP.Response.Body = entry.Body{Size: 2000, Data: body}
		}
		if err := w.SendEntries(es); err != nil {
			t.Fatal(err)
		}
		for j := range batch {
			var dropped uint64
			e, err := fast.NextEntry(ctx, &dropped)
			if err != nil {
				t.Fatal(err)
			}
			if dropped != 0 || e.ID != strconv.Itoa(i+j) {
				t.Fatalf("fast subscriber: entry %s after %d dropped, want entry %d and no drop", e.ID, dropped, i+j)
			}
		}
	}
	finished.Store(true)
	r := <-slowDone
	got, dropped := r.got, r.dropped
	if r.err != nil || got+dropped != total || dropped == 0 {
		t.Fatalf("slow subscriber got %d and was told of %d drops (%v), want %d in all with some drops", got, dropped, r.err, total)
	}
	t.Logf("slow subscriber: %d entries, %d dropped", got, dropped)
	if v := metric(ctx, t, h, "shark_hub_entries_dropped_total"); v != strconv.FormatUint(dropped, 10) {
		t.Errorf("shark_hub_entries_dropped_total = %s, want %d", v, dropped)
	}
	if v := metric(ctx, t, h, `shark_hub_subscriber_dropped_total{subscriber="1"}`); v != "0" {
		t.Errorf("fast subscriber's drops = %s, want 0", v)
	}
}

// selfDeleteRecorder is a SelfDelete func that records its calls and
// fails the first failures of them.
type selfDeleteRecorder struct {
	calls    chan time.Time
	failures atomic.Int32
}

func newRecorder(failures int32) *selfDeleteRecorder {
	r := &selfDeleteRecorder{calls: make(chan time.Time, 16)}
	r.failures.Store(failures)
	return r
}

func (r *selfDeleteRecorder) delete(ctx context.Context) error {
	r.calls <- time.Now()
	if r.failures.Add(-1) >= 0 {
		return errors.New("forbidden")
	}
	return nil
}

// TestIdleTimeout checks that the hub deletes its session when no client
// sends heartbeats for the idle timeout, that heartbeats (requests and
// subscription messages, not worker traffic) prevent it, and that a failed
// deletion is retried.
func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	ctx := testCtx(t)
	rec := newRecorder(0)
	opts := hub.NewOptions()
	opts.IdleTimeout = idle
	opts.SelfDelete = rec.delete
	h := hubtest.Start(t, opts)
	noCall := func(what string, d time.Duration) {
		t.Helper()
		select {
		case at := <-rec.calls:
			t.Fatalf("%s: self-delete called at %v", what, at)
		case <-time.After(d):
		}
	}
	// POST /v1/heartbeat, for four idle timeouts.
	for range 24 {
		if code, _ := do(ctx, t, h, http.MethodPost, wire.PathHeartbeat, nil); code != http.StatusNoContent {
			t.Fatalf("heartbeat: HTTP %d", code)
		}
		noCall("while posting heartbeats", idle/6)
	}
	// Heartbeat messages of a subscription.
	s, err := h.Subscribe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 24 {
		if err := s.Heartbeat(); err != nil {
			t.Fatal(err)
		}
		noCall("while a subscriber sends heartbeats", idle/6)
	}
	// Silence, but for a worker that keeps sending: the session goes. The
	// subscriber beats on while the worker dials: on a busy machine that
	// took longer than the idle timeout, and the session went first.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(idle / 6):
				s.Heartbeat() // the last beat, below, is the one checked
			}
		}
	}()
	w := dialWorker(ctx, t, h, "n1", "w1")
	close(stop)
	<-stopped
	lastBeat := time.Now()
	if err := s.Heartbeat(); err != nil {
		t.Fatal(err)
	}
	for {
		if err := w.Send(wire.TypeStats, wire.Stats{}); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-rec.calls:
			if d := at.Sub(lastBeat); d < idle || d > idle+time.Second {
				t.Errorf("self-delete %v after the last heartbeat, want just over %v", d, idle)
			}
			noCall("after a successful self-delete", 3*idle)
			return
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("self-delete never called")
		}
	}
}

func TestIdleTimeoutRetries(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder(1)
	opts := hub.NewOptions()
	opts.IdleTimeout = 100 * time.Millisecond
	opts.SelfDelete = rec.delete
	h := hubtest.Start(t, opts)
	var first time.Time
	for i := range 2 {
		select {
		case at := <-rec.calls:
			if i == 0 {
				first = at
			} else if d := at.Sub(first); d < 900*time.Millisecond || d > 3*time.Second {
				t.Errorf("retry %v after the failure, want about a second", d)
			}
		case <-ctx.Done():
			t.Fatalf("self-delete called %d times", i)
		}
	}
	eventually(ctx, t, "metrics", func() bool {
		return metric(ctx, t, h, `shark_hub_self_deletes_total{result="error"}`) == "1" &&
			metric(ctx, t, h, `shark_hub_self_deletes_total{result="ok"}`) == "1"
	})
}

// TestLimits checks the bounds on connections.
func TestLimits(t *testing.T) {
	ctx := testCtx(t)
	opts := hub.NewOptions()
	opts.MaxSubscribers = 1
	opts.MaxWorkers = 1
	h := hubtest.Start(t, opts)
	if _, err := h.Subscribe(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe(ctx, ""); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("second subscriber: %v, want HTTP 503", err)
	}
	w := dialWorker(ctx, t, h, "n1", "w1")
	w2 := dialWorker(ctx, t, h, "n2", "w2")
	if err := w2.Expect(ctx, "never", nil); err == nil || !strings.Contains(err.Error(), "too many workers") {
		t.Errorf("second worker: %v, want closed for too many workers", err)
	}
	if err := w.Expect(ctx, wire.TypeFilter, nil); err != nil {
		t.Errorf("first worker: %v", err)
	}
}

func ExampleRun() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := hub.NewOptions()
	opts.CertFile, opts.KeyFile = "/etc/shark/tls/hub.crt", "/etc/shark/tls/hub.key"
	opts.TokenFile = "/etc/shark/tls/token"
	opts.SessionID, opts.Namespace = "ab12cd", "shark-ab12cd"
	if del, err := hub.DeleteNamespace(opts.Namespace); err == nil {
		opts.SelfDelete = del
	}
	if err := hub.Run(ctx, opts); err != nil {
		fmt.Println(err)
	}
}
