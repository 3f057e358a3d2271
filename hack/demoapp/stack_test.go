package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/kubectl-shark/kubectl-shark/hack/demoapp/catalogpb"
)

// stack is the demo shop on loopback: real gRPC, h2c, TLS, Kafka (kfake) and
// a real redis-server, wired as the cluster wires them.
type stack struct {
	front   *httptest.Server
	brokers []string
}

func startStack(t *testing.T) *stack {
	t.Helper()
	redisAddr := startRedis(t)

	// catalog over real gRPC
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterCatalogServer(gs, newCatalog())
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })

	// Kafka
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, ordersTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.DefaultProduceTopic(ordersTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)

	// cart over h2c
	cs := &cartServer{redis: newRedisClient(redisAddr, 4), kafka: producer}
	t.Cleanup(cs.redis.close)
	cart := httptest.NewUnstartedServer(cs.routes())
	cart.Config.Protocols = new(http.Protocols)
	cart.Config.Protocols.SetUnencryptedHTTP2(true)
	cart.Start()
	t.Cleanup(cart.Close)

	// secure over TLS, with certificates made the way hack/demo.sh makes them
	dir := t.TempDir()
	if err := runCerts(context.Background(), []string{"-out", dir}); err != nil {
		t.Fatal(err)
	}
	cert, err := loadServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	secure := httptest.NewUnstartedServer((&secureServer{}).routes())
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	secure.StartTLS()
	t.Cleanup(secure.Close)
	secureClient, err := secureClient(filepath.Join(dir, caCertFile))
	if err != nil {
		t.Fatal(err)
	}

	f := &front{
		catalog: pb.NewCatalogClient(cc),
		cart:    h2cClient(), cartURL: cart.URL,
		secure: secureClient, secureURL: strings.Replace(secure.URL, "127.0.0.1", "localhost", 1),
	}
	fs := httptest.NewServer(f.routes())
	t.Cleanup(fs.Close)
	return &stack{front: fs, brokers: kc.ListenAddrs()}
}

// startRedis runs Debian's redis-server on a free loopback port.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (make deps installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rc := newRedisClient(addr, 1)
	defer rc.close()
	for i := 0; ; i++ {
		if _, err := rc.do(context.Background(), "PING"); err == nil {
			return addr
		} else if i == 50 {
			t.Fatalf("redis-server on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// do sends one request to front and returns the status and the decoded body.
func (s *stack) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.front.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, data, err)
	}
	return resp.StatusCode, m
}

// TestShop walks through the shop as a user would, checking every status the
// demo is meant to produce, and that a checkout lands in Kafka.
func TestShop(t *testing.T) {
	s := startStack(t)
	steps := []struct {
		name, method, path, body string
		want                     int
		wantField                string // a field the JSON answer must have
	}{
		{"item", "GET", "/api/items/sku-1", "", 200, "name"},
		{"missing item is gRPC NOT_FOUND", "GET", "/api/items/sku-999", "", 404, "error"},
		{"list", "GET", "/api/items?category=coffee&limit=2", "", 200, "items"},
		{"add unknown sku", "POST", "/api/cart/u1/items", `{"sku":"sku-404","quantity":1}`, 404, "error"},
		{"bad quantity", "POST", "/api/cart/u1/items", `{"sku":"sku-1","quantity":0}`, 422, "error"},
		{"empty checkout", "POST", "/api/checkout/u1", "", 409, "error"},
		{"add", "POST", "/api/cart/u1/items", `{"sku":"sku-1","quantity":2}`, 200, "quantity"},
		{"add more", "POST", "/api/cart/u1/items", `{"sku":"sku-2","quantity":1}`, 200, "quantity"},
		{"cart", "GET", "/api/cart/u1", "", 200, "lines"},
		{"checkout", "POST", "/api/checkout/u1", "", 201, "order"},
		{"cart empty after checkout", "POST", "/api/checkout/u1", "", 409, "error"},
		{"out of stock is FAILED_PRECONDITION", "POST", "/api/cart/u2/items", `{"sku":"sku-7","quantity":1}`, 200, "quantity"},
		{"checkout out of stock", "POST", "/api/checkout/u2", "", 409, "error"},
		{"big order", "POST", "/api/cart/u3/items", `{"sku":"sku-42","quantity":3}`, 200, "quantity"},
		{"big order is declined by secure", "POST", "/api/checkout/u3", "", 402, "error"},
		{"boom", "GET", "/api/boom", "", 500, "error"},
		{"no route", "GET", "/api/v0/legacy", "", 404, "error"},
		{"slow", "GET", "/api/slow", "", 200, "status"},
	}
	for _, st := range steps {
		got, body := s.do(t, st.method, st.path, st.body)
		if got != st.want {
			t.Errorf("%s: %s %s = %d %v, want %d", st.name, st.method, st.path, got, body, st.want)
			continue
		}
		if _, ok := body[st.wantField]; !ok {
			t.Errorf("%s: answer %v lacks %q", st.name, body, st.wantField)
		}
	}

	got := consumeOrders(t, s.brokers, 1)
	want := []order{{User: "u1", Lines: []cartLine{{SKU: "sku-1", Quantity: 2}, {SKU: "sku-2", Quantity: 1}}, TotalCents: 2*1200 + 3400}}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
		f := p.Last().String()
		return f == ".ID" || f == ".Charge" || f == ".Time"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("orders in Kafka (-want +got):\n%s", diff)
	}
	if len(got) == 1 && (!strings.HasPrefix(got[0].ID, "ord_") || !strings.HasPrefix(got[0].Charge, "ch_")) {
		t.Errorf("order %+v: want an ord_ id and a ch_ charge", got[0])
	}
}

