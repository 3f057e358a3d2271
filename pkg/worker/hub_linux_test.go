package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/all"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// These tests run the real hub (pkg/hub) in-process on loopback, a real
// HubLink against it, and real subscribers; entries come from the offline
// pipeline over recorded captures, as the worker's pipeline makes them.

const (
	http1Pcap = "../../testdata/http1.pcap"
	mixedPcap = "../../testdata/mixed.pcapng"
	// http1Exchanges is the number of HTTP exchanges in http1.pcap (its
	// expected.json).
	http1Exchanges = 106
)

// fakeHubWorker records what the link sets and serves fixed stats.
type fakeHubWorker struct {
	mu      sync.Mutex
	targets []Target
	sets    int
	stats   wire.Stats
}

func (f *fakeHubWorker) SetTargets(ts []Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = slices.Clone(ts)
	f.sets++
	return nil
}

func (f *fakeHubWorker) HubStats() wire.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *fakeHubWorker) current() ([]Target, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.targets), f.sets
}

// logLines collects the link's notices.
type logLines struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.t.Log(s)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (l *logLines) count(sub string) int {
	n := 0
	for _, s := range l.all() {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func startTestHub(t testing.TB, opts hub.Options) *hubtest.Hub {
	t.Helper()
	if opts.StatsInterval == 0 {
		opts.StatsInterval = 100 * time.Millisecond
	}
	if opts.Logger == nil && !testing.Verbose() {
		opts.Logger = discardLogger()
	}
	return hubtest.Start(t, opts)
}

func newTestLink(t testing.TB, addr string, caPEM []byte, token string, mod func(*HubOptions)) (*HubLink, *logLines) {
	t.Helper()
	tlsConf, err := wire.WorkerTLSConfig(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logLines{t: t}
	o := HubOptions{
		Addr: addr, TLS: tlsConf, Token: token,
		Hello:         wire.Hello{Node: "node-1", Worker: "worker-1", Sources: []string{entry.SourceAFPacket}, Version: "test"},
		StatsInterval: 100 * time.Millisecond,
		Logf:          logs.logf,
	}
	if mod != nil {
		mod(&o)
	}
	l, err := NewHubLink(o)
	if err != nil {
		t.Fatal(err)
	}
	return l, logs
}

// runLink runs the link until the test ends, when Run must return nil
// promptly.
func runLink(t testing.TB, l *HubLink, w HubWorker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, w) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("HubLink.Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("HubLink.Run did not return within 10s of its context ending")
		}
	})
}

