package http2

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

const gzipText = "compressed body, "

// h2cMux serves the endpoints the HTTP/2 tests call.
func h2cMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello world")
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/plain")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, strings.Repeat(gzipText, 100))
		zw.Close()
	})
	mux.HandleFunc("GET /trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body with trailers")
		w.Header().Set("X-Checksum", "abc123")
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16))
	})
	mux.HandleFunc("GET /binary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte{0xff, 0xfe, 0x00, 0x01})
	})
	mux.HandleFunc("GET /hang", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	return mux
}

// serveH2C serves mux with h2c (prior knowledge and Upgrade) on a tapped
// listener.
func serveH2C(t testing.TB) *tapListener {
	t.Helper()
	l := listen(t)
	srv := &http.Server{Handler: h2c.NewHandler(h2cMux(), &http2.Server{})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l
}

// h2cClient is an HTTP/2 client speaking cleartext with prior knowledge.
func h2cClient() (*http.Client, *http2.Transport) {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, tr
}

// recordH2C runs the standard client session against a real h2c server
// and returns the server side's recording.
func recordH2C(t testing.TB) recording {
	t.Helper()
	l := serveH2C(t)
	client, tr := h2cClient()
	base := "http://" + l.Addr().String()
	do := func(method, path, body string, hdr ...string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body == "" {
			req.Body = nil
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do("GET", "/hello", "", "Authorization", "Bearer secret", "Cookie", "a=1", "Cookie", "b=2")
	do("POST", "/echo", `{"name":"alice"}`, "Content-Type", "application/json")
	do("GET", "/gzip", "", "Accept-Encoding", "gzip")
	do("GET", "/trailers", "")
	do("GET", "/missing", "")
	do("GET", "/big", "")
	do("GET", "/binary", "")
	// A request the client gives up on: it resets the stream.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/hang", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	do("GET", "/hello", "")
	tr.CloseIdleConnections()
	return l.recordings(t, 1)[0]
}

// view is the part of an entry the HTTP/2 tests check.
type view struct {
	Proto, Method, Path, Status, Error string
	Stream                             uint32
	Authority                          string
	ReqHeaders, RespHeaders            map[string]string
	ReqBody, RespBody                  entry.Body
	RespTrailers                       map[string]string
}

func viewOf(e *entry.Entry, headers ...string) view {
	v := view{Proto: e.Proto, Method: e.Method, Path: e.Path, Status: e.Status, Error: e.Error}
	if e.HTTP == nil {
		return v
	}
	v.Stream = e.HTTP.Stream
	pick := func(m map[string]string) map[string]string {
		var out map[string]string
		for _, h := range headers {
			if x, ok := m[h]; ok {
				if out == nil {
					out = map[string]string{}
				}
				out[h] = x
			}
		}
		return out
	}
	if r := e.HTTP.Request; r != nil {
		v.Authority = r.Authority
		v.ReqHeaders = pick(r.Headers)
		v.ReqBody = r.Body
	}
	if r := e.HTTP.Response; r != nil {
		v.RespHeaders = pick(r.Headers)
		v.RespBody = r.Body
		v.RespTrailers = r.Trailers
	}
	return v
}

func TestNetHTTPH2C(t *testing.T) {
	rec := recordH2C(t)
	opts := dissect.DefaultOptions()
	got := replay(rec, opts, plainParser, whole)
	var views []view
	for _, e := range byStream(got) {
		v := viewOf(e, "authorization", "cookie", "content-type", "content-encoding")
		v.Authority = strings.Split(v.Authority, ":")[0]
		if v.RespBody.Size > 1000 {
			v.RespBody.Data = v.RespBody.Data[:10] // the size says enough
		}
		views = append(views, v)
	}
	big := entry.Body{Size: 100 << 10, Truncated: true, Data: "0123456789"}
	gz := entry.Body{Data: strings.Repeat(gzipText, 100), Decoded: "gzip"}
	want := []view{
		{Proto: "http2", Method: "GET", Path: "/hello", Status: "200", Stream: 1, Authority: "127.0.0.1",
			ReqHeaders:  map[string]string{"authorization": entry.Redacted, "cookie": entry.Redacted},
			RespHeaders: map[string]string{"content-type": "text/plain"},
			RespBody:    entry.Body{Size: 11, Data: "hello world"}},
		{Proto: "http2", Method: "POST", Path: "/echo", Status: "200", Stream: 3, Authority: "127.0.0.1",
			ReqHeaders:  map[string]string{"content-type": "application/json"},
			RespHeaders: map[string]string{"content-type": "application/json"},
			ReqBody:     entry.Body{Size: 16, Data: `{"name":"alice"}`},
			RespBody:    entry.Body{Size: 16, Data: `{"name":"alice"}`}},
		{Proto: "http2", Method: "GET", Path: "/gzip", Status: "200", Stream: 5, Authority: "127.0.0.1",
			RespHeaders: map[string]string{"content-encoding": "gzip", "content-type": "text/plain"},
			RespBody:    gz},
		{Proto: "http2", Method: "GET", Path: "/trailers", Status: "200", Stream: 7, Authority: "127.0.0.1",
			RespHeaders:  map[string]string{"content-type": "text/plain; charset=utf-8"},
			RespBody:     entry.Body{Size: 18, Data: "body with trailers"},
			RespTrailers: map[string]string{"x-checksum": "abc123"}},
		{Proto: "http2", Method: "GET", Path: "/missing", Status: "404", Stream: 9, Authority: "127.0.0.1",
			RespHeaders: map[string]string{"content-type": "text/plain; charset=utf-8"},
			RespBody:    entry.Body{Size: 19, Data: "404 page not found\n"}},
		{Proto: "http2", Method: "GET", Path: "/big", Status: "200", Stream: 11, Authority: "127.0.0.1",
			RespHeaders: map[string]string{"content-type": "text/plain; charset=utf-8"},
			RespBody:    big},
		{Proto: "http2", Method: "GET", Path: "/binary", Status: "200", Stream: 13, Authority: "127.0.0.1",
			RespHeaders: map[string]string{"content-type": "application/octet-stream"},
			RespBody:    entry.Body{Size: 4, Encoding: "base64", Data: "//4AAQ=="}},
		{Proto: "http2", Method: "GET", Path: "/hang", Status: "202", Error: "RST_STREAM CANCEL", Stream: 15, Authority: "127.0.0.1"},
		{Proto: "http2", Method: "GET", Path: "/hello", Status: "200", Stream: 17, Authority: "127.0.0.1",
			RespHeaders: map[string]string{"content-type": "text/plain"},
			RespBody:    entry.Body{Size: 11, Data: "hello world"}},
	}
	// The gzip body's wire size depends on the compressor.
	for i := range views {
		if views[i].Path == "/gzip" {
			views[i].RespBody.Size = 0
		}
	}
	if diff := cmp.Diff(want, views); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	for _, e := range got {
		if e.Src.IP != cliAddr.Addr().String() || e.Dst.Port != int(srvAddr.Port()) || e.HTTP.Version != "2" {
			t.Errorf("stream %d: src %v dst %v version %q", e.HTTP.Stream, e.Src, e.Dst, e.HTTP.Version)
		}
		if e.Size.Request <= 0 || e.Size.Response <= 0 && e.HTTP.Stream != 15 {
			t.Errorf("stream %d: size %+v", e.HTTP.Stream, e.Size)
		}
	}
}

// TestNetHTTPChunkings checks that how the bytes are split into Data calls
// changes nothing.
func TestNetHTTPChunkings(t *testing.T) {
	rec := recordH2C(t)
	opts := dissect.DefaultOptions()
	want := replay(rec, opts, plainParser, whole)
	if len(want) != 9 {
		t.Fatalf("%d entries, want 9", len(want))
	}
	for name, ch := range chunkings() {
		t.Run(name, func(t *testing.T) {
			got := replay(rec, opts, plainParser, ch)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("entries (-whole +%s):\n%s", name, diff)
			}
		})
	}
}
