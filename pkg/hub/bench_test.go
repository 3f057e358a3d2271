package hub_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// BenchmarkRelay measures the hub relaying entries from one worker to one
// subscriber over real loopback WebSockets (TLS on the worker side): the
// worker sends batches of 100 entries, with at most 16 batches in flight so
// that nothing is dropped; the subscriber counts the entry messages
// without decoding them. One op is one entry.
func BenchmarkRelay(b *testing.B) {
	for _, bc := range []struct{ name, filter string }{
		{"all", ""},
		{"filtered", `proto == "http" && int(status) < 500`},
	} {
		b.Run(bc.name, func(b *testing.B) { benchRelay(b, bc.filter) })
	}
}

func benchRelay(b *testing.B, expr string) {
	const batch, window = 100, 16
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := hub.NewOptions()
	opts.SubscriberQueue = 8192
	opts.Logger = slog.New(slog.DiscardHandler)
	h := hubtest.Start(b, opts)
	w, err := h.DialWorker(ctx, wire.Hello{Node: "n1", Worker: "w1"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	sub := dialRaw(ctx, b, h, expr)
	defer sub.Close()
	if err := w.WaitFilter(ctx, expr); err != nil {
		b.Fatal(err)
	}

	es := make([]entry.Entry, batch)
	for i := range es {
		es[i] = httpEntry("e", "10.0.0.1", "10.0.0.2")
	}
	msg, err := wire.Marshal(wire.TypeEntries, wire.Entries{Entries: es})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg) / batch))
	b.ReportAllocs()

	batches := (b.N + batch - 1) / batch
	total := batches * batch
	slots := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		prefix := []byte(`{"v":1,"type":"entry"`)
		n := 0
		for n < total {
			_, m, err := sub.ReadMessage()
			if err != nil {
				done <- err
				return
			}
			if !bytes.HasPrefix(m, prefix) {
				continue
			}
			if n++; n%batch == 0 {
				<-slots
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	start := time.Now()
	for range batches {
		slots <- struct{}{}
		if err := w.SendRaw(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "entries/s")
}

// dialRaw subscribes with a bare WebSocket and waits for the filter ack.
func dialRaw(ctx context.Context, b *testing.B, h *hubtest.Hub, expr string) *websocket.Conn {
	hdr := http.Header{}
	wire.SetToken(hdr, h.PKI.Token)
	u := url.URL{Scheme: "ws", Host: h.APIAddr, Path: wire.PathSubscribe, RawQuery: url.Values{"filter": {expr}}.Encode()}
	c, _, err := websocket.DefaultDialer.DialContext(ctx, u.String(), hdr)
	if err != nil {
		b.Fatal(err)
	}
	_, m, err := c.ReadMessage()
	if err != nil || !bytes.Contains(m, []byte(`"type":"filter"`)) {
		b.Fatalf("first message %s, %v", m, err)
	}
	return c
}
