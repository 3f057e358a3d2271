package http2

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"golang.org/x/net/http2"
)

func TestDetect(t *testing.T) {
	cli, srv := newFrames(), newFrames()
	serverStart := srv.settings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}).take()
	serverStart = append(serverStart, srv.take()...)
	must(srv.fr.WriteWindowUpdate(0, 1<<20))
	must(srv.fr.WriteSettingsAck())
	serverStart = append(serverStart, srv.take()...)

	request := cli.headers(5, false, ":method", "POST", ":scheme", "http", ":path", "/a.B/C", ":authority", "x").
		data(5, true, grpcMsg([]byte{0x0a, 0x01, 'x'})).take()
	response := srv.headers(5, false, ":status", "200", "content-type", "application/grpc").
		data(5, false, grpcMsg(nil)).take()
	pushed := srv.headers(2, false, ":status", "200").data(2, true, []byte("x")).take()
	unclear := srv.data(7, false, []byte("abc")).data(7, false, []byte("def")).take()
	onlySettings := newFrames().settings().take()
	loneRequest := cli.headers(9, true, ":method", "GET", ":scheme", "http", ":path", "/api/items/42", ":authority", "x").take()
	loneResponse := srv.headers(9, false, ":status", "200", "content-length", "62").take()
	loneUnclear := srv.headers(9, false, "content-type", "text/plain").take()

	tls := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99}
	tests := []struct {
		name       string
		in         []byte
		v          dissect.Verdict
		fromClient bool
	}{
		{"preface", []byte(clientPreface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"), dissect.Yes, true},
		{"part of the preface", []byte("PRI * HT"), dissect.Maybe, true},
		{"nothing yet", nil, dissect.Maybe, true},
		{"server connection start", serverStart, dissect.Yes, false},
		{"one frame so far", onlySettings, dissect.Maybe, false},
		{"requests mid-connection", request, dissect.Yes, true},
		{"responses mid-connection", response, dissect.Yes, false},
		{"push stream", pushed, dissect.Yes, false},
		{"a request alone in its segment", loneRequest, dissect.Yes, true},
		{"a response alone in its segment", loneResponse, dissect.Yes, false},
		{"a lone header block that does not tell", loneUnclear, dissect.Maybe, false},
		{"a lone request cut short", loneRequest[:len(loneRequest)-1], dissect.Maybe, false},
		{"frames that do not tell", unclear, dissect.Yes, false},
		{"starts mid-frame", append([]byte{0x13, 0x37, 0x00, 0x42, 0x99}, request...), dissect.Yes, true},
		{"HTTP/1.1", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), dissect.No, false},
		{"PRI as HTTP/1", []byte("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), dissect.No, false},
		{"TLS", tls, dissect.No, false},
		// Python's (OpenSSL 3) ClientHello, recorded: its extensions once
		// chained into plausible frame headers.
		{"a TLS ClientHello", pythonHello(t), dissect.No, false},
		{"redis", []byte("*1\r\n$4\r\nPING\r\n"), dissect.No, false},
		{"zeros", make([]byte, 4096), dissect.No, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, fromClient := Detect(tt.in)
			if v != tt.v || fromClient != tt.fromClient {
				t.Errorf("Detect = %v, %v; want %v, %v", v, fromClient, tt.v, tt.fromClient)
			}
		})
	}
}

func pythonHello(t *testing.T) []byte {
	b, err := os.ReadFile("testdata/python-clienthello.bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDetectRandom checks that random bytes are not taken for frames.
func TestDetectRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	yes := 0
	for i := 0; i < 500; i++ {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		if v, _ := Detect(buf); v == dissect.Yes {
			yes++
		}
	}
	if yes > 0 {
		t.Errorf("%d of 500 random 4 KiB buffers detected as HTTP/2", yes)
	}
}

// TestDetectRealMidStream detects real connections from arbitrary points.
func TestDetectRealMidStream(t *testing.T) {
	rec := recordGRPC(t)
	for d, want := range []bool{true, false} {
		b := rec.bytes(dissect.Dir(d))
		for cut := 30; cut < len(b)-200; cut += 13 {
			window := b[cut:min(len(b), cut+4096)]
			v, fromClient := Detect(window)
			if v != dissect.Yes {
				t.Errorf("dir %d cut %d: %v", d, cut, v)
			} else if fromClient != want && hintOf(window) != roleUnknown {
				t.Errorf("dir %d cut %d: fromClient %v", d, cut, fromClient)
			}
		}
	}
}

// hintOf is the role the frames of b show, past the first frame found.
func hintOf(b []byte) role {
	off, _ := findSync(b, detectScan)
	b = b[off:]
	return fromClientHint(b[min(len(b), frameHeaderLen+int(parseFrameHeader(b).length)):])
}

func BenchmarkDetect(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for j := range buf {
		buf[j] = byte(r.Uint32())
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		Detect(buf)
	}
}

// TestMidstreamOneFrameEachWay: a capture that begins between exchanges,
// on a port HTTP/2 does not list, where each request and each response
// comes alone in its segment before the other side sends more, is HTTP/2
// (it was summarised as unknown TCP).
func TestMidstreamOneFrameEachWay(t *testing.T) {
	cli, srv := newFrames(), newFrames()
	reg := dissect.NewRegistry(dissect.DefaultOptions(), Protocol())
	out := &collector{}
	h := reg.NewConn(dissect.FlowInfo{
		Transport: "tcp",
		A:         netip.MustParseAddrPort("127.0.0.1:52938"),
		B:         netip.MustParseAddrPort("127.0.0.1:8082"),
		ID:        "f1",
	}, out, nil)
	ts := time.Unix(1700000000, 0)
	paths := []string{"/api/items/42", "/api/items", "/healthz"}
	for i, path := range paths {
		id := uint32(9 + 2*i)
		h.Data(true, cli.headers(id, true, ":method", "GET", ":scheme", "http", ":path", path, ":authority", "127.0.0.1:8082").take(), ts)
		h.Data(false, srv.headers(id, false, ":status", "200", "content-length", "2").take(), ts)
		h.Data(false, srv.data(id, true, []byte("ok")).take(), ts)
		ts = ts.Add(time.Millisecond)
	}
	h.End(ts, "fin")
	if h.Proto() != entry.ProtoHTTP2 {
		t.Fatalf("proto %q, want http2", h.Proto())
	}
	var got []string
	for _, e := range out.entries {
		got = append(got, fmt.Sprintf("%s %s %s :%d", e.Method, e.Path, e.Status, e.Src.Port))
	}
	want := []string{"GET /api/items/42 200 :52938", "GET /api/items 200 :52938", "GET /healthz 200 :52938"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}
