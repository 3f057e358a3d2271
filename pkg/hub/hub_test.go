package hub_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// TestTokenRequired checks that every endpoint but /healthz refuses a
// request without the session token, or with a wrong one, on both ports.
func TestTokenRequired(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	tlsConf, err := wire.WorkerTLSConfig(h.PKI.CACert)
	if err != nil {
		t.Fatal(err)
	}
	workerClient := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}}
	api := "http://" + h.APIAddr
	workers := "https://" + h.WorkerAddr

	endpoints := []struct{ method, url string }{
		{"GET", api + wire.PathSubscribe},
		{"GET", api + wire.PathTargets},
		{"POST", api + wire.PathTargets},
		{"POST", api + wire.PathHeartbeat},
		{"GET", api + wire.PathPcap},
		{"GET", api + wire.PathMetrics},
		{"GET", api + "/"},
		{"GET", api + "/index.html"},
		{"GET", api + "/no/such/page"},
		{"GET", workers + wire.PathWorker},
		{"GET", workers + "/"},
		{"GET", workers + wire.PathMetrics},
	}
	// The token with its first digit changed.
	wrong := "0" + h.PKI.Token[1:]
	if h.PKI.Token[0] == '0' {
		wrong = "1" + h.PKI.Token[1:]
	}
	creds := []struct {
		name string
		set  func(r *http.Request)
	}{
		{"none", func(*http.Request) {}},
		{"wrong bearer", func(r *http.Request) { wire.SetToken(r.Header, wrong) }},
		{"prefix of the token", func(r *http.Request) { wire.SetToken(r.Header, h.PKI.Token[:10]) }},
		{"basic", func(r *http.Request) { r.Header.Set("Authorization", "Basic "+h.PKI.Token) }},
		{"wrong query", func(r *http.Request) { r.URL.RawQuery = "token=nope" }},
		{"wrong cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: wire.TokenCookie, Value: "nope"}) }},
	}
	send := func(method, u string, set func(*http.Request)) int {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		set(req)
		c := http.DefaultClient
		if strings.HasPrefix(u, "https:") {
			c = workerClient
		}
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, ep := range endpoints {
		for _, c := range creds {
			if got := send(ep.method, ep.url, c.set); got != http.StatusUnauthorized {
				t.Errorf("%s %s with %s token: HTTP %d, want 401", ep.method, ep.url, c.name, got)
			}
		}
		good := func(r *http.Request) { wire.SetToken(r.Header, h.PKI.Token) }
		if got := send(ep.method, ep.url, good); got == http.StatusUnauthorized {
			t.Errorf("%s %s with the token: HTTP 401", ep.method, ep.url)
		}
	}
	for _, u := range []string{api + wire.PathHealthz, workers + wire.PathHealthz} {
		if got := send("GET", u, func(*http.Request) {}); got != http.StatusOK {
			t.Errorf("GET %s without a token: HTTP %d, want 200", u, got)
		}
	}
	// The browser's ways: a query parameter, and the cookie.
	if got := send("GET", api+wire.PathMetrics+"?token="+h.PKI.Token, func(*http.Request) {}); got != http.StatusOK {
		t.Errorf("token as a query parameter: HTTP %d", got)
	}
	withCookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: wire.TokenCookie, Value: h.PKI.Token}) }
	if got := send("GET", api+wire.PathMetrics, withCookie); got != http.StatusOK {
		t.Errorf("token as a cookie: HTTP %d", got)
	}

	// WebSockets are refused before the upgrade.
	if _, err := hubtest.DialWorker(ctx, h.WorkerAddr, h.PKI.CACert, "wrong", wire.Hello{Node: "n", Worker: "w"}); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("worker with a wrong token: %v, want HTTP 401", err)
	}
	if _, err := hubtest.Subscribe(ctx, h.APIAddr, "", "", nil); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("subscriber without a token: %v, want HTTP 401", err)
	}
}