func waitConnected(t testing.TB, l *HubLink, connects uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for st := l.Stats(); !st.Connected || st.Connects < connects; st = l.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the link did not connect (%d times) within 5s: %+v", connects, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitFilter(t testing.TB, l *HubLink, expr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.Filter() != expr {
		if time.Now().After(deadline) {
			t.Fatalf("filter %q did not reach the worker within 5s (has %q)", expr, l.Filter())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replay dissects a capture through render, as the worker's pipeline does.
func replay(t testing.TB, path string, render pipeline.RenderFunc) {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d := dissect.DefaultOptions()
	d.Source = entry.SourceAFPacket
	if _, err := pipeline.Run(context.Background(), src, io.Discard, pipeline.Options{
		Registry: all.Registry(d), Render: render, Shards: 2,
	}); err != nil {
		t.Fatal(err)
	}
}

// baseline returns the entries of a capture, unfiltered and unnamed.
func baseline(t testing.TB, path string) []entry.Entry {
	t.Helper()
	var mu sync.Mutex
	var out []entry.Entry
	replay(t, path, func(dst []byte, e *entry.Entry) []byte {
		var c entry.Entry
		if err := json.Unmarshal(render.AppendJSON(nil, e), &c); err != nil {
			t.Error(err)
		}
		mu.Lock()
		out = append(out, c)
		mu.Unlock()
		return dst
	})
	return out
}

// receive reads n entries from sub, then checks that no more come within
// quiet.
func receive(t testing.TB, sub *hubtest.Subscriber, n int, quiet time.Duration) []entry.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []entry.Entry
	var dropped uint64
	for len(out) < n {
		e, err := sub.NextEntry(ctx, &dropped)
		if err != nil {
			t.Fatalf("after %d of %d entries: %v", len(out), n, err)
		}
		out = append(out, e)
	}
	if dropped > 0 {
		t.Errorf("the hub dropped %d entries for the subscriber", dropped)
	}
	if quiet > 0 {
		qctx, qcancel := context.WithTimeout(context.Background(), quiet)
		defer qcancel()
		if e, err := sub.NextEntry(qctx, &dropped); err == nil {
			t.Errorf("one entry more than the %d expected: %s %s %s", n, e.Proto, e.Method, e.Path)
		}
	}
	return out
}

type exchange struct {
	Proto, Method, Path, Status string
}

func exchanges(es []entry.Entry) []exchange {
	out := make([]exchange, 0, len(es))
	for _, e := range es {
		out = append(out, exchange{e.Proto, e.Method, e.Path, e.Status})
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func postTargets(t testing.TB, h *hubtest.Hub, tg wire.Targets) {
	t.Helper()
	body, err := json.Marshal(tg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Do(context.Background(), http.MethodPost, wire.PathTargets, nil, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST targets: %s: %s", resp.Status, b)
	}
}

const (
	uidWeb   = "0a1b2c3d-0000-4000-8000-00000000000a"
	uidOther = "0a1b2c3d-0000-4000-8000-00000000000b"
)

// TestHubLinkEntries: the hub's targets reach the worker (those of its
// node only), and entries reach a subscriber named from the IPMap. The
// subscriber's filter is on pod names: the worker must name the ends
// before it filters, or it would send nothing.
func TestHubLinkEntries(t *testing.T) {
	h := startTestHub(t, hub.Options{})
	fw := &fakeHubWorker{}
	l, _ := newTestLink(t, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, nil)
	runLink(t, l, fw)
	waitConnected(t, l, 1)

	postTargets(t, h, wire.Targets{
		Targets: []wire.Target{
			{UID: uidWeb, Namespace: "shop", Name: "web", IPs: []string{"127.0.0.1"}, Node: "node-1"},
			{UID: uidOther, Namespace: "shop", Name: "db", Node: "node-2"},
		},
		IPMap: wire.IPMap{"127.0.0.1": {Pod: "web", Namespace: "shop", Workload: "web", Service: "web-svc"}},
	})
	waitFor(t, 5*time.Second, "targets", func() bool { ts, _ := fw.current(); return len(ts) > 0 })
	got, _ := fw.current()
	want := []Target{{UID: uidWeb, Namespace: "shop", Name: "web", IPs: parseAddrs("127.0.0.1")}}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}

	const expr = `src.pod == "web" && dst.service == "web-svc" && proto == "http"`
	sub, err := h.Subscribe(context.Background(), expr)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitFilter(t, l, expr)

	replay(t, http1Pcap, l.Render)
	es := receive(t, sub, http1Exchanges, 300*time.Millisecond)
	for _, e := range es {
		if e.Src.Pod != "web" || e.Src.Namespace != "shop" || e.Dst.Workload != "web" || e.Dst.Service != "web-svc" {
			t.Fatalf("entry not named from the IPMap: src %+v dst %+v", e.Src, e.Dst)
		}
	}
	var wantEx []entry.Entry
	for _, e := range baseline(t, http1Pcap) {
		if e.Proto == entry.ProtoHTTP {
			wantEx = append(wantEx, e)
		}
	}
	if diff := cmp.Diff(exchanges(wantEx), exchanges(es)); diff != "" {
		t.Errorf("exchanges (-want +got):\n%s", diff)
	}
	st := l.Stats()
	if st.Sent != http1Exchanges || st.Dropped != 0 {
		t.Errorf("link stats %+v, want %d sent and none dropped", st, http1Exchanges)
	}
}

func parseAddrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestHubLinkFilterPushDown: with a subscriber filter dst.port == 8080,
// only such entries cross the wire: the worker sends exactly those, and
// the hub receives exactly those.
func TestHubLinkFilterPushDown(t *testing.T) {
	h := startTestHub(t, hub.Options{})
	l, _ := newTestLink(t, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, nil)
	runLink(t, l, &fakeHubWorker{})
	waitConnected(t, l, 1)

	all := baseline(t, mixedPcap)
	var want []entry.Entry
	for _, e := range all {
		if e.Dst.Port == 8080 {
			want = append(want, e)
		}
	}
	if len(want) == 0 || len(want) == len(all) {
		t.Fatalf("%d of %d entries to port 8080: the capture does not test a filter", len(want), len(all))
	}

	// Nothing is sent while no one subscribes.
	replay(t, mixedPcap, l.Render)
	if st := l.Stats(); st.Sent != 0 || st.Filtered != uint64(len(all)) {
		t.Fatalf("without subscribers: %+v, want 0 sent and %d filtered", st, len(all))
	}

	const expr = `dst.port == 8080`
	sub, err := h.Subscribe(context.Background(), expr)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitFilter(t, l, expr)
	replay(t, mixedPcap, l.Render)
	got := receive(t, sub, len(want), 300*time.Millisecond)
	if diff := cmp.Diff(exchanges(want), exchanges(got)); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	st := l.Stats()
	if st.Sent != uint64(len(want)) || st.Filtered != uint64(2*len(all)-len(want)) || st.Dropped != 0 {
		t.Errorf("link stats %+v: want %d sent, %d filtered", st, len(want), 2*len(all)-len(want))
	}
	// The hub counts what it received from workers.
	var ss wire.SessionStats
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ss.Hub.EntriesIn != uint64(len(want)) {
		if err := sub.Expect(ctx, wire.TypeStats, &ss); err != nil {
			t.Fatalf("hub entries_in %d, want %d: %v", ss.Hub.EntriesIn, len(want), err)
		}
	}
	t.Logf("%d of %d entries crossed the wire", len(want), len(all))
}

// TestHubLinkStats: the worker's counters reach subscribers, with the
// link's own drop count, under the worker's names.
func TestHubLinkStats(t *testing.T) {
	h := startTestHub(t, hub.Options{})
	fw := &fakeHubWorker{stats: wire.Stats{Packets: 1234, Bytes: 56789, KernelDrops: 3, Entries: 42, Sources: 2, Targets: 3}}
	l, _ := newTestLink(t, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, nil)
	l.dropped.Store(7)
	runLink(t, l, fw)
	waitConnected(t, l, 1)
	sub, err := h.Subscribe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ss wire.SessionStats
	for len(ss.Workers) == 0 || ss.Workers[0].Packets == 0 {
		if err := sub.Expect(ctx, wire.TypeStats, &ss); err != nil {
			t.Fatal(err)
		}
	}
	got := ss.Workers[0]
	got.Time = time.Time{}
	want := wire.Stats{Node: "node-1", Worker: "worker-1", Packets: 1234, Bytes: 56789, KernelDrops: 3,
		Entries: 42, EntriesDropped: 7, Sources: 2, Targets: 3, Capture: []string{entry.SourceAFPacket}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// TestHubLinkWrongCA: a hub whose certificate the session CA did not sign
// is refused, with one line of log however many attempts.
func TestHubLinkWrongCA(t *testing.T) {
	h := startTestHub(t, hub.Options{})
	other := hubtest.NewPKI(t)
	l, logs := newTestLink(t, h.WorkerAddr, other.CACert, h.PKI.Token, func(o *HubOptions) {
		o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 30*time.Millisecond
	})
	runLink(t, l, &fakeHubWorker{})
	waitFor(t, 5*time.Second, "five failed attempts", func() bool { return l.Stats().Failures >= 5 })
	if st := l.Stats(); st.Connects != 0 {
		t.Errorf("connected to a hub the CA did not sign: %+v", st)
	}
	lines := logs.all()
	if len(lines) != 1 || !strings.Contains(lines[0], "certificate signed by unknown authority") {
		t.Errorf("log lines %q, want one about the certificate", lines)
	}
}

// TestHubLinkWrongToken: the hub refuses a wrong token with a 401, which
// the worker logs once.
func TestHubLinkWrongToken(t *testing.T) {
	h := startTestHub(t, hub.Options{})
	l, logs := newTestLink(t, h.WorkerAddr, h.PKI.CACert, "not-the-token", func(o *HubOptions) {
		o.MinBackoff, o.MaxBackoff = 10*time.Millisecond, 30*time.Millisecond
	})
	runLink(t, l, &fakeHubWorker{})
	waitFor(t, 5*time.Second, "five failed attempts", func() bool { return l.Stats().Failures >= 5 })
	if st := l.Stats(); st.Connects != 0 {
		t.Errorf("connected with a wrong token: %+v", st)
	}
	lines := logs.all()
	want := fmt.Sprintf("hub %s refused the session token (HTTP 401) (retrying)", h.WorkerAddr)
	if diff := cmp.Diff([]string{want}, lines); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}

// TestHubLinkReconnect: the hub restarts; while it is away entries are
// dropped and counted without slowing the pipeline, the last targets
// stay, and the worker is back within 3s of the hub, with entries
// flowing again.
func TestHubLinkReconnect(t *testing.T) {
	pki := hubtest.NewPKI(t)
	listen := func(addr string) net.Listener {
		t.Helper()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	wl, al := listen("127.0.0.1:0"), listen("127.0.0.1:0")
	workerAddr, apiAddr := wl.Addr().String(), al.Addr().String()
	h1 := startTestHub(t, hub.Options{WorkerListener: wl, APIListener: al, Certificate: &pki.Cert, Token: pki.Token})
	fw := &fakeHubWorker{}
	l, logs := newTestLink(t, workerAddr, pki.CACert, pki.Token, nil)
	runLink(t, l, fw)
	waitConnected(t, l, 1)
	postTargets(t, h1, wire.Targets{Targets: []wire.Target{{UID: uidWeb, Namespace: "shop", Name: "web"}}})
	waitFor(t, 5*time.Second, "targets", func() bool { ts, _ := fw.current(); return len(ts) == 1 })
	_, sets := fw.current()

	all := baseline(t, mixedPcap)
	sub, err := h1.Subscribe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	waitFilter(t, l, "")
	replay(t, mixedPcap, l.Render)
	receive(t, sub, len(all), 0)

	if err := h1.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !l.Stats().Connected })
	before := l.Stats()
	start := time.Now()
	replay(t, mixedPcap, l.Render)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dissecting with the hub away took %v", d)
	}
	if st := l.Stats(); st.Dropped-before.Dropped != uint64(len(all)) || st.Sent != before.Sent {
		t.Errorf("with the hub away: %+v after %+v, want %d more dropped", st, before, len(all))
	}
	if ts, n := fw.current(); len(ts) != 1 || n != sets {
		t.Errorf("targets %v after %d sets (%d before): the last targets must stay while the hub is away", ts, n, sets)
	}

	time.Sleep(500 * time.Millisecond) // the hub stays away a while: backoff grows
	restart := time.Now()
	h2 := startTestHub(t, hub.Options{WorkerListener: listen(workerAddr), APIListener: listen(apiAddr),
		Certificate: &pki.Cert, Token: pki.Token})
	waitConnected(t, l, 2)
	took := time.Since(restart)
	t.Logf("reconnected %v after the hub came back", took)
	if took > 3*time.Second {
		t.Errorf("reconnected %v after the hub came back, want within 3s", took)
	}
	if n := logs.count("lost the hub"); n != 1 {
		t.Errorf("%d lines about losing the hub, want 1: %q", n, logs.all())
	}

	sub2, err := h2.Subscribe(context.Background(), `proto == "http"`)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	waitFilter(t, l, `proto == "http"`)
	replay(t, mixedPcap, l.Render)
	n := 0
	for _, e := range all {
		if e.Proto == entry.ProtoHTTP {
			n++
		}
	}
	receive(t, sub2, n, 200*time.Millisecond)
}

// loadStore fills a store with the packets of captures: each file under
// its pod's name, copies times shifted by a second each.
func loadStore(t testing.TB, st *store.Store, pod, path string, copies int) int {
	t.Helper()
	n := 0
	for c := range copies {
		src, err := capture.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var id = -1
		var p capture.Packet
		for {
			err := src.Next(&p)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if id < 0 {
				id = st.AddInterface(capture.Interface{Name: pod, LinkType: p.LinkType, SnapLen: 65535})
			}
			p.Timestamp = p.Timestamp.Add(time.Duration(c) * time.Second)
			st.Write(id, []capture.Packet{p})
			n++
		}
		src.Close()
	}
	return n
}

// tsharkCount counts the packets tshark reads in a capture, per interface
// name.
func tsharkCount(t testing.TB, data []byte) map[string]int {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("needs tshark (make deps)")
	}
	f := filepath.Join(t.TempDir(), "out.pcapng")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", f, "-T", "fields", "-e", "frame.interface_name")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			counts[line]++
		}
	}
	return counts
}

func newTestStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir(), Limit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.RemoveAll() })
	return st
}

// TestHubLinkPcap: GET /v1/pcap on the hub is answered from the worker's
// store, through the credit protocol (the export is several times the
// hub's window of chunks), and tshark reads every packet.
func TestHubLinkPcap(t *testing.T) {
	st := newTestStore(t)
	nWeb := loadStore(t, st, "shop/web", http1Pcap, 5)
	nDB := loadStore(t, st, "shop/db", mixedPcap, 1)
	if ss := st.Stats(); ss.Bytes < 8*wire.MaxPcapChunk {
		t.Fatalf("the store holds %d bytes, too few to need credit", ss.Bytes)
	}
	h := startTestHub(t, hub.Options{})
	l, _ := newTestLink(t, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, func(o *HubOptions) { o.Store = st })
	runLink(t, l, &fakeHubWorker{})
	waitConnected(t, l, 1)

	for _, tt := range []struct {
		query url.Values
		want  map[string]int
	}{
		{nil, map[string]int{"shop/web": nWeb, "shop/db": nDB}},
		{url.Values{"pods": {"shop/db"}}, map[string]int{"shop/db": nDB}},
	} {
		t.Run(tt.query.Encode(), func(t *testing.T) {
			resp, err := h.Do(context.Background(), http.MethodGet, wire.PathPcap, tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || resp.Trailer.Get("X-Shark-Errors") != "" {
				t.Fatalf("%s, errors %q: %s", resp.Status, resp.Trailer.Get("X-Shark-Errors"), data[:min(len(data), 200)])
			}
			if diff := cmp.Diff(tt.want, tsharkCount(t, data)); diff != "" {
				t.Errorf("packets per pod (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHubLinkPcapNoStore: without a store, an export ends at once with
// the reason.
func TestHubLinkPcapNoStore(t *testing.T) {
	h := startTestHub(t, hub.Options{})
	l, _ := newTestLink(t, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, nil)
	runLink(t, l, &fakeHubWorker{})
	waitConnected(t, l, 1)
	resp, err := h.Do(context.Background(), http.MethodGet, wire.PathPcap, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if got := resp.Trailer.Get("X-Shark-Errors"); !strings.Contains(got, errNoStore.Error()) {
		t.Errorf("errors %q, want %q", got, errNoStore)
	}
}

// TestHubLinkPcapFollow: a follow export sends the stored packets of the
// pod, then the packets captured from then on, until the client leaves;
// the hub then cancels the export and the worker stops tapping.
func TestHubLinkPcapFollow(t *testing.T) {
	st := newTestStore(t)
	nWeb := loadStore(t, st, "shop/web", http1Pcap, 1)
	loadStore(t, st, "shop/db", mixedPcap, 1)
	h := startTestHub(t, hub.Options{})
	l, _ := newTestLink(t, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, func(o *HubOptions) { o.Store = st })
	runLink(t, l, &fakeHubWorker{})
	waitConnected(t, l, 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := h.Do(ctx, http.MethodGet, wire.PathPcap, url.Values{"pods": {"shop/web"}, "follow": {"1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got atomic.Int64
	names := make(chan string, 1)
	readDone := make(chan error, 1)
	go func() {
		src, err := capture.NewReader(resp.Body)
		if err != nil {
			readDone <- err
			return
		}
		var p capture.Packet
		for {
			if err := src.Next(&p); err != nil {
				readDone <- err
				return
			}
			if got.Add(1) == 1 {
				names <- src.Interfaces()[p.Interface].Name
			}
		}
	}()
	waitFor(t, 10*time.Second, "the stored packets", func() bool { return got.Load() >= int64(nWeb) })
	if name := <-names; name != "shop/web" {
		t.Errorf("interface %q, want shop/web", name)
	}
	waitFor(t, 5*time.Second, "the live tap", func() bool { return len(*l.taps.Load()) == 1 })

	// Live packets: of the pod, and of another pod the export leaves out.
	live := livePackets(t, http1Pcap, 25)
	web := l.AddInterface(capture.Interface{Name: "shop/web", LinkType: live[0].LinkType, SnapLen: 65535})
	db := l.AddInterface(capture.Interface{Name: "shop/db", LinkType: live[0].LinkType, SnapLen: 65535})
	l.Write(web, live[:10])
	l.Write(db, live[10:])
	l.Write(web, live[10:])
	waitFor(t, 5*time.Second, "the live packets", func() bool { return got.Load() == int64(nWeb+len(live)) })
	time.Sleep(300 * time.Millisecond)
	if n := got.Load(); n != int64(nWeb+len(live)) {
		t.Errorf("%d packets, want %d stored and %d live", n, nWeb, len(live))
	}

	cancel()
	<-readDone
	waitFor(t, 5*time.Second, "the tap to go", func() bool { return len(*l.taps.Load()) == 0 })
}

// livePackets returns the first n packets of a capture, as captured now.
func livePackets(t testing.TB, path string, n int) []capture.Packet {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []capture.Packet
	var p capture.Packet
	for len(out) < n {
		if err := src.Next(&p); err != nil {
			t.Fatal(err)
		}
		q := p
		q.Data = slices.Clone(p.Data)
		q.Timestamp = time.Now()
		out = append(out, q)
	}
	return out
}
