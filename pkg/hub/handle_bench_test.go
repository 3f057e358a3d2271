package hub

import (
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// BenchmarkHandleEntries measures the hub's CPU per entry, without the
// network: decoding a batch of 100, enriching, filtering for one
// subscriber, encoding and queueing. One op is one entry.
func BenchmarkHandleEntries(b *testing.B) {
	for _, bc := range []struct{ name, expr string }{
		{"all", ""},
		{"filtered", `proto == "http" && int(status) < 500 && src.workload == "front"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, err := newServer(Options{APIAddr: ":0", WorkerAddr: ":0", Token: "t"})
			if err != nil {
				b.Fatal(err)
			}
			m, _ := wire.IPMap{
				"10.0.0.1": {Pod: "front-1", Namespace: "shop", Workload: "front"},
				"10.0.0.2": {Pod: "cart-1", Namespace: "shop", Service: "cart", Workload: "cart"},
			}.Normalize()
			h.ipmap.Store(&m)
			sub := &subscriber{h: h, entries: make(chan []byte, 1<<20), done: make(chan struct{})}
			sub.filter.Store(filter.MustCompile(bc.expr))
			h.subs.Store(&[]*subscriber{sub})
			w := &workerConn{h: h, name: "w", done: make(chan struct{}), encHint: 1024}

			es := make([]entry.Entry, 100)
			for i := range es {
				es[i] = entry.Entry{
					V: entry.Version, ID: "e", Proto: entry.ProtoHTTP, Method: "GET", Path: "/api/items", Status: "200",
					Src: entry.Endpoint{IP: "10.0.0.1", Port: 41000}, Dst: entry.Endpoint{IP: "10.0.0.2", Port: 8080},
					Source: entry.SourceAFPacket, FlowID: "f",
					HTTP: &entry.HTTP{Version: "1.1",
						Request:  &entry.HTTPRequest{Method: "GET", Target: "/api/items", Headers: map[string]string{"user-agent": "curl/8.5.0", "accept": "*/*"}},
						Response: &entry.HTTPResponse{Status: 200, Reason: "OK", Headers: map[string]string{"content-type": "application/json"}}},
				}
			}
			msg, err := wire.Marshal(wire.TypeEntries, wire.Entries{Entries: es})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(msg) / len(es)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += len(es) {
				if err := w.handle(msg); err != nil {
					b.Fatal(err)
				}
				for len(sub.entries) > 0 {
					<-sub.entries
				}
			}
			b.StopTimer()
			if h.out.Load() == 0 {
				b.Fatal("nothing relayed")
			}
		})
	}
}
