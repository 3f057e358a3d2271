package http2

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// recordGRPCPhases records one gRPC connection in two phases and returns
// the index of the first chunk of the second: cutting there is a capture
// that starts between calls on a long-lived connection.
func recordGRPCPhases(t testing.TB) (recording, int) {
	t.Helper()
	l := serveGRPC(t)
	conn := dialGRPC(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unary := func(name string) {
		t.Helper()
		if err := conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String(name), new(wrapperspb.StringValue)); err != nil {
			t.Fatal(err)
		}
	}
	unary("alice")
	unary("bob")
	count, err := conn.NewStream(ctx, &echoDesc.Streams[0], "/test.Echo/Count")
	if err != nil {
		t.Fatal(err)
	}
	must(count.SendMsg(wrapperspb.UInt32(2)))
	must(count.CloseSend())
	for count.RecvMsg(new(wrapperspb.UInt32Value)) == nil {
	}
	time.Sleep(50 * time.Millisecond) // let window updates and pings settle
	l.mu.Lock()
	tp := l.taps[0]
	l.mu.Unlock()
	tp.mu.Lock()
	boundary := len(tp.chunks)
	tp.mu.Unlock()

	chat, err := conn.NewStream(ctx, &echoDesc.Streams[1], "/test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	must(chat.SendMsg(wrapperspb.String("hi")))
	must(chat.RecvMsg(new(wrapperspb.StringValue)))
	must(chat.CloseSend())
	for chat.RecvMsg(new(wrapperspb.StringValue)) == nil {
	}
	unary("carol")
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	unary("dave")
	conn.Close()
	return l.recordings(t, 1)[0], boundary
}

// TestMidStreamGRPC starts the capture between calls. Only fields that
// reference HPACK entries added before the capture are lost: a new method
// is decoded, a repeated one is not, and nothing is guessed.
func TestMidStreamGRPC(t *testing.T) {
	rec, boundary := recordGRPCPhases(t)
	full := replay(rec, dissect.DefaultOptions(), plainParser, whole)
	if len(full) != 7 {
		t.Fatalf("full capture: %d entries, want 7", len(full))
	}
	got := replay(rec[boundary:], dissect.DefaultOptions(), plainParser, whole)
	var views []grpcView
	for _, e := range byStream(got) {
		v := grpcViewOf(e)
		v.GRPC.Messages = nil
		views = append(views, v)
	}
	// After the cut, :method POST and :scheme are static, a path not used
	// before is a new literal, and everything else (content-type,
	// :authority, user-agent, te, grpc-status 0 in trailers) references
	// entries the first calls added: Status stays unknown.
	want := []grpcView{
		{Proto: "grpc", Method: "POST", Path: "/test.Echo/Chat", Error: whyMid, Stream: 7,
			GRPC: entry.GRPC{Service: "test.Echo", Method: "Chat", Code: -1, RequestMessages: 1, ResponseMessages: 1}},
		{Proto: "grpc", Method: "POST", Error: whyMid, Stream: 9,
			GRPC: entry.GRPC{Code: -1, RequestMessages: 1, ResponseMessages: 1}},
		{Proto: "grpc", Method: "POST", Path: "/grpc.health.v1.Health/Check", Error: whyMid, Stream: 11,
			GRPC: entry.GRPC{Service: "grpc.health.v1.Health", Method: "Check", Code: -1, RequestMessages: 1, ResponseMessages: 1}},
		{Proto: "grpc", Method: "POST", Error: whyMid, Stream: 13,
			GRPC: entry.GRPC{Code: -1, RequestMessages: 1, ResponseMessages: 1}},
	}
	if diff := cmp.Diff(want, views); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	checkConsistent(t, "boundary", full, got)
}

// TestMidStreamSweep starts the capture at every few bytes of real
// connections, mid-frame included. Whatever decodes must match the full
// capture: nothing may be mis-decoded, and what is missing is marked.
func TestMidStreamSweep(t *testing.T) {
	grpcRec, _ := recordGRPCPhases(t)
	for name, rec := range map[string]recording{"h2c": recordH2C(t), "grpc": grpcRec} {
		t.Run(name, func(t *testing.T) {
			full := replay(rec, dissect.DefaultOptions(), plainParser, whole)
			total := rec.size()
			decoded := 0
			// Every few bytes through the heads; big bodies need fewer.
			step := max(7, total/3000)
			for cut := 1; cut < total; cut += step {
				got := replay(cutRecording(rec, cut), dissect.DefaultOptions(), plainParser, whole)
				decoded += checkConsistent(t, "cut "+itoa(cut), full, got)
			}
			if decoded == 0 {
				t.Error("no cut decoded any request")
			}
		})
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// cutRecording drops the first n bytes of the recording, in capture order.
func cutRecording(rec recording, n int) recording {
	var out recording
	for _, c := range rec {
		k := min(n, len(c.data))
		n -= k
		if k < len(c.data) {
			out = append(out, chunk{dir: c.dir, data: c.data[k:]})
		}
	}
	return out
}

// checkConsistent checks entries of a partial capture against those of the
// full one, by stream, and returns how many had a decoded path.
func checkConsistent(t *testing.T, label string, full, part []*entry.Entry) int {
	t.Helper()
	byID := map[uint32]*entry.Entry{}
	for _, e := range full {
		byID[streamID(e)] = e
	}
	decoded := 0
	for _, e := range part {
		f := byID[streamID(e)]
		if f == nil {
			t.Errorf("%s: stream %d not in the full capture", label, streamID(e))
			continue
		}
		same := func(what, got, want string) {
			if got != "" && got != want {
				t.Errorf("%s: stream %d: %s %q, full capture has %q", label, streamID(e), what, got, want)
			}
		}
		same("method", e.Method, f.Method)
		same("path", e.Path, f.Path)
		if e.Proto == f.Proto {
			same("status", e.Status, f.Status)
		} else if e.Error == "" {
			t.Errorf("%s: stream %d: proto %s, full capture has %s", label, streamID(e), e.Proto, f.Proto)
		}
		if e.HTTP.Response != nil && e.HTTP.Response.Status != 0 && e.HTTP.Response.Status != f.HTTP.Response.Status {
			t.Errorf("%s: stream %d: HTTP status %d, full capture has %d", label, streamID(e), e.HTTP.Response.Status, f.HTTP.Response.Status)
		}
		if e.Path != "" {
			decoded++
		}
		var lost bool
		if e.HTTP.Request != nil {
			r, fr := e.HTTP.Request, f.HTTP.Request
			same("authority", r.Authority, fr.Authority)
			lost = subset(t, label, e, "request header", r.Headers, fr.Headers) || lost
			lost = subset(t, label, e, "request trailer", r.Trailers, fr.Trailers) || lost
		}
		if e.HTTP.Response != nil {
			r, fr := e.HTTP.Response, f.HTTP.Response
			lost = subset(t, label, e, "response header", r.Headers, fr.Headers) || lost
			lost = subset(t, label, e, "response trailer", r.Trailers, fr.Trailers) || lost
		}
		if lost && e.Error == "" {
			t.Errorf("%s: stream %d: headers missing without an error", label, streamID(e))
		}
		if e.GRPC != nil && f.GRPC != nil && (e.GRPC.RequestMessages > f.GRPC.RequestMessages || e.GRPC.ResponseMessages > f.GRPC.ResponseMessages) {
			t.Errorf("%s: stream %d: more messages than the full capture", label, streamID(e))
		}
	}
	return decoded
}

// subset checks that every header of got has the same value in want, and
// reports whether some of want's are missing.
func subset(t *testing.T, label string, e *entry.Entry, what string, got, want map[string]string) bool {
	t.Helper()
	for k, v := range got {
		if w, ok := want[k]; !ok || w != v {
			t.Errorf("%s: stream %d: %s %s=%q, full capture has %q", label, streamID(e), what, k, v, w)
		}
	}
	return len(got) < len(want)
}