func consumeOrders(t *testing.T, brokers []string, n int) []order {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(ordersTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []order
	for len(out) < n && ctx.Err() == nil {
		c.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var o order
			if err := json.Unmarshal(r.Value, &o); err != nil {
				t.Errorf("record %q: %v", r.Value, err)
			}
			out = append(out, o)
		})
	}
	return out
}

// TestLoadgen drives the stack for a while and checks that the traffic has
// the mix of answers the demo promises, and no transport errors.
func TestLoadgen(t *testing.T) {
	if testing.Short() {
		t.Skip("drives traffic for 3 s")
	}
	s := startStack(t)
	lg := &loadgen{target: s.front.URL, client: &http.Client{Timeout: 5 * time.Second}, resolver: net.DefaultResolver, stats: newLoadStats()}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	lg.drive(ctx, 100, 8)

	st := lg.stats
	// Every tick is a request or a counted skip (all workers busy): on a busy
	// machine the split varies, the sum does not.
	if ticks := st.Sent + st.Skipped; ticks < 250 || ticks > 301 {
		t.Errorf("sent %d + skipped %d = %d ticks in 3 s at 100/s, want about 300", st.Sent, st.Skipped, ticks)
	}
	if st.Sent < 50 {
		t.Errorf("sent %d requests in 3 s, want at least 50", st.Sent)
	}
	for _, code := range []string{"200", "404", "500"} {
		if st.Status[code] == 0 {
			t.Errorf("no %s among %v", code, st.Status)
		}
	}
	if st.Status["error"] > 0 {
		t.Errorf("%d transport errors: %v", st.Status["error"], st.Status)
	}
	if got := st.Routes["item-missing"]; len(got) != 1 || got["404"] == 0 {
		t.Errorf("item-missing answers %v, want only 404s", got)
	}
}

func TestPickCallWeights(t *testing.T) {
	total := 0
	for _, c := range calls {
		total += c.weight
	}
	r := newTestRand()
	counts := map[string]int{}
	const n = 100_000
	for range n {
		counts[pickCall(r).name]++
	}
	for _, c := range calls {
		want := float64(n) * float64(c.weight) / float64(total)
		if got := float64(counts[c.name]); got < want*0.9 || got > want*1.1 {
			t.Errorf("%s drawn %v times in %d, want about %.0f", c.name, got, n, want)
		}
	}
}

func TestCerts(t *testing.T) {
	dir := t.TempDir()
	if err := runCerts(context.Background(), []string{"-out", dir, "-namespace", "shop"}); err != nil {
		t.Fatal(err)
	}
	pool, err := loadCAPool(filepath.Join(dir, caCertFile))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := loadServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"secure", "secure.shop.svc", "secure.shop.svc.cluster.local"} {
		if _, err := cert.Leaf.Verify(x509VerifyOptions(pool, host)); err != nil {
			t.Errorf("certificate for %s: %v", host, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509VerifyOptions(pool, "secure.demo.svc")); err == nil {
		t.Error("a certificate for the namespace shop is valid for demo")
	}
	key, err := os.Stat(filepath.Join(dir, serverKeyFile))
	if err != nil || key.Mode().Perm() != 0o600 {
		t.Errorf("tls.key: %v, mode %v; want 0600", err, key.Mode().Perm())
	}
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func x509VerifyOptions(roots *x509.CertPool, host string) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: roots, DNSName: host}
}
