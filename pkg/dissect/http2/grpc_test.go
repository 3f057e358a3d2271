package http2

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// echoDesc is a hand-written gRPC service over well-known message types:
// Unary greets (or fails with NOT_FOUND), Count streams n numbers back,
// Chat echoes every message.
var echoDesc = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Unary", Handler: unaryHandler}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Count", Handler: countHandler, ServerStreams: true},
		{StreamName: "Chat", Handler: chatHandler, ServerStreams: true, ClientStreams: true},
	},
}

const notFoundMessage = "no such user: ünï 100%"

func unaryHandler(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	if in.Value == "missing" {
		return nil, status.Error(codes.NotFound, notFoundMessage)
	}
	return wrapperspb.String("hello " + in.Value), nil
}

func countHandler(_ any, stream grpc.ServerStream) error {
	in := new(wrapperspb.UInt32Value)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	for i := uint32(1); i <= in.Value; i++ {
		if err := stream.SendMsg(wrapperspb.UInt32(i)); err != nil {
			return err
		}
	}
	return nil
}

func chatHandler(_ any, stream grpc.ServerStream) error {
	for {
		in := new(wrapperspb.StringValue)
		err := stream.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.SendMsg(wrapperspb.String("echo " + in.Value)); err != nil {
			return err
		}
	}
}

// serveGRPC runs the echo and health services on a tapped listener.
func serveGRPC(t testing.TB) *tapListener {
	t.Helper()
	l := listen(t)
	srv := grpc.NewServer()
	srv.RegisterService(&echoDesc, struct{}{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l
}

func dialGRPC(t testing.TB, l *tapListener) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// grpcSession makes the standard calls of the gRPC tests on conn.
func grpcSession(t testing.TB, conn *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unary := func(name string) error {
		out := new(wrapperspb.StringValue)
		return conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String(name), out)
	}
	if err := unary("alice"); err != nil {
		t.Fatal(err)
	}
	count, err := conn.NewStream(ctx, &echoDesc.Streams[0], "/test.Echo/Count")
	if err != nil {
		t.Fatal(err)
	}
	must(count.SendMsg(wrapperspb.UInt32(3)))
	must(count.CloseSend())
	for n := 0; ; n++ {
		if err := count.RecvMsg(new(wrapperspb.UInt32Value)); err != nil {
			if !errors.Is(err, io.EOF) || n != 3 {
				t.Fatalf("Count: %d messages, %v", n, err)
			}
			break
		}
	}
	chat, err := conn.NewStream(ctx, &echoDesc.Streams[1], "/test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range strings.Fields("one two three four five") {
		must(chat.SendMsg(wrapperspb.String(w)))
		must(chat.RecvMsg(new(wrapperspb.StringValue)))
	}
	must(chat.CloseSend())
	if err := chat.RecvMsg(new(wrapperspb.StringValue)); !errors.Is(err, io.EOF) {
		t.Fatalf("Chat end: %v", err)
	}
	if err := unary("missing"); status.Code(err) != codes.NotFound {
		t.Fatalf("missing: %v", err)
	}
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	if err := unary("bob"); err != nil {
		t.Fatal(err)
	}
}

func recordGRPC(t testing.TB) recording {
	t.Helper()
	l := serveGRPC(t)
	conn := dialGRPC(t, l)
	grpcSession(t, conn)
	conn.Close()
	return l.recordings(t, 1)[0]
}

// grpcView is the part of a gRPC entry the tests check.
type grpcView struct {
	Proto, Method, Path, Status, Error string
	Stream                             uint32
	GRPC                               entry.GRPC
}

func grpcViewOf(e *entry.Entry) grpcView {
	v := grpcView{Proto: e.Proto, Method: e.Method, Path: e.Path, Status: e.Status, Error: e.Error, Stream: streamID(e)}
	if e.GRPC != nil {
		v.GRPC = *e.GRPC
	}
	return v
}

func msgs(dir string, fields ...string) []entry.GRPCMessage {
	var out []entry.GRPCMessage
	for _, f := range fields {
		// Every message here is field 1: an ASCII string, or a varint
		// below 128.
		size := 2
		if strings.HasPrefix(f, `1: "`) {
			size += len(f) - len(`1: ""`)
		}
		out = append(out, entry.GRPCMessage{Dir: dir, Size: size, Fields: f})
	}
	return out
}

func wantGRPC() []grpcView {
	ok := func(stream uint32, method string, reqs, resps int, m ...entry.GRPCMessage) grpcView {
		return grpcView{Proto: "grpc", Method: "POST", Path: "/test.Echo/" + method, Status: "OK", Stream: stream,
			GRPC: entry.GRPC{Service: "test.Echo", Method: method, Code: 0, Status: "OK",
				RequestMessages: reqs, ResponseMessages: resps, Messages: m}}
	}
	cat := func(parts ...[]entry.GRPCMessage) []entry.GRPCMessage {
		var out []entry.GRPCMessage
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	return []grpcView{
		ok(1, "Unary", 1, 1, cat(msgs("request", `1: "alice"`), msgs("response", `1: "hello alice"`))...),
		ok(3, "Count", 1, 3, cat(msgs("request", "1: 3"), msgs("response", "1: 1", "1: 2", "1: 3"))...),
		ok(5, "Chat", 5, 5, cat(
			msgs("request", `1: "one"`, `1: "two"`, `1: "three"`, `1: "four"`),
			msgs("response", `1: "echo one"`, `1: "echo two"`, `1: "echo three"`, `1: "echo four"`))...),
		{Proto: "grpc", Method: "POST", Path: "/test.Echo/Unary", Status: "NOT_FOUND", Stream: 7,
			GRPC: entry.GRPC{Service: "test.Echo", Method: "Unary", Code: 5, Status: "NOT_FOUND",
				Message: notFoundMessage, RequestMessages: 1, Messages: msgs("request", `1: "missing"`)}},
		{Proto: "grpc", Method: "POST", Path: "/grpc.health.v1.Health/Check", Status: "OK", Stream: 9,
			GRPC: entry.GRPC{Service: "grpc.health.v1.Health", Method: "Check", Code: 0, Status: "OK",
				RequestMessages: 1, ResponseMessages: 1, Messages: []entry.GRPCMessage{
					{Dir: "request", Size: 0}, {Dir: "response", Size: 2, Fields: "1: 1"}}}},
		ok(11, "Unary", 1, 1, cat(msgs("request", `1: "bob"`), msgs("response", `1: "hello bob"`))...),
	}
}

func TestGRPC(t *testing.T) {
	rec := recordGRPC(t)
	got := replay(rec, dissect.DefaultOptions(), plainParser, whole)
	var views []grpcView
	for _, e := range byStream(got) {
		views = append(views, grpcViewOf(e))
	}
	if diff := cmp.Diff(wantGRPC(), views); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	for _, e := range got {
		r := e.HTTP
		if r == nil || r.Request == nil || r.Response == nil || r.Response.Status != 200 {
			t.Fatalf("stream %d: HTTP %+v", streamID(e), r)
		}
		if ct := r.Request.Headers["content-type"]; ct != "application/grpc" {
			t.Errorf("stream %d: request content-type %q", r.Stream, ct)
		}
		if r.Request.Headers["te"] != "trailers" || r.Request.Headers["grpc-timeout"] == "" {
			t.Errorf("stream %d: request headers %v", r.Stream, r.Request.Headers)
		}
		if r.Stream != 7 && r.Response.Trailers["grpc-status"] != "0" {
			t.Errorf("stream %d: trailers %v", r.Stream, r.Response.Trailers)
		}
		if r.Request.Body.Data != "" {
			t.Errorf("stream %d: gRPC request body kept: %+v", r.Stream, r.Request.Body)
		}
		if n := sumSizes(e.GRPC.Messages, "request", e.GRPC.RequestMessages); n >= 0 && r.Request.Body.Size != int64(5*e.GRPC.RequestMessages)+n {
			t.Errorf("stream %d: request body %+v", r.Stream, r.Request.Body)
		}
	}
}

// sumSizes adds the sizes of dir's messages, when all of them were kept.
func sumSizes(m []entry.GRPCMessage, dir string, count int) int64 {
	var n, kept int64
	for _, x := range m {
		if x.Dir == dir {
			n += int64(x.Size)
			kept++
		}
	}
	if kept != int64(count) {
		return -1 // not all kept: the check cannot be made
	}
	return n
}

func TestGRPCChunkings(t *testing.T) {
	rec := recordGRPC(t)
	opts := dissect.DefaultOptions()
	want := replay(rec, opts, plainParser, whole)
	if len(want) != 6 {
		t.Fatalf("%d entries, want 6", len(want))
	}
	for name, ch := range chunkings() {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(want, replay(rec, opts, plainParser, ch)); diff != "" {
				t.Errorf("entries (-whole +%s):\n%s", name, diff)
			}
		})
	}
}

