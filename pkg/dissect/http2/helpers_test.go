package http2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// chunk is one read or write seen on a server connection.
type chunk struct {
	dir  dissect.Dir
	data []byte
}

// recording is the ordered chunks of one connection. Chunk i is given the
// capture time t0 + i ms, so replays are deterministic.
type recording []chunk

func (r recording) bytes(dir dissect.Dir) []byte {
	var b []byte
	for _, c := range r {
		if c.dir == dir {
			b = append(b, c.data...)
		}
	}
	return b
}

func (r recording) size() int {
	n := 0
	for _, c := range r {
		n += len(c.data)
	}
	return n
}

// tap records what a server connection reads (client to server) and writes
// (server to client), in the order the server saw it: a write is recorded
// before it is sent, so the client's reaction to it is recorded after it.
type tap struct {
	net.Conn
	mu     sync.Mutex
	chunks recording
	done   chan struct{}
	once   sync.Once
}

func (c *tap) add(dir dissect.Dir, b []byte) {
	c.mu.Lock()
	c.chunks = append(c.chunks, chunk{dir: dir, data: bytes.Clone(b)})
	c.mu.Unlock()
}

func (c *tap) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.add(dissect.ClientToServer, b[:n])
	}
	if err != nil {
		c.once.Do(func() { close(c.done) })
	}
	return n, err
}

func (c *tap) Write(b []byte) (int, error) {
	c.add(dissect.ServerToClient, b)
	return c.Conn.Write(b)
}

func (c *tap) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

// tapListener wraps every accepted connection in a tap.
type tapListener struct {
	net.Listener
	mu   sync.Mutex
	taps []*tap
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	t := &tap{Conn: c, done: make(chan struct{})}
	l.mu.Lock()
	l.taps = append(l.taps, t)
	l.mu.Unlock()
	return t, nil
}

func listen(t testing.TB) *tapListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &tapListener{Listener: l}
}

// recordings waits until the server has seen n connections end and returns
// what each carried.
func (l *tapListener) recordings(t testing.TB, n int) []recording {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		taps := append([]*tap(nil), l.taps...)
		l.mu.Unlock()
		if len(taps) >= n {
			var out []recording
			for _, tp := range taps[:n] {
				select {
				case <-tp.done:
				case <-deadline:
					t.Fatal("server connection did not end")
				}
				// Let a write racing the close land.
				time.Sleep(20 * time.Millisecond)
				tp.mu.Lock()
				out = append(out, append(recording(nil), tp.chunks...))
				tp.mu.Unlock()
			}
			return out
		}
		select {
		case <-deadline:
			t.Fatalf("only %d connections, want %d", len(taps), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// chunker splits n bytes into the lengths of successive Data calls.
type chunker func(n int) []int

func whole(n int) []int { return []int{n} }

func bytewise(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

func randomChunks(seed uint64) chunker {
	r := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15))
	return func(n int) []int {
		var out []int
		for n > 0 {
			k := 1 + r.IntN(min(n, 1+r.IntN(100)))
			out = append(out, k)
			n -= k
		}
		return out
	}
}

func chunkings() map[string]chunker {
	m := map[string]chunker{"whole": whole, "bytewise": bytewise}
	for seed := uint64(1); seed <= 4; seed++ {
		m["random"+strconv.FormatUint(seed, 10)] = randomChunks(seed)
	}
	return m
}

type collector struct{ entries []*entry.Entry }

func (c *collector) Emit(e *entry.Entry) { c.entries = append(c.entries, e) }

var (
	cliAddr = netip.MustParseAddrPort("10.0.0.1:40000")
	srvAddr = netip.MustParseAddrPort("10.0.0.2:50051")
)

func testConn(opts dissect.Options) *dissect.Conn {
	return &dissect.Conn{Transport: "tcp", Client: cliAddr, Server: srvAddr, FlowID: "f1", Opts: &opts}
}

type newParserFunc func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser

func plainParser(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
	return newParser(c, emit)
}

// replay feeds a recording to a new parser, each chunk split by ch, and
// returns the entries in the order they were emitted.
func replay(rec recording, opts dissect.Options, mk newParserFunc, ch chunker) []*entry.Entry {
	var c collector
	replayInto(mk(testConn(opts), &c), rec, ch)
	return c.entries
}

// replayInto gives a recording to p, each chunk split by ch, and ends it.
func replayInto(p dissect.StreamParser, rec recording, ch chunker) {
	for i, k := range rec {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		off := 0
		for _, n := range ch(len(k.data)) {
			p.Data(k.dir, k.data[off:off+n], ts)
			off += n
		}
	}
	p.End(t0.Add(time.Duration(len(rec)) * time.Millisecond))
}

// byStream orders entries by stream id, for comparisons that do not depend
// on completion order.
func byStream(es []*entry.Entry) []*entry.Entry {
	out := append([]*entry.Entry(nil), es...)
	sort.SliceStable(out, func(i, j int) bool { return streamID(out[i]) < streamID(out[j]) })
	return out
}

func streamID(e *entry.Entry) uint32 {
	if e.HTTP == nil {
		return 0
	}
	return e.HTTP.Stream
}

// frames builds HTTP/2 byte streams with the x/net framer and HPACK encoder,
// for cases no real peer produces on demand.
type frames struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newFrames() *frames {
	f := &frames{}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.enc = hpack.NewEncoder(&f.hb)
	return f
}

// block HPACK-encodes alternating names and values.
func (f *frames) block(kv ...string) []byte {
	f.hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := f.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			panic(err)
		}
	}
	return bytes.Clone(f.hb.Bytes())
}

func (f *frames) preface() *frames {
	f.buf.WriteString(clientPreface)
	return f
}

func (f *frames) settings(s ...http2.Setting) *frames {
	must(f.fr.WriteSettings(s...))
	return f
}

func (f *frames) headers(id uint32, end bool, kv ...string) *frames {
	must(f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.block(kv...), EndStream: end, EndHeaders: true}))
	return f
}

func (f *frames) data(id uint32, end bool, b []byte) *frames {
	must(f.fr.WriteData(id, end, b))
	return f
}

func (f *frames) rst(id uint32, code http2.ErrCode) *frames {
	must(f.fr.WriteRSTStream(id, code))
	return f
}

func (f *frames) take() []byte {
	b := bytes.Clone(f.buf.Bytes())
	f.buf.Reset()
	return b
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// grpcMsg frames one gRPC message.
func grpcMsg(b []byte) []byte {
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}

// Seed files: a recording is stored as a sequence of chunks, each a
// direction byte and a 4-byte big-endian length before the bytes.

func encodeRecording(r recording) []byte {
	var b []byte
	for _, c := range r {
		b = append(b, byte(c.dir))
		b = binary.BigEndian.AppendUint32(b, uint32(len(c.data)))
		b = append(b, c.data...)
	}
	return b
}

func decodeRecording(b []byte) (recording, error) {
	var r recording
	for len(b) > 0 {
		if len(b) < 5 {
			return nil, io.ErrUnexpectedEOF
		}
		n := binary.BigEndian.Uint32(b[1:5])
		if uint64(n) > uint64(len(b)-5) || b[0] > 1 {
			return nil, errors.New("bad recording")
		}
		r = append(r, chunk{dir: dissect.Dir(b[0]), data: b[5 : 5+n]})
		b = b[5+n:]
	}
	return r, nil
}

func loadRecording(t testing.TB, name string) recording {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecording(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