// TestDashboardTokenCookie checks that opening the dashboard with
// ?token= moves the token into an HttpOnly cookie and out of the URL.
func TestDashboardTokenCookie(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	req, _ := http.NewRequestWithContext(ctx, "GET", h.URL("/", url.Values{"token": {h.PKI.Token}, "tab": {"feed"}}), nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?tab=feed" {
		t.Fatalf("HTTP %d to %q, want 303 to /?tab=feed", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != wire.TokenCookie || cookies[0].Value != h.PKI.Token || !cookies[0].HttpOnly {
		t.Fatalf("cookies %v", cookies)
	}
	// The placeholder page and its script come with the cookie.
	for _, path := range []string{"/", "/feed.js"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.URL(path, nil), nil)
		req.AddCookie(cookies[0])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: HTTP %d, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
}

// TestWorkerTLS checks that a worker verifies the hub with the session CA:
// a hub whose certificate another CA signed is refused.
func TestWorkerTLS(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	other := hubtest.NewPKI(t)
	_, err := hubtest.DialWorker(ctx, h.WorkerAddr, other.CACert, h.PKI.Token, wire.Hello{Node: "n1", Worker: "w1"})
	var unknown *tls.CertificateVerificationError
	if !errors.As(err, &unknown) {
		t.Fatalf("dial with another CA: %v, want a certificate verification error", err)
	}
	w, err := h.DialWorker(ctx, wire.Hello{Node: "n1", Worker: "w1"})
	if err != nil {
		t.Fatalf("dial with the session CA: %v", err)
	}
	defer w.Close()
	if got := nextFilter(ctx, t, w); got != wire.FilterNone {
		t.Errorf("first filter %q, want %q (no subscriber)", got, wire.FilterNone)
	}
}

// TestFilterPushdown checks that workers get the union of the
// subscribers' filters as it changes, and each subscriber only what its
// own filter matches.
func TestFilterPushdown(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	w := dialWorker(ctx, t, h, "n1", "w1")
	step := func(what, want string) {
		t.Helper()
		if got := nextFilter(ctx, t, w); got != want {
			t.Fatalf("%s: worker filter %q, want %q", what, got, want)
		}
	}
	step("no subscriber", wire.FilterNone)

	httpSub, err := h.Subscribe(ctx, `proto == "http"`)
	if err != nil {
		t.Fatal(err)
	}
	step("http subscriber", `proto == "http"`)
	dnsSub, err := h.Subscribe(ctx, `proto == "dns"`)
	if err != nil {
		t.Fatal(err)
	}
	step("http and dns subscribers", `(proto == "dns") || (proto == "http")`)

	// A worker that connects now gets the union at once.
	w2 := dialWorker(ctx, t, h, "n2", "w2")
	if got := nextFilter(ctx, t, w2); got != `(proto == "dns") || (proto == "http")` {
		t.Errorf("late worker's filter %q", got)
	}

	// Each subscriber gets only what it asked for, in order.
	if err := w.SendEntries([]entry.Entry{httpEntry("h1", "10.0.0.1", "10.0.0.2"), dnsEntry("d1"), redisEntry("r1"), httpEntry("h2", "10.0.0.1", "10.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	if err := w2.SendEntries([]entry.Entry{dnsEntry("d2")}); err != nil {
		t.Fatal(err)
	}
	if got := nextIDs(ctx, t, httpSub, 2); !cmp.Equal(got, []string{"h1", "h2"}) {
		t.Errorf("http subscriber got %v", got)
	}
	// Two workers: no order between them.
	if got := nextIDs(ctx, t, dnsSub, 2); !cmp.Equal(got, []string{"d1", "d2"}, cmpopts.SortSlices(func(a, b string) bool { return a < b })) {
		t.Errorf("dns subscriber got %v", got)
	}

	// A bad filter is refused with an error; the old one stays.
	if err := httpSub.SetFilter(`proto ==`); err != nil {
		t.Fatal(err)
	}
	var e wire.Error
	if err := httpSub.Expect(ctx, wire.TypeError, &e); err != nil || !strings.HasPrefix(e.Message, "filter: ") {
		t.Fatalf("bad filter: error %q, %v", e.Message, err)
	}

	if err := httpSub.SetFilter(`proto == "redis"`); err != nil {
		t.Fatal(err)
	}
	step("http subscriber now on redis", `(proto == "dns") || (proto == "redis")`)
	if err := w.SendEntries([]entry.Entry{httpEntry("h3", "10.0.0.1", "10.0.0.2"), redisEntry("r2")}); err != nil {
		t.Fatal(err)
	}
	if got := nextIDs(ctx, t, httpSub, 1); !cmp.Equal(got, []string{"r2"}) {
		t.Errorf("after the change the subscriber got %v, want [r2]", got)
	}

	if err := httpSub.SetFilter(""); err != nil {
		t.Fatal(err)
	}
	step("one subscriber wants everything", "")
	httpSub.Close()
	step("that subscriber left", `proto == "dns"`)
	dnsSub.Close()
	step("everyone left", wire.FilterNone)
}

func TestSubscribeBadFilter(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	_, err := h.Subscribe(ctx, `stauts == "200"`)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "undeclared reference to 'stauts'") {
		t.Fatalf("got %v, want HTTP 400 naming the unknown field", err)
	}
}

// TestEnrichment checks that the hub names the pods behind IPs before it
// filters, and sends each worker the targets of its node.
func TestEnrichment(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	w1 := dialWorker(ctx, t, h, "n1", "w1")
	var first wire.Targets
	if err := w1.Expect(ctx, wire.TypeTargets, &first); err != nil {
		t.Fatal(err)
	}
	if len(first.Targets) != 0 {
		t.Errorf("targets before any were posted: %v", first.Targets)
	}

	front := wire.Target{UID: "u-front", Namespace: "shop", Name: "front-1", IPs: []string{"10.0.0.1"}, Node: "n1"}
	cart := wire.Target{UID: "u-cart", Namespace: "shop", Name: "cart-1", IPs: []string{"10.0.0.2"}, Node: "n2"}
	post := wire.Targets{
		Targets: []wire.Target{front, cart},
		IPMap: wire.IPMap{
			"10.0.0.1":        {Pod: "front-1", Namespace: "shop", Node: "n1", Workload: "front"},
			"::ffff:10.0.0.2": {Pod: "cart-1", Namespace: "shop", Node: "n2", Service: "cart", Workload: "cart"},
			"not-an-ip":       {Pod: "x"},
		},
	}
	code, body := do(ctx, t, h, http.MethodPost, wire.PathTargets, post)
	if code != http.StatusOK || strings.TrimSpace(body) != `{"targets":2,"ips":2,"ignored":1}` {
		t.Fatalf("POST targets: HTTP %d %s", code, body)
	}
	wantMap := wire.IPMap{
		"10.0.0.1": {Pod: "front-1", Namespace: "shop", Node: "n1", Workload: "front"},
		"10.0.0.2": {Pod: "cart-1", Namespace: "shop", Node: "n2", Service: "cart", Workload: "cart"},
	}
	var got wire.Targets
	if err := w1.Expect(ctx, wire.TypeTargets, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wire.Targets{Targets: []wire.Target{front}, IPMap: wantMap}, got); d != "" {
		t.Errorf("worker on n1 got (-want +got):\n%s", d)
	}
	w2 := dialWorker(ctx, t, h, "n2", "w2")
	if err := w2.Expect(ctx, wire.TypeTargets, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wire.Targets{Targets: []wire.Target{cart}, IPMap: wantMap}, got); d != "" {
		t.Errorf("worker on n2 got (-want +got):\n%s", d)
	}

	// The filter reads names only the map knows: enrichment came first.
	s, err := h.Subscribe(ctx, `src.workload == "front" && dst.service == "cart"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := w1.WaitFilter(ctx, `src.workload == "front" && dst.service == "cart"`); err != nil {
		t.Fatal(err)
	}
	known := httpEntry("known", "10.0.0.1", "10.0.0.2")
	known.Src.Pod = "from-capture" // what the capture knew wins
	if err := w1.SendEntries([]entry.Entry{httpEntry("unknown", "10.0.0.9", "10.0.0.2"), known}); err != nil {
		t.Fatal(err)
	}
	e, err := s.NextEntry(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []entry.Endpoint{
		{IP: "10.0.0.1", Port: 41000, Pod: "from-capture", Namespace: "shop", Node: "n1", Workload: "front"},
		{IP: "10.0.0.2", Port: 8080, Pod: "cart-1", Namespace: "shop", Node: "n2", Service: "cart", Workload: "cart"},
	}
	if d := cmp.Diff(want, []entry.Endpoint{e.Src, e.Dst}); e.ID != "known" || d != "" {
		t.Errorf("entry %s, endpoints (-want +got):\n%s", e.ID, d)
	}

	code, body = do(ctx, t, h, http.MethodGet, wire.PathTargets, nil)
	if code != http.StatusOK || !strings.Contains(body, `"10.0.0.2":{"pod":"cart-1"`) {
		t.Errorf("GET targets: HTTP %d %s", code, body)
	}
	for _, bad := range []wire.Targets{
		{Targets: []wire.Target{{Namespace: "shop", Name: "no-uid"}}},
		{Targets: []wire.Target{{UID: "u", Namespace: "shop", Name: "a", IPs: []string{"10.0.0"}}}},
	} {
		if code, body := do(ctx, t, h, http.MethodPost, wire.PathTargets, bad); code != http.StatusBadRequest {
			t.Errorf("POST %+v: HTTP %d %s, want 400", bad, code, body)
		}
	}
}

// TestStatsAndMetrics checks that worker stats reach subscribers and
// /metrics, with the hub's relay counters.
func TestStatsAndMetrics(t *testing.T) {
	ctx := testCtx(t)
	opts := hub.NewOptions()
	opts.StatsInterval = 20 * time.Millisecond
	h := hubtest.Start(t, opts)
	w := dialWorker(ctx, t, h, "n1", "w1")
	s, err := h.Subscribe(ctx, `proto == "http"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitFilter(ctx, `proto == "http"`); err != nil {
		t.Fatal(err)
	}
	// The worker claims another name: the hub files stats under the
	// connection's own.
	st := wire.Stats{Node: "evil", Worker: "evil", Packets: 42, Bytes: 4200, KernelDrops: 3, Entries: 9, Sources: 2, Targets: 2}
	if err := w.Send(wire.TypeStats, st); err != nil {
		t.Fatal(err)
	}
	if err := w.SendEntries([]entry.Entry{httpEntry("a", "10.0.0.1", "10.0.0.2"), dnsEntry("b"), httpEntry("c", "10.0.0.1", "10.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	nextIDs(ctx, t, s, 2)
	for {
		var ss wire.SessionStats
		if err := s.Expect(ctx, wire.TypeStats, &ss); err != nil {
			t.Fatal(err)
		}
		if len(ss.Workers) == 1 && ss.Workers[0].Packets == 42 {
			want := st
			want.Node, want.Worker = "n1", "w1"
			if d := cmp.Diff(want, ss.Workers[0]); d != "" {
				t.Errorf("worker stats (-want +got):\n%s", d)
			}
			wantHub := wire.HubStats{EntriesIn: 3, EntriesOut: 2, Workers: 1, Subscribers: 1}
			if d := cmp.Diff(wantHub, ss.Hub); d != "" {
				t.Errorf("hub stats (-want +got):\n%s", d)
			}
			break
		}
	}
	for sample, want := range map[string]string{
		"shark_hub_entries_in_total":                             "3",
		"shark_hub_entries_out_total":                            "2",
		"shark_hub_entries_dropped_total":                        "0",
		"shark_hub_workers":                                      "1",
		"shark_hub_subscribers":                                  "1",
		`shark_hub_worker_entries_total{node="n1",worker="w1"}`:  "3",
		`shark_worker_packets_total{node="n1",worker="w1"}`:      "42",
		`shark_worker_kernel_drops_total{node="n1",worker="w1"}`: "3",
		`shark_worker_sources{node="n1",worker="w1"}`:            "2",
		`shark_hub_bad_messages_total{peer="worker"}`:            "<no sample shark_hub_bad_messages_total{peer=\"worker\"}>",
		`shark_hub_unauthorized_total`:                           "0",
		`shark_hub_subscriber_dropped_total{subscriber="1"}`:     "0",
	} {
		if got := metric(ctx, t, h, sample); got != want {
			t.Errorf("%s = %s, want %s", sample, got, want)
		}
	}
}

// TestShutdown checks that Run returns when its context is done and
// closes every client.
func TestShutdown(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	w, err := h.DialWorker(ctx, wire.Hello{Node: "n1", Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := h.Subscribe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %v to return", d)
	}
	for name, next := range map[string]func(context.Context) error{
		"worker":     func(ctx context.Context) error { return w.Expect(ctx, "never", nil) },
		"subscriber": func(ctx context.Context) error { return s.Expect(ctx, "never", nil) },
	} {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := next(cctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "connection closed") {
			t.Errorf("%s after Stop: %v, want its connection closed", name, err)
		}
	}
}

// TestWorkerReplaced checks that a worker reconnecting under the same
// name replaces its old connection.
func TestWorkerReplaced(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	old, err := h.DialWorker(ctx, wire.Hello{Node: "n1", Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	nextFilter(ctx, t, old)
	w := dialWorker(ctx, t, h, "n1", "w1")
	if err := old.Expect(ctx, "never", nil); err == nil || !strings.Contains(err.Error(), "connection closed") {
		t.Errorf("old connection: %v, want closed", err)
	}
	nextFilter(ctx, t, w)
	if got := metric(ctx, t, h, "shark_hub_workers"); got != "1" {
		t.Errorf("workers = %s, want 1", got)
	}
}

// TestWorkerMustSayHello checks that a connection whose first message is
// not a hello is closed, and that a later unexpected message is only
// counted.
func TestWorkerMustSayHello(t *testing.T) {
	ctx := testCtx(t)
	h := hubtest.Start(t, hub.NewOptions())
	tlsConf, err := wire.WorkerTLSConfig(h.PKI.CACert)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{TLSClientConfig: tlsConf}
	hdr := http.Header{}
	wire.SetToken(hdr, h.PKI.Token)
	ws, _, err := d.DialContext(ctx, "wss://"+h.WorkerAddr+wire.PathWorker, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	b, _ := wire.Marshal(wire.TypeStats, wire.Stats{})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, "not a hello") {
		t.Fatalf("got %v, want a policy violation close", err)
	}

	w := dialWorker(ctx, t, h, "n1", "w1")
	if err := w.Send(wire.TypeHello, wire.Hello{}); err != nil {
		t.Fatal(err)
	}
	if err := w.SendRaw(websocket.BinaryMessage, []byte{9, 9}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "bad messages counted", func() bool {
		return metric(ctx, t, h, `shark_hub_bad_messages_total{peer="worker"}`) == "2"
	})
	if err := w.SendEntries([]entry.Entry{dnsEntry("still-alive")}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "entries after bad messages", func() bool {
		return metric(ctx, t, h, "shark_hub_entries_in_total") == "1"
	})
}

// TestRunErrors checks that Run refuses incomplete options and returns a
// listener's failure.
func TestRunErrors(t *testing.T) {
	pki := hubtest.NewPKI(t)
	base := func() hub.Options {
		o := hub.NewOptions()
		o.WorkerAddr, o.APIAddr = "127.0.0.1:0", "127.0.0.1:0"
		o.Certificate, o.Token = &pki.Cert, pki.Token
		return o
	}
	tests := []struct {
		name string
		edit func(*hub.Options)
		want string
	}{
		{"no token", func(o *hub.Options) { o.Token = "" }, "no session token"},
		{"missing token file", func(o *hub.Options) { o.Token, o.TokenFile = "", "/nonexistent/token" }, "reading the token"},
		{"no certificate", func(o *hub.Options) { o.Certificate = nil }, "no TLS certificate"},
		{"missing certificate", func(o *hub.Options) {
			o.Certificate, o.CertFile, o.KeyFile = nil, "/nonexistent/hub.crt", "/nonexistent/hub.key"
		}, "loading the TLS certificate"},
		{"no address", func(o *hub.Options) { o.APIAddr = "" }, "no API address"},
		{"bad address", func(o *hub.Options) { o.WorkerAddr = "127.0.0.1:http-alt-nope" }, "hub: listen tcp"},
		{"negative idle timeout", func(o *hub.Options) { o.IdleTimeout = -time.Second }, "negative idle timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			tt.edit(&o)
			err := hub.Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want an error with %q", err, tt.want)
			}
		})
	}

	// A listener that fails ends Run with its error.
	o := base()
	l := &failingListener{accepted: make(chan struct{})}
	o.APIListener = l
	done := make(chan error, 1)
	go func() { done <- hub.Run(context.Background(), o) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "API listener: accept failed") {
			t.Errorf("Run: %v, want the listener's failure", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its listener failed")
	}
}

// failingListener fails its first Accept.
type failingListener struct{ accepted chan struct{} }

func (l *failingListener) Accept() (net.Conn, error) { return nil, errors.New("accept failed") }
func (l *failingListener) Close() error              { return nil }
func (l *failingListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
