package websocket

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gws "github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http1"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// chunk is one read or write on the client's socket.
type chunk struct {
	dir  dissect.Dir
	data []byte
}

// tapConn records what the client writes and reads, in order.
type tapConn struct {
	net.Conn
	mu     *sync.Mutex
	chunks *[]chunk
}

func (c *tapConn) record(dir dissect.Dir, b []byte) {
	c.mu.Lock()
	*c.chunks = append(*c.chunks, chunk{dir, append([]byte(nil), b...)})
	c.mu.Unlock()
}

func (c *tapConn) Write(b []byte) (int, error) {
	c.record(dissect.ClientToServer, b)
	return c.Conn.Write(b)
}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.record(dissect.ServerToClient, b[:n])
	}
	return n, err
}

// session runs a gorilla/websocket client against a gorilla/websocket echo
// server on loopback, and returns the bytes of the connection.
func session(t *testing.T, compress bool, script func(c *gws.Conn)) []chunk {
	t.Helper()
	up := gws.Upgrader{EnableCompression: compress, WriteBufferSize: 512}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetCloseHandler(func(code int, text string) error {
			c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(code, "bye"), time.Now().Add(time.Second))
			return nil
		})
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	var mu sync.Mutex
	var chunks []chunk
	d := gws.Dialer{
		EnableCompression: compress,
		WriteBufferSize:   512,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &tapConn{Conn: c, mu: &mu, chunks: &chunks}, nil
		},
	}
	c, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/chat?room=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	script(c)
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	return chunks
}

// echo sends a message and reads its echo.
func echo(t *testing.T, c *gws.Conn, typ int, msg []byte) {
	t.Helper()
	if err := c.WriteMessage(typ, msg); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v", err)
	}
}

type recorder struct{ entries []*entry.Entry }

func (r *recorder) Emit(e *entry.Entry) { r.entries = append(r.entries, e) }

func testConn(maxBody int) *dissect.Conn {
	opts := dissect.DefaultOptions()
	opts.MaxBody = maxBody
	return &dissect.Conn{Transport: "tcp", Client: netip.MustParseAddrPort("10.0.0.1:40000"),
		Server: netip.MustParseAddrPort("10.0.0.2:80"), FlowID: "f1", Opts: &opts}
}

// dissectHTTP feeds the connection to the HTTP/1 dissector with this
// package's upgrade hook, each chunk split into pieces of at most piece
// bytes (0: whole).
func dissectHTTP(chunks []chunk, maxBody, piece int) []*entry.Entry {
	var r recorder
	proto := http1.NewProtocol(map[string]http1.UpgradeFunc{"websocket": NewUpgraded})
	p := proto.NewStream(testConn(maxBody), &r)
	ts := t0
	for _, c := range chunks {
		d := c.data
		for len(d) > 0 {
			n := len(d)
			if piece > 0 {
				n = min(n, piece)
			}
			p.Data(c.dir, d[:n], ts)
			d = d[n:]
		}
		ts = ts.Add(time.Millisecond)
	}
	p.End(ts)
	return r.entries
}

// summary is what a test compares of an entry.
func summary(e *entry.Entry) string {
	if e.WS == nil {
		return e.Proto + " " + e.Method + " " + e.Path + " " + e.Status
	}
	w := e.WS
	s := []string{e.Method, e.Path, e.Status, w.Dir, strconv.FormatInt(w.Payload.Size, 10)}
	if w.Payload.Encoding != "" {
		s = append(s, w.Payload.Encoding)
	}
	if w.Payload.Decoded != "" {
		s = append(s, w.Payload.Decoded)
	}
	if w.Payload.Truncated {
		s = append(s, "truncated")
	}
	if w.Frames > 0 {
		s = append(s, "frames="+strconv.Itoa(w.Frames))
	}
	if w.CloseReason != "" {
		s = append(s, "reason="+w.CloseReason)
	}
	if e.Error != "" {
		s = append(s, "error="+e.Error)
	}
	return strings.Join(s, " ")
}

func TestGorilla(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 200) // 2000 bytes: 4 frames of 512
	bin := []byte{0, 1, 2, 0xFF, 0xFE}
	script := func(c *gws.Conn) {
		echo(t, c, gws.TextMessage, []byte("hello"))
		echo(t, c, gws.BinaryMessage, bin)
		echo(t, c, gws.TextMessage, big)
		if err := c.WriteControl(gws.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		echo(t, c, gws.TextMessage, []byte("héllo, wörld"))
		c.WriteControl(gws.CloseMessage, gws.FormatCloseMessage(gws.CloseGoingAway, "done"), time.Now().Add(time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				break
			}
		}
	}
	plain := []string{
		"http GET /chat?room=1 101",
		"TEXT /chat?room=1  client 5",
		"TEXT /chat?room=1  server 5",
		"BINARY /chat?room=1  client 5 base64",
		"BINARY /chat?room=1  server 5 base64",
		"TEXT /chat?room=1  client 2000 truncated frames=4",
		"TEXT /chat?room=1  server 2000 truncated",
		"PING /chat?room=1  client 2",
		"PONG /chat?room=1  server 2",
		"TEXT /chat?room=1  client 14",
		"TEXT /chat?room=1  server 14",
		"CLOSE /chat?room=1 1001 client 6 reason=done",
		"CLOSE /chat?room=1 1001 server 5 reason=bye",
	}
	// The pong and the next message race; the order within each
	// direction is fixed.
	slices.Sort(plain)
	chunks := session(t, false, script)
	for _, piece := range []int{0, 1, 3, 700} {
		var got []string
		for _, e := range dissectHTTP(chunks, 64, piece) {
			got = append(got, summary(e))
		}
		slices.Sort(got)
		if diff := cmp.Diff(plain, got); diff != "" {
			t.Errorf("piece %d: entries (-want +got):\n%s", piece, diff)
		}
	}
	texts := func(es []*entry.Entry, dir string) []string {
		var out []string
		for _, e := range es {
			if e.WS != nil && e.WS.Opcode == "text" && e.WS.Dir == dir {
				out = append(out, e.WS.Payload.Data)
			}
		}
		return out
	}
	for _, dir := range []string{"client", "server"} {
		want := []string{"hello", string(big[:64]), "héllo, wörld"}
		if diff := cmp.Diff(want, texts(dissectHTTP(chunks, 64, 0), dir)); diff != "" {
			t.Errorf("%s texts (-want +got):\n%s", dir, diff)
		}
	}

	// The same with permessage-deflate: gorilla compresses every data
	// message without context takeover.
	chunks = session(t, true, script)
	var got []string
	for _, e := range dissectHTTP(chunks, 64, 5) {
		got = append(got, summary(e))
		if e.WS != nil && e.WS.Opcode == "text" && !e.WS.Compressed {
			t.Errorf("text message not compressed: %+v", e.WS)
		}
	}
	for i, want := range got {
		if strings.HasPrefix(want, "TEXT") && !strings.Contains(want, " deflate") {
			t.Errorf("entry %d not inflated: %s", i, want)
		}
	}
	es := dissectHTTP(chunks, 4096, 0)
	if len(es) != len(plain) {
		t.Fatalf("%d entries, want %d", len(es), len(plain))
	}
	for _, dir := range []string{"client", "server"} {
		want := []string{"hello", string(big), "héllo, wörld"}
		if diff := cmp.Diff(want, texts(es, dir)); diff != "" {
			t.Errorf("%s inflated texts (-want +got):\n%s", dir, diff)
		}
	}
}
