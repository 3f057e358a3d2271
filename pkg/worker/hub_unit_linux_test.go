package worker

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

func TestCompilePushFilter(t *testing.T) {
	e80 := &entry.Entry{Proto: "http", Dst: entry.Endpoint{IP: "10.0.0.1", Port: 80}}
	e53 := &entry.Entry{Proto: "dns", Dst: entry.Endpoint{IP: "10.0.0.2", Port: 53}}
	for _, tt := range []struct {
		expr           string
		ok             bool
		match80, mat53 bool
	}{
		{wire.FilterNone, true, false, false},
		{"", true, true, true},
		{"  ", true, true, true},
		{"dst.port == 80", true, true, false},
		{`proto == "dns" || dst.port == 80`, true, true, true},
		// A filter this worker cannot compile lets everything through:
		// the hub filters again.
		{"dst.port ==", false, true, true},
		{"no_such_function(dst)", false, true, true},
	} {
		p, ok, err := compilePushFilter(tt.expr)
		if ok != tt.ok || (err != nil) == ok {
			t.Errorf("%q: ok %v, err %v", tt.expr, ok, err)
		}
		if p.expr != tt.expr {
			t.Errorf("%q: expr %q", tt.expr, p.expr)
		}
		if got := [2]bool{p.match(e80), p.match(e53)}; got != [2]bool{tt.match80, tt.mat53} {
			t.Errorf("%q: matches %v, want %v", tt.expr, got, [2]bool{tt.match80, tt.mat53})
		}
	}
}

func TestSetFilterLogsOnce(t *testing.T) {
	l, logs := newTestLink(t, "127.0.0.1:1", hubtestCA(t), "tok", nil)
	for range 3 {
		l.setFilter("dst.port ==")
	}
	l.setFilter("dst.port == 80")
	l.setFilter("dst.port ==")
	if n := logs.count("does not compile"); n != 1 {
		t.Errorf("%d lines about the bad filter, want 1 for the first time it came: %q", n, logs.all())
	}
	if got := l.Filter(); got != "dst.port ==" {
		t.Errorf("filter %q", got)
	}
}

