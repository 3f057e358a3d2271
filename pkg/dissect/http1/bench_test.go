package http1

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// BenchmarkKeepAlive runs 10k small GET exchanges of one keep-alive
// connection through the parser, one Data call per message, as a
// reassembler delivers them.
func BenchmarkKeepAlive(b *testing.B) {
	const exchanges = 10_000
	reqs := make([][]byte, 16)
	resps := make([][]byte, 16)
	for i := range reqs {
		reqs[i] = []byte("GET /api/v1/items/" + strconv.Itoa(1000+i) + "?fields=name,price HTTP/1.1\r\n" +
			"Host: catalog.shop.svc.cluster.local:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
			"Accept: application/json\r\nX-Request-Id: 8c6f1f3e-2b1d-4c1a-9f3e-" + strconv.Itoa(100000+i) + "\r\n" +
			"Accept-Encoding: gzip\r\n\r\n")
		body := `{"id":` + strconv.Itoa(1000+i) + `,"name":"widget","price":12.5,"stock":42}`
		resps[i] = []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
			"Date: Sat, 01 Mar 2025 12:00:00 GMT\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	}
	var perIter int64
	for i := range exchanges {
		perIter += int64(len(reqs[i%16]) + len(resps[i%16]))
	}
	conn := testConn(dissect.DefaultOptions())
	proto := Protocol()
	n := 0
	emit := dissect.EmitFunc(func(*entry.Entry) { n++ })

	b.SetBytes(perIter)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		p := proto.NewStream(conn, emit)
		for i := range exchanges {
			ts := t0.Add(time.Duration(i) * time.Millisecond)
			p.Data(dissect.ClientToServer, reqs[i%16], ts)
			p.Data(dissect.ServerToClient, resps[i%16], ts.Add(300 * time.Microsecond))
		}
		p.End(t0)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	if n != b.N*exchanges {
		b.Fatalf("%d entries for %d exchanges", n, b.N*exchanges)
	}
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n), "allocs/entry")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n), "B/entry")
}

