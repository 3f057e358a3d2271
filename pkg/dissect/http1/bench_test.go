package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

const benchExchanges = 10_000

// benchMessages returns 16 small GET requests and their JSON responses, as
// a Go client and server in a cluster send them.
func benchMessages() (reqs, resps [][]byte, perRun int64) {
	for i := range 16 {
		reqs = append(reqs, []byte("GET /api/v1/items/"+strconv.Itoa(1000+i)+"?fields=name,price HTTP/1.1\r\n"+
			"Host: catalog.shop.svc.cluster.local:8080\r\nUser-Agent: Go-http-client/1.1\r\n"+
			"Accept: application/json\r\nX-Request-Id: 8c6f1f3e-2b1d-4c1a-9f3e-"+strconv.Itoa(100000+i)+"\r\n"+
			"Accept-Encoding: gzip\r\n\r\n"))
		body := `{"id":` + strconv.Itoa(1000+i) + `,"name":"widget","price":12.5,"stock":42}`
		resps = append(resps, []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"+
			"Date: Sat, 01 Mar 2025 12:00:00 GMT\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body))
	}
	for i := range benchExchanges {
		perRun += int64(len(reqs[i%16]) + len(resps[i%16]))
	}
	return reqs, resps, perRun
}

// BenchmarkKeepAlive runs 10k small GET exchanges of one keep-alive
// connection through the parser, one Data call per message, as a
// reassembler delivers them.
func BenchmarkKeepAlive(b *testing.B) {
	reqs, resps, perRun := benchMessages()
	conn := testConn(dissect.DefaultOptions())
	proto := Protocol()
	n := 0
	emit := dissect.EmitFunc(func(*entry.Entry) { n++ })

	b.SetBytes(perRun)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		p := proto.NewStream(conn, emit)
		for i := range benchExchanges {
			ts := t0.Add(time.Duration(i) * time.Millisecond)
			p.Data(dissect.ClientToServer, reqs[i%16], ts)
			p.Data(dissect.ServerToClient, resps[i%16], ts.Add(300*time.Microsecond))
		}
		p.End(t0)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	if n != b.N*benchExchanges {
		b.Fatalf("%d entries for %d exchanges", n, b.N*benchExchanges)
	}
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(n), "allocs/entry")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n), "B/entry")
}

// BenchmarkNetHTTPReference reads the same exchanges with net/http, as a
// yardstick for BenchmarkKeepAlive on a machine of unknown speed.
func BenchmarkNetHTTPReference(b *testing.B) {
	reqs, resps, perRun := benchMessages()
	var rq, rs bytes.Buffer
	for i := range benchExchanges {
		rq.Write(reqs[i%16])
		rs.Write(resps[i%16])
	}
	b.SetBytes(perRun)
	b.ReportAllocs()
	for b.Loop() {
		rqr := bufio.NewReader(bytes.NewReader(rq.Bytes()))
		rsr := bufio.NewReader(bytes.NewReader(rs.Bytes()))
		for range benchExchanges {
			req, err := http.ReadRequest(rqr)
			if err != nil {
				b.Fatal(err)
			}
			resp, err := http.ReadResponse(rsr, req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
		}
	}
}
