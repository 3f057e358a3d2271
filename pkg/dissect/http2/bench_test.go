package http2

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// recordH2Bench records a real h2c connection with a realistic mix: small
// GETs, JSON POSTs of a few KiB, and some 64 KiB downloads.
func recordH2Bench(b *testing.B) recording {
	l := serveH2C(b)
	client, tr := h2cClient()
	base := "http://" + l.Addr().String()
	body := `{"items":[` + strings.Repeat(`{"id":12345,"name":"widget","tags":["a","b"]},`, 60) + `{}]}`
	for i := 0; i < 200; i++ {
		var resp *http.Response
		var err error
		switch {
		case i%10 == 9:
			resp, err = client.Get(base + "/big")
		case i%3 == 0:
			resp, err = client.Post(base+"/echo", "application/json", strings.NewReader(body))
		default:
			resp, err = client.Get(base + "/hello")
		}
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tr.CloseIdleConnections()
	return l.recordings(b, 1)[0]
}

// recordGRPCUnary records 500 unary calls on one gRPC connection.
func recordGRPCUnary(b *testing.B) recording {
	l := serveGRPC(b)
	conn := dialGRPC(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 500; i++ {
		if err := conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String("user-"+strings.Repeat("x", i%50)), new(wrapperspb.StringValue)); err != nil {
			b.Fatal(err)
		}
	}
	conn.Close()
	return l.recordings(b, 1)[0]
}

type counter struct{ n int }

func (c *counter) Emit(*entry.Entry) { c.n++ }

// benchReplay parses rec once per iteration, chunk by chunk as recorded.
func benchReplay(b *testing.B, rec recording, want int) {
	opts := dissect.DefaultOptions()
	conn := testConn(opts)
	b.SetBytes(int64(rec.size()))
	b.ReportAllocs()
	for b.Loop() {
		var c counter
		p := newParser(conn, &c)
		for _, ch := range rec {
			p.Data(ch.dir, ch.data, t0)
		}
		p.End(t0)
		if c.n != want {
			b.Fatalf("%d entries, want %d", c.n, want)
		}
	}
}

func BenchmarkH2(b *testing.B) {
	benchReplay(b, recordH2Bench(b), 200)
}

func BenchmarkGRPCUnary(b *testing.B) {
	benchReplay(b, recordGRPCUnary(b), 500)
}

// BenchmarkH2Download is DATA-bound: 64 KiB bodies.
func BenchmarkH2Download(b *testing.B) {
	c := newConv()
	for id := uint32(1); id < 200; id += 2 {
		c.get(id, "/big")
		c.srv.headers(id, false, ":status", "200", "content-type", "application/octet-stream")
		for i := 0; i < 4; i++ {
			c.srv.data(id, i == 3, bytes.Repeat([]byte{byte(i)}, 16384))
		}
		c.send()
	}
	benchReplay(b, c.rec, 100)
}
