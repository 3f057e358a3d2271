package http2

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// conv builds a conversation from synthetic frames: a client and a server,
// each with its own framer and HPACK encoder.
type conv struct {
	cli, srv *frames
	rec      recording
}

func newConv() *conv {
	c := &conv{cli: newFrames(), srv: newFrames()}
	c.cli.preface().settings()
	c.srv.settings()
	return c.send()
}

// send moves what both sides wrote into the recording, client first.
func (c *conv) send() *conv {
	if b := c.cli.take(); len(b) > 0 {
		c.rec = append(c.rec, chunk{dir: dissect.ClientToServer, data: b})
	}
	if b := c.srv.take(); len(b) > 0 {
		c.rec = append(c.rec, chunk{dir: dissect.ServerToClient, data: b})
	}
	return c
}

func (c *conv) get(id uint32, path string, kv ...string) *conv {
	c.cli.headers(id, true, append([]string{":method", "GET", ":scheme", "http", ":path", path, ":authority", "ex"}, kv...)...)
	return c.send()
}

func (c *conv) ok(id uint32, body string, kv ...string) *conv {
	c.srv.headers(id, body == "", append([]string{":status", "200"}, kv...)...)
	if body != "" {
		c.srv.data(id, true, []byte(body))
	}
	return c.send()
}

// parse runs the conversation through every chunking; they must agree.
func parse(t *testing.T, rec recording, opts dissect.Options) []*entry.Entry {
	t.Helper()
	want := replay(rec, opts, plainParser, whole)
	for name, ch := range chunkings() {
		if diff := cmp.Diff(want, replay(rec, opts, plainParser, ch)); diff != "" {
			t.Fatalf("%s: entries (-whole +chunked):\n%s", name, diff)
		}
	}
	return want
}

func TestPaddingPriorityContinuation(t *testing.T) {
	c := newConv()
	blk := c.cli.block(":method", "POST", ":scheme", "http", ":path", "/upload", ":authority", "ex",
		"x-big", strings.Repeat("v", 100))
	third := len(blk) / 3
	must(c.cli.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:third], PadLength: 7,
		Priority: http2.PriorityParam{StreamDep: 0, Weight: 10, Exclusive: true}}))
	must(c.cli.fr.WriteContinuation(1, false, blk[third:2*third]))
	must(c.cli.fr.WriteContinuation(1, true, blk[2*third:]))
	must(c.cli.fr.WritePriority(1, http2.PriorityParam{Weight: 3}))
	must(c.cli.fr.WriteDataPadded(1, false, []byte("hello "), make([]byte, 5)))
	must(c.cli.fr.WriteDataPadded(1, true, []byte("world"), []byte{}))
	reqBytes := len(c.cli.buf.Bytes()) - (frameHeaderLen + 5) // all but PRIORITY
	c.send()
	c.srv.headers(1, false, ":status", "201")
	must(c.srv.fr.WriteDataPadded(1, true, []byte("ok"), make([]byte, 255)))
	respBytes := len(c.srv.buf.Bytes())
	c.send()
	got := parse(t, c.rec, dissect.DefaultOptions())
	if len(got) != 1 {
		t.Fatalf("%d entries", len(got))
	}
	e := got[0]
	want := view{Proto: "http2", Method: "POST", Path: "/upload", Status: "201", Stream: 1, Authority: "ex",
		ReqHeaders: map[string]string{"x-big": strings.Repeat("v", 100)},
		ReqBody:    entry.Body{Size: 11, Data: "hello world"},
		RespBody:   entry.Body{Size: 2, Data: "ok"}}
	if diff := cmp.Diff(want, viewOf(e, "x-big")); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
	if e.Size.Request != int64(reqBytes) || e.Size.Response != int64(respBytes) {
		t.Errorf("size %+v, want %d/%d", e.Size, reqBytes, respBytes)
	}
}