// TestGRPCCompressedLarge makes a real call with gzip compression and a
// message larger than a frame: the parser decompresses within its bounds.
func TestGRPCCompressedLarge(t *testing.T) {
	l := serveGRPC(t)
	conn := dialGRPC(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := strings.Repeat("name ", 8000)
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String(name), out, grpc.UseCompressor(gzip.Name)); err != nil {
		t.Fatal(err)
	}
	// And one uncompressed, spanning several DATA frames.
	if err := conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String(name), out); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	rec := l.recordings(t, 1)[0]
	got := byStream(replay(rec, dissect.DefaultOptions(), plainParser, whole))
	if len(got) != 2 {
		t.Fatalf("%d entries", len(got))
	}
	for i, e := range got {
		g := e.GRPC
		if e.Status != "OK" || g.RequestMessages != 1 || g.ResponseMessages != 1 || len(g.Messages) != 2 {
			t.Fatalf("call %d: %+v", i, g)
		}
		for _, m := range g.Messages {
			if m.Compressed != (i == 0) || !m.Truncated || !strings.HasPrefix(m.Fields, `1: "`) || len(m.Fields) > maxFieldsText {
				t.Errorf("call %d %s: compressed %v truncated %v size %d fields %.40q", i, m.Dir, m.Compressed, m.Truncated, m.Size, m.Fields)
			}
		}
	}
	if m := got[1].GRPC.Messages[0]; m.Size != len(name)+4 || !strings.HasPrefix(m.Fields, `1: "name name`) {
		t.Errorf("uncompressed request: size %d fields %.40q", m.Size, m.Fields)
	}
	if m := got[1].GRPC.Messages[1]; !strings.HasPrefix(m.Fields, `1: "hello name name`) {
		t.Errorf("uncompressed response: %.40q", m.Fields)
	}
}

// TestGRPCDirectionLag delivers all of the server's bytes before any of the
// client's, as a capture may when one direction's packets are held back:
// the same calls come out.
func TestGRPCDirectionLag(t *testing.T) {
	rec := recordGRPC(t)
	lagged := recording{
		{dir: dissect.ServerToClient, data: rec.bytes(dissect.ServerToClient)},
		{dir: dissect.ClientToServer, data: rec.bytes(dissect.ClientToServer)},
	}
	var views []grpcView
	for _, e := range byStream(replay(lagged, dissect.DefaultOptions(), plainParser, whole)) {
		views = append(views, grpcViewOf(e))
	}
	if diff := cmp.Diff(wantGRPC(), views); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}
