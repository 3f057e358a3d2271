package worker

import (
	"context"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// benchEntries are real entries, named as the IPMap names them.
func benchEntries(b *testing.B) []entry.Entry {
	es := baseline(b, mixedPcap)
	es = append(es, baseline(b, http1Pcap)...)
	m, _ := wire.IPMap{"127.0.0.1": {Pod: "web", Namespace: "shop", Workload: "web"}}.Normalize()
	for i := range es {
		wire.Enrich(&es[i], m)
	}
	return es
}

func avgJSON(es []entry.Entry) int64 {
	n := 0
	for i := range es {
		n += len(render.AppendJSON(nil, &es[i]))
	}
	return int64(n / len(es))
}

// BenchmarkHubLinkRender is the link's cost per entry on a pipeline shard:
// name, filter, encode, batch. A goroutine takes the sealed batches, as
// the write pump does.
func BenchmarkHubLinkRender(b *testing.B) {
	for _, expr := range []string{"", "dst.port == 8080", wire.FilterNone} {
		b.Run("filter="+expr, func(b *testing.B) {
			es := benchEntries(b)
			l, _ := newTestLink(b, "127.0.0.1:1", hubtestCA(b), "tok", func(o *HubOptions) { o.Logf = func(string, ...any) {} })
			l.ipmap.Store(&wire.IPMap{"127.0.0.1": {Pod: "web", Namespace: "shop"}})
			l.setFilter(expr)
			l.connected.Store(true)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case bt := <-l.queue:
						putEntryBatch(bt)
					case <-stop:
						return
					}
				}
			}()
			b.SetBytes(avgJSON(es))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			var dst []byte
			for i := 0; i < b.N; i++ {
				e := es[i%len(es)]
				dst = l.Render(dst[:0], &e)
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			close(stop)
			<-done
			if st := l.Stats(); st.Dropped > 0 {
				b.Logf("%d dropped", st.Dropped)
			}
		})
	}
}

// BenchmarkHubRelay is the whole relay on loopback: entries rendered by
// the link, sent over TLS to a real hub, which decodes them, matches a
// subscriber's filter, re-encodes and sends each to the subscriber. The
// producer waits when the link's queue is full, so the rate measured is
// what the relay sustains, not how fast it can drop.
func BenchmarkHubRelay(b *testing.B) {
	es := benchEntries(b)
	h := startTestHub(b, hub.Options{SubscriberQueue: 8192})
	l, _ := newTestLink(b, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, func(o *HubOptions) { o.Logf = func(string, ...any) {} })
	runLink(b, l, &fakeHubWorker{})
	waitConnected(b, l, 1)
	sub, err := h.Subscribe(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	waitFilter(b, l, "")

	var got, hubDropped atomic.Uint64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go countEntries(ctx, sub, &got, &hubDropped)

	b.SetBytes(avgJSON(es))
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	var dst []byte
	for i := 0; i < b.N; i++ {
		for len(l.queue) == cap(l.queue) {
			runtime.Gosched()
		}
		e := es[i%len(es)]
		dst = l.Render(dst[:0], &e)
	}
	produced := time.Since(start)
	l.bmu.Lock()
	l.sealLocked()
	l.bmu.Unlock()
	want := uint64(b.N) - l.Stats().Dropped
	for l.Stats().Sent < want && time.Since(start) < time.Minute {
		time.Sleep(time.Millisecond)
	}
	sent := time.Since(start)
	deadline := time.Now().Add(time.Minute)
	for got.Load()+hubDropped.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	b.Logf("N=%d produced in %v, sent in %v, received in %v", b.N, produced, sent, elapsed)
	st := l.Stats()
	b.ReportMetric(float64(got.Load())/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(st.Dropped), "worker-drops")
	b.ReportMetric(float64(hubDropped.Load()), "hub-drops")
}

// countEntries counts the subscriber's entries and the hub's drop notices,
// without decoding the entries (the hub's side is what is measured).
func countEntries(ctx context.Context, sub *hubtest.Subscriber, got, dropped *atomic.Uint64) {
	for {
		env, err := sub.Next(ctx)
		if err != nil {
			return
		}
		switch env.Type {
		case wire.TypeEntry:
			got.Add(1)
		case wire.TypeDropped:
			var d wire.Dropped
			if env.Decode(&d) == nil {
				dropped.Add(d.N)
			}
		}
	}
}

// processCPU is the CPU time the process used so far, in nanoseconds:
// on a shared machine it measures the work better than the wall clock.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