func TestPushPromise(t *testing.T) {
	c := newConv().get(1, "/")
	must(c.srv.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true,
		BlockFragment: c.srv.block(":method", "GET", ":scheme", "http", ":path", "/style.css", ":authority", "ex")}))
	c.send().ok(1, "<html>").ok(2, "body{}", "content-type", "text/css")
	var views []view
	for _, e := range byStream(parse(t, c.rec, dissect.DefaultOptions())) {
		views = append(views, viewOf(e, "content-type"))
	}
	want := []view{
		{Proto: "http2", Method: "GET", Path: "/", Status: "200", Stream: 1, Authority: "ex", RespBody: entry.Body{Size: 6, Data: "<html>"}},
		{Proto: "http2", Method: "GET", Path: "/style.css", Status: "200", Stream: 2, Authority: "ex",
			RespHeaders: map[string]string{"content-type": "text/css"}, RespBody: entry.Body{Size: 6, Data: "body{}"}},
	}
	if diff := cmp.Diff(want, views); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestInformationalAndTrailers(t *testing.T) {
	c := newConv()
	c.cli.headers(1, false, ":method", "PUT", ":scheme", "http", ":path", "/t", ":authority", "ex", "expect", "100-continue")
	c.send()
	c.srv.headers(1, false, ":status", "100")
	c.send()
	c.cli.data(1, false, []byte("data")).headers(1, true, "x-req-sum", "1")
	c.send()
	c.srv.headers(1, false, ":status", "103", "link", "</a>").headers(1, false, ":status", "200", "x-final", "yes").
		data(1, false, []byte("done")).headers(1, true, "x-resp-sum", "2")
	c.send()
	got := parse(t, c.rec, dissect.DefaultOptions())
	if len(got) != 1 {
		t.Fatalf("%d entries", len(got))
	}
	h := got[0].HTTP
	wantReq := &entry.HTTPRequest{Method: "PUT", Target: "/t", Authority: "ex",
		Headers:  map[string]string{"expect": "100-continue"},
		Trailers: map[string]string{"x-req-sum": "1"},
		Body:     entry.Body{Size: 4, Data: "data"}}
	wantResp := &entry.HTTPResponse{Status: 200, Informational: 2,
		Headers:  map[string]string{"x-final": "yes"},
		Trailers: map[string]string{"x-resp-sum": "2"},
		Body:     entry.Body{Size: 4, Data: "done"}}
	if diff := cmp.Diff(wantReq, h.Request); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantResp, h.Response); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
}