func TestTargetOf(t *testing.T) {
	for _, tt := range []struct {
		in      wire.Target
		want    Target
		wantErr string
	}{
		{
			wire.Target{UID: uidWeb, Namespace: "shop", Name: "web", IPs: []string{"10.0.0.7", "::ffff:10.0.0.8", "fd00::1"}, Node: "n1"},
			Target{UID: uidWeb, Namespace: "shop", Name: "web", IPs: []netip.Addr{
				netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("10.0.0.8"), netip.MustParseAddr("fd00::1")}},
			"",
		},
		{wire.Target{UID: "nope", Namespace: "shop", Name: "web"}, Target{}, "not a UID"},
		{wire.Target{UID: uidWeb, Name: "web"}, Target{}, "no namespace"},
		{wire.Target{UID: uidWeb, Namespace: "shop", Name: "web", IPs: []string{"10.0.0"}}, Target{}, "bad IP"},
		{wire.Target{Namespace: "shop", Name: "web"}, Target{}, "neither"},
	} {
		got, err := targetOf(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v: error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

// TestSetTargetsSkipsBad: a bad target does not cost the good ones.
func TestSetTargetsSkipsBad(t *testing.T) {
	l, logs := newTestLink(t, "127.0.0.1:1", hubtestCA(t), "tok", nil)
	fw := &fakeHubWorker{}
	l.setTargets(fw, wire.Targets{
		Targets: []wire.Target{{UID: uidWeb, Namespace: "shop", Name: "web"}, {UID: "bad", Namespace: "shop", Name: "x"}},
		IPMap:   wire.IPMap{"::ffff:10.0.0.7": {Pod: "web"}, "junk": {Pod: "x"}},
	})
	got, _ := fw.current()
	if len(got) != 1 || got[0].Name != "web" {
		t.Errorf("targets %+v", got)
	}
	if w, ok := l.ipmap.Load().Lookup("10.0.0.7"); !ok || w.Pod != "web" {
		t.Errorf("the IPMap is not normalized: %v %v", w, ok)
	}
	if n := logs.count("ignoring 1 targets"); n != 1 {
		t.Errorf("log %q", logs.all())
	}
	// The same set again is not logged again.
	l.setTargets(fw, wire.Targets{Targets: []wire.Target{{UID: uidWeb, Namespace: "shop", Name: "web"}}})
	if n := logs.count("1 targets from the hub, "); n != 1 {
		t.Errorf("log %q", logs.all())
	}
}

func TestDialError(t *testing.T) {
	resp := func(code int, body string) *http.Response {
		return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader(body))}
	}
	base := errors.New("websocket: bad handshake")
	for _, tt := range []struct {
		resp *http.Response
		err  error
		want string
	}{
		{nil, errors.New("dial tcp 10.0.0.1:8443: connect: connection refused"), "hub h:8443: dial tcp 10.0.0.1:8443: connect: connection refused"},
		{resp(401, "missing or wrong session token\n"), base, "hub h:8443 refused the session token (HTTP 401)"},
		{resp(503, "too many workers,\n  or the hub is stopping\n"), base, "hub h:8443 answered HTTP 503: too many workers, or the hub is stopping"},
		{resp(404, ""), base, "hub h:8443 answered HTTP 404: Not Found"},
		{resp(500, strings.Repeat("x", 1000)), base, "hub h:8443 answered HTTP 500: " + strings.Repeat("x", hubMaxErrorBody)},
	} {
		if got := dialError("h:8443", tt.resp, tt.err).Error(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 200 * time.Millisecond, 3 * time.Second} {
		for range 1000 {
			if j := jitter(d); j < d/2 || j > d {
				t.Fatalf("jitter(%v) = %v, outside [d/2, d]", d, j)
			}
		}
	}
}

// batches takes the queued batches and checks each is an entries message
// the hub decodes, of the count it claims.
func batches(t *testing.T, l *HubLink) []*entryBatch {
	t.Helper()
	var out []*entryBatch
	for {
		select {
		case b := <-l.queue:
			data, ok := wire.CutData(b.buf, wire.TypeEntries)
			if !ok {
				t.Fatalf("batch is not an entries message: %.100s", b.buf)
			}
			var es wire.Entries
			if err := json.Unmarshal(data, &es); err != nil {
				t.Fatalf("batch does not decode: %v", err)
			}
			if len(es.Entries) != b.n {
				t.Fatalf("batch of %d entries says %d", len(es.Entries), b.n)
			}
			out = append(out, b)
		default:
			return out
		}
	}
}

func bigEntry(pathBytes int) *entry.Entry {
	return &entry.Entry{V: entry.Version, Proto: "http", Method: "GET", Path: "/" + strings.Repeat("a", pathBytes),
		Src: entry.Endpoint{IP: "10.0.0.1", Port: 40000}, Dst: entry.Endpoint{IP: "10.0.0.2", Port: 80}}
}

// TestHubLinkBatching: batches stay under wire.MaxBatchBytes, an entry
// too big for one goes alone, one too big for the hub is dropped, and a
// full queue drops whole batches, counted; Render never writes output.
func TestHubLinkBatching(t *testing.T) {
	l, _ := newTestLink(t, "127.0.0.1:1", hubtestCA(t), "tok", func(o *HubOptions) { o.Queue = 3 })
	l.setFilter("")
	l.connected.Store(true)

	dst := []byte("previous output")
	for range 25 { // 25 entries of ~100 KiB: two full batches and a partial
		dst = l.Render(dst, bigEntry(100<<10))
	}
	if string(dst) != "previous output" {
		t.Fatalf("Render wrote output: %.40q", dst)
	}
	l.bmu.Lock()
	l.sealLocked()
	l.bmu.Unlock()
	bs := batches(t, l)
	var ns []int
	for _, b := range bs {
		if len(b.buf) > wire.MaxBatchBytes {
			t.Errorf("batch of %d bytes, over %d", len(b.buf), wire.MaxBatchBytes)
		}
		ns = append(ns, b.n)
	}
	if diff := cmp.Diff([]int{10, 10, 5}, ns); diff != "" {
		t.Errorf("entries per batch (-want +got):\n%s", diff)
	}

	// A 3 MiB entry goes alone, between the batches around it.
	l.Render(nil, bigEntry(10))
	l.Render(nil, bigEntry(3<<20))
	l.Render(nil, bigEntry(10))
	l.bmu.Lock()
	l.sealLocked()
	l.bmu.Unlock()
	ns = ns[:0]
	for _, b := range batches(t, l) {
		ns = append(ns, b.n)
	}
	if diff := cmp.Diff([]int{1, 1, 1}, ns); diff != "" {
		t.Errorf("entries per batch around a big one (-want +got):\n%s", diff)
	}

	// Too big for the hub: dropped.
	l.Render(nil, bigEntry(wire.MaxWorkerMessage))
	if st := l.Stats(); st.Dropped != 1 {
		t.Errorf("dropped %d, want the oversized entry", st.Dropped)
	}

	// A full queue (3 batches) drops the next whole batches.
	for range 51 { // five batches sealed, the 51st entry in the sixth
		l.Render(nil, bigEntry(100<<10))
	}
	if st := l.Stats(); st.Dropped != 1+20 {
		t.Errorf("dropped %d, want 1 + 20 (the two batches the full queue refused)", st.Dropped)
	}
	batches(t, l)

	// Disconnected: matching entries are counted as dropped, not encoded.
	l.connected.Store(false)
	l.Render(nil, bigEntry(10))
	l.setFilter(wire.FilterNone)
	l.Render(nil, bigEntry(10))
	if st := l.Stats(); st.Dropped != 22 || st.Filtered != 1 {
		t.Errorf("%+v, want 22 dropped and 1 filtered", st)
	}
}

// TestHubLinkRunTwice: one link, one Run.
func TestHubLinkRunTwice(t *testing.T) {
	l, _ := newTestLink(t, "127.0.0.1:1", hubtestCA(t), "tok", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, &fakeHubWorker{}) }()
	time.Sleep(10 * time.Millisecond)
	if err := l.Run(ctx, &fakeHubWorker{}); err == nil {
		t.Error("a second Run did not fail")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestNewHubLinkOptions(t *testing.T) {
	ok := HubOptions{Addr: "h:1", TLS: mustTLS(t), Token: "t"}
	for _, tt := range []struct {
		mod  func(*HubOptions)
		want string
	}{
		{func(o *HubOptions) { o.Addr = "" }, "no hub address"},
		{func(o *HubOptions) { o.TLS = nil }, "no TLS"},
		{func(o *HubOptions) { o.Token = "" }, "no session token"},
	} {
		o := ok
		tt.mod(&o)
		if _, err := NewHubLink(o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
	l, err := NewHubLink(ok)
	if err != nil {
		t.Fatal(err)
	}
	want := "wss://h:1/v1/worker"
	if l.url != want || l.opts.MinBackoff != DefaultHubMinWait || l.opts.MaxBackoff != DefaultHubMaxWait {
		t.Errorf("url %q, backoff %v..%v", l.url, l.opts.MinBackoff, l.opts.MaxBackoff)
	}
}

func hubtestCA(t testing.TB) []byte { return hubtest.NewPKI(t).CACert }

func mustTLS(t testing.TB) *tls.Config {
	c, err := wire.WorkerTLSConfig(hubtestCA(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzHubMessage feeds arbitrary messages to the worker's handler of hub
// messages: it must never panic, and leave a usable filter and IPMap.
func FuzzHubMessage(f *testing.F) {
	seed := func(typ string, v any) {
		b, err := wire.Marshal(typ, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(wire.TypeTargets, wire.Targets{
		Targets: []wire.Target{{UID: uidWeb, Namespace: "shop", Name: "web", IPs: []string{"10.0.0.7"}, Node: "n1"}},
		IPMap:   wire.IPMap{"10.0.0.7": {Pod: "web", Namespace: "shop"}},
	})
	seed(wire.TypeFilter, wire.Filter{Expr: `dst.port == 80 && src.pod.startsWith("web")`})
	seed(wire.TypeFilter, wire.Filter{Expr: wire.FilterNone})
	seed(wire.TypePcapRequest, wire.PcapRequest{ID: "pcap1-1", Pods: []string{"shop/web"}, Credit: 4,
		Flow: &wire.PcapFlow{ID: "00112233aabbccdd", A: "10.0.0.1:80", B: "10.0.0.2:40000"}})
	seed(wire.TypePcapRequest, wire.PcapRequest{ID: strings.Repeat("x", 80), Follow: true})
	seed(wire.TypePcapCredit, wire.PcapCredit{ID: "pcap1-1", Chunks: 3})
	seed(wire.TypePcapCancel, wire.PcapCancel{ID: "pcap1-1"})
	f.Add([]byte(`{"v":2,"type":"targets","data":{}}`))
	f.Add([]byte(`{"v":1,"type":"filter","data":"x"}`))
	f.Add([]byte(`{"v":1,"type":"nope"}`))
	f.Add([]byte(`not json`))
	l, _ := newTestLink(f, "127.0.0.1:1", hubtestCA(f), "tok", func(o *HubOptions) { o.Logf = func(string, ...any) {} })
	fw := &fakeHubWorker{}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // exports end at once: there is no socket
		c := newHubConn(ctx, l, nil, fw)
		c.handle(msg)
		c.running.Wait()
		if l.filter.Load() == nil || l.ipmap.Load() == nil {
			t.Fatal("no filter or IPMap after a message")
		}
		l.filter.Load().match(bigEntry(1))
	})
}

// TestHubLinkKeepalive: a hub that goes silent (it no longer reads, so it
// answers no ping) is dropped after hubReadWait, and the worker dials
// again.
func TestHubLinkKeepalive(t *testing.T) {
	readWait, pingPeriod := hubReadWait, hubPingPeriod
	t.Cleanup(func() { hubReadWait, hubPingPeriod = readWait, pingPeriod })
	hubReadWait, hubPingPeriod = 3*time.Second, 50*time.Millisecond

	pki := hubtest.NewPKI(t)
	stall := make(chan struct{})
	var accepted atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if _, _, err := ws.ReadMessage(); err != nil { // the hello
			return
		}
		b, _ := wire.Marshal(wire.TypeTargets, wire.Targets{Targets: []wire.Target{}})
		ws.WriteMessage(websocket.TextMessage, b)
		b, _ = wire.Marshal(wire.TypeFilter, wire.Filter{Expr: ""})
		ws.WriteMessage(websocket.TextMessage, b)
		accepted.Add(1)
		<-stall
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.Cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stall) })

	l, logs := newTestLink(t, srv.Listener.Addr().String(), pki.CACert, "tok", func(o *HubOptions) { o.Queue = 2 })
	runLink(t, l, &fakeHubWorker{})
	waitConnected(t, l, 1)
	start := time.Now()
	waitFilter(t, l, "")

	// The hub reads nothing: once the socket's buffers and the queue are
	// full, entries are dropped, and adding them never waits (else this
	// would last until the read wait ends the connection).
	const n = 100 // of 100 KiB each: 10 MiB
	js := render.AppendJSON(nil, bigEntry(100<<10))
	for range n {
		l.add(js)
	}
	if st := l.Stats(); st.Connects != 1 || !st.Connected {
		t.Errorf("%+v after %v: adding entries waited for the connection to end", st, time.Since(start))
	}
	if st := l.Stats(); st.Dropped == 0 {
		t.Errorf("%+v: nothing dropped for a hub that reads nothing", st)
	}
	waitFor(t, 10*time.Second, "the silent hub dropped", func() bool { return logs.count("lost the hub") == 1 })
	if took := time.Since(start); took < hubReadWait*3/4 {
		t.Errorf("dropped the hub after %v, before the read wait of %v", took, hubReadWait)
	}
	if n := logs.count("i/o timeout"); n != 1 {
		t.Errorf("log %q, want the read timeout", logs.all())
	}
	waitFor(t, 5*time.Second, "a new connection", func() bool { return accepted.Load() == 2 })
	// Every entry is accounted for: sent (to either connection) or dropped.
	waitFor(t, 5*time.Second, "every entry sent or dropped", func() bool { st := l.Stats(); return st.Sent+st.Dropped == n })
}