func TestRSTStream(t *testing.T) {
	c := newConv().get(1, "/refused")
	c.srv.rst(1, http2.ErrCodeRefusedStream)
	c.send()
	c.srv.data(1, true, []byte("late")) // after the reset: ignored
	c.send()
	// A response that completes before the client finished its request:
	// the reset that follows is no error.
	c.cli.headers(3, false, ":method", "POST", ":scheme", "http", ":path", "/early", ":authority", "ex")
	c.send().ok(3, "enough")
	c.cli.rst(3, http2.ErrCodeNo)
	c.send()
	// A client cancelling mid-response.
	c.get(5, "/slow")
	c.srv.headers(5, false, ":status", "200").data(5, false, []byte("part"))
	c.send()
	c.cli.rst(5, http2.ErrCodeCancel)
	c.send()
	var got []summaryView
	for _, e := range parse(t, c.rec, dissect.DefaultOptions()) {
		got = append(got, summaryOf(e))
	}
	want := []summaryView{
		{"GET", "/refused", "", "RST_STREAM REFUSED_STREAM", 1},
		{"POST", "/early", "200", "", 3},
		{"GET", "/slow", "200", "RST_STREAM CANCEL", 5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

type summaryView struct {
	Method, Path, Status, Error string
	Stream                      uint32
}

func summaryOf(e *entry.Entry) summaryView {
	return summaryView{e.Method, e.Path, e.Status, e.Error, streamID(e)}
}

func TestGoAway(t *testing.T) {
	c := newConv().get(1, "/a").get(3, "/b")
	must(c.srv.fr.WriteGoAway(1, http2.ErrCodeNo, []byte("bye")))
	c.send().ok(1, "a")
	c.get(5, "/c") // sent before the client saw the GOAWAY
	must(c.srv.fr.WriteGoAway(1, http2.ErrCodeEnhanceYourCalm, nil))
	c.send()
	var got []summaryView
	for _, e := range parse(t, c.rec, dissect.DefaultOptions()) {
		got = append(got, summaryOf(e))
	}
	want := []summaryView{
		{"GET", "/b", "", "GOAWAY NO_ERROR (stream not processed)", 3},
		{"GET", "/a", "200", "", 1},
		{"GET", "/c", "", "GOAWAY ENHANCE_YOUR_CALM (stream not processed)", 5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

// TestHPACKTableSize follows dynamic table size updates: a larger table
// granted by the server's SETTINGS, a flush to zero, and a return.
func TestHPACKTableSize(t *testing.T) {
	big := func(i int) string { return strings.Repeat(strconv.Itoa(i%10), 1000) }
	run := func(grant bool) []*entry.Entry {
		c := newConv()
		if grant {
			c.srv.settings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 8192})
			c.send()
		}
		c.cli.enc.SetMaxDynamicTableSizeLimit(8192)
		c.cli.enc.SetMaxDynamicTableSize(8192) // a size update starts the next block
		id := uint32(1)
		req := func(kv ...string) {
			c.get(id, "/r"+strconv.Itoa(int(id)), kv...).ok(id, "")
			id += 2
		}
		for i := 0; i < 6; i++ {
			req("x-big-"+strconv.Itoa(i), big(i))
		}
		// All six fit in 8192 bytes, not in 4096: these are references
		// to entries a 4096-byte table would have evicted.
		req("x-big-0", big(0), "x-big-1", big(1))
		c.cli.enc.SetMaxDynamicTableSize(0)
		req("x-after-flush", "1")
		c.cli.enc.SetMaxDynamicTableSize(4096)
		req("x-after-flush", "1", "x-again", "2")
		req("x-after-flush", "1", "x-again", "2")
		return parse(t, c.rec, dissect.DefaultOptions())
	}
	got := run(true)
	if len(got) != 10 {
		t.Fatalf("%d entries", len(got))
	}
	for _, e := range got {
		if e.Error != "" || e.Path != "/r"+strconv.Itoa(int(streamID(e))) {
			t.Errorf("stream %d: path %q error %q", streamID(e), e.Path, e.Error)
		}
	}
	if h := got[6].HTTP.Request.Headers; h["x-big-0"] != big(0) || h["x-big-1"] != big(1) {
		t.Errorf("stream 13 headers: %d, %d bytes", len(h["x-big-0"]), len(h["x-big-1"]))
	}
	if h := got[9].HTTP.Request.Headers; h["x-after-flush"] != "1" || h["x-again"] != "2" {
		t.Errorf("stream 19 headers: %v", h)
	}
	// Without the grant, the update is refused and the table stays
	// smaller than the encoder's: references past it are unknown, never
	// resolved to other entries.
	for _, e := range run(false) {
		for k, v := range e.HTTP.Request.Headers {
			if strings.HasPrefix(k, "x-big-") && v != big(int(k[len(k)-1]-'0')) {
				t.Errorf("stream %d: %s mis-decoded", streamID(e), k)
			}
		}
	}
}

func TestEviction(t *testing.T) {
	c := newConv()
	for id := uint32(1); id <= 2*maxStreams+1; id += 2 {
		c.cli.headers(id, true, ":method", "GET", ":scheme", "http", ":path", "/", ":authority", "ex")
	}
	c.send()
	var col collector
	p := newParser(testConn(dissect.DefaultOptions()), &col)
	for _, ch := range c.rec {
		p.Data(ch.dir, ch.data, t0)
	}
	if len(col.entries) != 1 || col.entries[0].Error != errEvicted || streamID(col.entries[0]) != 1 {
		t.Fatalf("before End: %d entries, first %+v", len(col.entries), col.entries)
	}
	if len(p.streams) != maxStreams {
		t.Errorf("%d open streams", len(p.streams))
	}
	p.End(t0)
	if len(col.entries) != maxStreams+1 || col.entries[1].Error != errNoResponse {
		t.Errorf("after End: %d entries", len(col.entries))
	}
}

func TestHeaderBounds(t *testing.T) {
	c := newConv()
	// A block over maxHeaderBlock, in CONTINUATION frames.
	blk := c.cli.block(":method", "GET", ":scheme", "http", ":path", "/huge", ":authority", "ex",
		"x-huge", strings.Repeat("~", maxHeaderBlock+10)) // '~' is not shorter in Huffman code
	must(c.cli.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:16384], EndStream: true}))
	for rest := blk[16384:]; len(rest) > 0; {
		n := min(len(rest), 16384)
		must(c.cli.fr.WriteContinuation(1, n == len(rest), rest[:n]))
		rest = rest[n:]
	}
	c.send().ok(1, "")
	// A list over maxHeaderList, decoded to keep the table in sync.
	var kv []string
	for i := 0; i < 100; i++ {
		kv = append(kv, "x-h-"+strconv.Itoa(i), strings.Repeat("v", 1000))
	}
	c.get(3, "/long", kv...).ok(3, "")
	// The last fields of the long list are in both tables: referenced.
	c.get(5, "/after", "x-h-99", strings.Repeat("v", 1000)).ok(5, "")
	got := parse(t, c.rec, dissect.DefaultOptions())
	if len(got) != 3 {
		t.Fatalf("%d entries", len(got))
	}
	if e := got[0]; e.Error != errBlockTooLarge || e.Status != "200" || e.Size.Request < maxHeaderBlock {
		t.Errorf("huge block: %+v", summaryOf(e))
	}
	// The table was reset after the huge block: :authority "ex", which it
	// had added, is unknown to the next block; the rest decodes.
	if e := got[1]; e.Error != whyPlain || e.Path != "/long" {
		t.Errorf("long list: %+v", summaryOf(e))
	}
	if n := len(got[1].HTTP.Request.Headers); n < 50 || n >= 100 {
		t.Errorf("long list: %d headers kept", n)
	}
	if e := got[2]; e.Path != "/after" || e.HTTP.Request.Headers["x-h-99"] != strings.Repeat("v", 1000) {
		t.Errorf("after: %+v %d", summaryOf(e), len(e.HTTP.Request.Headers["x-h-99"]))
	}
}

func TestBodyBounds(t *testing.T) {
	c := newConv().get(1, "/big")
	c.srv.headers(1, false, ":status", "200")
	for i := 0; i < 64; i++ {
		c.srv.data(1, i == 63, bytes.Repeat([]byte{'a' + byte(i%26)}, 16384))
	}
	c.send()
	opts := dissect.DefaultOptions()
	opts.MaxBody = 1000
	got := parse(t, c.rec, opts)
	b := got[0].HTTP.Response.Body
	if b.Size != 64*16384 || !b.Truncated || b.Data != strings.Repeat("a", 1000) {
		t.Errorf("body: size %d truncated %v data %d bytes", b.Size, b.Truncated, len(b.Data))
	}
	opts.MaxBody = 0
	if b := parse(t, c.rec, opts)[0].HTTP.Response.Body; b.Data != "" || !b.Truncated || b.Size != 64*16384 {
		t.Errorf("MaxBody 0: %+v", b)
	}
}

// TestHugeFrame feeds part of a DATA frame that claims the largest length:
// the parser holds no more than the body limit.
func TestHugeFrame(t *testing.T) {
	c := newConv().get(1, "/")
	c.srv.headers(1, false, ":status", "200")
	c.send()
	hdr := []byte{0xff, 0xff, 0xff, frameData, 0, 0, 0, 0, 1}
	var col collector
	p := newParser(testConn(dissect.DefaultOptions()), &col)
	for _, ch := range c.rec {
		p.Data(ch.dir, ch.data, t0)
	}
	p.Data(dissect.ServerToClient, hdr, t0)
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	for i := 0; i < 64; i++ {
		p.Data(dissect.ServerToClient, chunk, t0)
	}
	s := p.streams[1]
	if s == nil || s.body[1].size != 64*64<<10 || len(s.body[1].keep) > dissect.DefaultOptions().MaxBody {
		t.Fatalf("stream state: %+v", s)
	}
	p.End(t0)
	if len(col.entries) != 1 || col.entries[0].Error != errIncomplete {
		t.Errorf("entries: %+v", col.entries)
	}
}

func TestGRPCFraming(t *testing.T) {
	msg := func(s string) []byte {
		b, _ := proto.Marshal(wrapperspb.String(s))
		return grpcMsg(b)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	b, _ := proto.Marshal(wrapperspb.String("compressed"))
	zw.Write(b)
	zw.Close()
	compressed := grpcMsg(gz.Bytes())
	compressed[0] = 1

	c := newConv()
	c.cli.headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/s.V/Bidi", ":authority", "ex",
		"content-type", "application/grpc+proto", "grpc-encoding", "gzip")
	// Ten messages in one frame, then one split across three frames.
	var ten []byte
	for i := 0; i < 10; i++ {
		ten = append(ten, msg("m"+strconv.Itoa(i))...)
	}
	c.cli.data(1, false, ten)
	long := msg(strings.Repeat("L", 10000))
	c.cli.data(1, false, long[:3]).data(1, false, long[3:5000]).data(1, false, long[5000:])
	c.cli.data(1, true, compressed)
	c.send()
	c.srv.headers(1, false, ":status", "200", "content-type", "application/grpc")
	c.srv.data(1, false, msg("r"))
	c.srv.headers(1, true, "grpc-status", "3", "grpc-message", "bad%20input%3A%20%E2%9C%93%zz")
	c.send()
	got := parse(t, c.rec, dissect.DefaultOptions())
	if len(got) != 1 {
		t.Fatalf("%d entries", len(got))
	}
	g := got[0].GRPC
	if got[0].Proto != "grpc" || got[0].Status != "INVALID_ARGUMENT" || g.Code != 3 || g.Message != "bad input: ✓%zz" {
		t.Errorf("call: %+v %+v", summaryOf(got[0]), g)
	}
	if g.RequestMessages != 12 || g.ResponseMessages != 1 || len(g.Messages) != 5 {
		t.Fatalf("counts: %d/%d, %d kept", g.RequestMessages, g.ResponseMessages, len(g.Messages))
	}
	if g.Messages[3].Fields != `1: "m3"` || g.Messages[4].Fields != `1: "r"` || g.Messages[4].Dir != "response" {
		t.Errorf("messages: %+v", g.Messages)
	}
	// Compressed, and past the first four: counted only.
	c2 := newConv()
	c2.cli.headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/s.V/U", ":authority", "ex",
		"content-type", "application/grpc", "grpc-encoding", "gzip")
	c2.cli.data(1, true, append(compressed, long...))
	c2.send()
	c2.srv.headers(1, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "0")
	c2.send()
	g = parse(t, c2.rec, dissect.DefaultOptions())[0].GRPC
	want := []entry.GRPCMessage{
		{Dir: "request", Size: len(compressed) - 5, Compressed: true, Fields: `1: "compressed"`},
		{Dir: "request", Size: len(long) - 5, Fields: `1: "` + strings.Repeat("L", maxFieldsText-6), Truncated: true},
	}
	// The rendering of the long message is cut by the kept bytes first.
	want[1].Fields = g.Messages[1].Fields
	if diff := cmp.Diff(want, g.Messages); diff != "" || !strings.HasPrefix(g.Messages[1].Fields, `1: "LLLL`) || g.Status != "OK" {
		t.Errorf("messages (-want +got):\n%s\nstatus %q", diff, g.Status)
	}
}

// TestGaps loses bytes inside a frame (its body is marked, the rest goes
// on) and between frames (the parser finds the frames again).
func TestGaps(t *testing.T) {
	c := newConv().get(1, "/a")
	c.srv.headers(1, false, ":status", "200").data(1, true, bytes.Repeat([]byte("x"), 1000))
	c.send()
	c.get(3, "/b").ok(3, "b")
	rec := c.rec
	// rec[len-4] is the server's response to /a: cut 200 bytes from its DATA.
	resp := rec[len(rec)-3].data
	cut := len(resp) - 500
	var col collector
	p := newParser(testConn(dissect.DefaultOptions()), &col)
	for i, ch := range rec {
		if i == len(rec)-3 {
			p.Data(ch.dir, ch.data[:cut], t0)
			p.Gap(ch.dir, 200)
			p.Data(ch.dir, ch.data[cut+200:], t0)
			continue
		}
		p.Data(ch.dir, ch.data, t0)
	}
	p.End(t0)
	var got []summaryView
	for _, e := range col.entries {
		got = append(got, summaryOf(e))
	}
	want := []summaryView{{"GET", "/a", "200", errGap, 1}, {"GET", "/b", "200", "", 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("in-frame gap (-want +got):\n%s", diff)
	}
	if b := col.entries[0].HTTP.Response.Body; b.Size != 1000 || !b.Truncated || len(b.Data) != 500 {
		t.Errorf("body after the gap: %+v", b)
	}

	// A gap across frame boundaries, then requests the parser must find.
	c = newConv().get(1, "/a").ok(1, "a")
	lost := c.rec[len(c.rec)-2:]
	c.rec = c.rec[:len(c.rec)-2]
	for id := uint32(3); id <= 11; id += 2 {
		c.get(id, "/after"+strconv.Itoa(int(id))).ok(id, "ok")
	}
	col = collector{}
	p = newParser(testConn(dissect.DefaultOptions()), &col)
	for _, ch := range c.rec[:2] {
		p.Data(ch.dir, ch.data, t0)
	}
	for _, ch := range lost {
		p.Gap(ch.dir, len(ch.data))
	}
	for _, ch := range c.rec[2:] {
		p.Data(ch.dir, ch.data, t0)
	}
	p.End(t0)
	got = nil
	for _, e := range col.entries {
		got = append(got, summaryOf(e))
	}
	// Stream 3's block references :authority and others in entries the
	// lost block added, which a reset table no longer has; the paths are
	// new literals and decode.
	for _, e := range got {
		if !strings.HasPrefix(e.Path, "/after") || e.Path != "/after"+strconv.Itoa(int(e.Stream)) {
			t.Errorf("after the gap: %+v", e)
		}
	}
	if len(got) < 3 {
		t.Errorf("after the gap: %d entries: %+v", len(got), got)
	}
	if s := p.Stats(); s.Skipped == 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestFlip gives the parser the sides the wrong way round, as a detector
// may for a connection whose start was not captured: the first request it
// decodes sets it right.
func TestFlip(t *testing.T) {
	rec, boundary := recordGRPCPhases(t)
	cut := rec[boundary:]
	want := replay(cut, dissect.DefaultOptions(), plainParser, whole)
	var swapped recording
	for _, ch := range cut {
		swapped = append(swapped, chunk{dir: ch.dir.Reverse(), data: ch.data})
	}
	var col collector
	conn := testConn(dissect.DefaultOptions())
	conn.Client, conn.Server = conn.Server, conn.Client
	p := newParser(conn, &col)
	for i, ch := range swapped {
		p.Data(ch.dir, ch.data, t0.Add(time.Duration(i)*time.Millisecond))
	}
	p.End(t0.Add(time.Duration(len(swapped)) * time.Millisecond))
	if diff := cmp.Diff(want, col.entries); diff != "" {
		t.Errorf("entries (-right way +flipped):\n%s", diff)
	}
}

// TestPlaceholders checks the decoder on its own: fields inserted with a
// name it cannot know keep later indices right.
func TestPlaceholders(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	block := func(fields ...hpack.HeaderField) []byte {
		buf.Reset()
		for _, f := range fields {
			must(enc.WriteField(f))
		}
		return bytes.Clone(buf.Bytes())
	}
	f := func(n, v string) hpack.HeaderField { return hpack.HeaderField{Name: n, Value: v} }
	// Before the capture: x-name enters the table.
	block(f("x-name", "one"))
	// After: x-name is referenced by index for its name, with new values
	// (the receiver cannot know the name), then a new field, then the
	// repeat of the new-value field, by full index.
	b1 := block(f("x-name", "two"), f("x-new", "n"))
	b2 := block(f("x-name", "two"), f("x-new", "n"), f("x-name", "one"))
	d := newHeaderDecoder()
	d.reset()
	if !d.decode(b1) || d.unknown != 1 || !cmp.Equal(d.fields, []hpack.HeaderField{f("x-new", "n")}) {
		t.Fatalf("b1: unknown %d fields %v", d.unknown, d.fields)
	}
	if !d.decode(b2) || d.unknown != 2 || !cmp.Equal(d.fields, []hpack.HeaderField{f("x-new", "n")}) {
		t.Fatalf("b2: unknown %d fields %v", d.unknown, d.fields)
	}
}
