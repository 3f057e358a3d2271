package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// workerQueue bounds the messages queued to a worker; a worker that lets
// it fill is cut off (it reconnects and gets the whole state again).
const workerQueue = 256

var workerUpgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   64 << 10,
	WriteBufferSize:  4 << 10,
	WriteBufferPool:  &writeBuffers,
	// Workers are programs, not browsers: they send no Origin, and the
	// token is what authenticates them.
	CheckOrigin: func(*http.Request) bool { return true },
}

// workerConn is one connected worker.
type workerConn struct {
	h          *server
	name, node string
	hello      wire.Hello
	conn       *websocket.Conn
	send       chan []byte

	stats   atomic.Pointer[wire.Stats]
	entries atomic.Uint64 // entries received

	// Owned by the read pump: the message buffer, the decoded batch, and
	// the expected size of an encoded entry.
	buf     bytes.Buffer
	batch   wire.Entries
	encHint int

	mu      sync.Mutex
	exports map[string]*exportPart // pcap exports in flight, by id
	gone    bool                   // the read pump ended: no new exports

	done      chan struct{}
	closeOnce sync.Once
	reason    string
}

// serveWorker upgrades GET /v1/worker and runs the connection.
func (h *server) serveWorker(w http.ResponseWriter, r *http.Request) {
	// Counted from the start, so that Run also waits for a hello that is
	// still being read (a hijacked connection, which http.Server forgets).
	// The handler began before Shutdown returned, so before Run waits.
	h.conns.Add(1)
	defer h.conns.Done()
	conn, err := workerUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	hello, err := readHello(conn)
	if err != nil {
		h.log.Warn("worker refused", "remote", r.RemoteAddr, "err", err)
		closeNow(conn, websocket.ClosePolicyViolation, err.Error())
		return
	}
	q := r.URL.Query()
	wc := &workerConn{
		h:       h,
		name:    firstNonEmpty(hello.Worker, q.Get("worker"), r.RemoteAddr),
		node:    firstNonEmpty(hello.Node, q.Get("node")),
		hello:   hello,
		conn:    conn,
		send:    make(chan []byte, workerQueue),
		exports: map[string]*exportPart{},
		done:    make(chan struct{}),
		encHint: 1024,
	}
	added := false
	if !h.do(func(reg *registry) {
		if added = reg.addWorker(wc); added {
			h.conns.Add(1) // the write pump; this handler runs the read pump
		}
	}) || !added {
		closeNow(conn, websocket.CloseTryAgainLater, "too many workers, or the hub is stopping")
		return
	}
	h.log.Info("worker connected", "worker", wc.name, "node", wc.node, "remote", r.RemoteAddr,
		"sources", hello.Sources, "version", hello.Version)
	go wc.writePump()
	wc.readPump()
}

// readHello reads the worker's first message, which must be a hello.
func readHello(conn *websocket.Conn) (wire.Hello, error) {
	var hello wire.Hello
	conn.SetReadLimit(wire.MaxClientMessage)
	conn.SetReadDeadline(time.Now().Add(helloWait))
	typ, msg, err := conn.ReadMessage()
	if err != nil {
		return hello, err
	}
	if typ != websocket.TextMessage {
		return hello, errors.New("first message is not a hello")
	}
	env, err := wire.Parse(msg)
	if err != nil {
		return hello, err
	}
	if env.Type != wire.TypeHello {
		return hello, errors.New("first message is " + strconv.Quote(env.Type) + ", not a hello")
	}
	return hello, env.Decode(&hello)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// enqueue queues a message to the worker without blocking.
func (w *workerConn) enqueue(b []byte) {
	select {
	case w.send <- b:
	case <-w.done:
	default:
		w.close("send queue full")
	}
}

func (w *workerConn) sendEnvelope(typ string, data any) {
	b, err := wire.Marshal(typ, data)
	if err != nil {
		w.h.log.Error("encoding a message", "type", typ, "err", err)
		return
	}
	w.enqueue(b)
}

func (w *workerConn) sendFilter(expr string) {
	w.sendEnvelope(wire.TypeFilter, wire.Filter{Expr: expr})
}

func (w *workerConn) sendTargets(t wire.Targets) {
	w.sendEnvelope(wire.TypeTargets, t)
}

func (w *workerConn) close(reason string) {
	w.closeOnce.Do(func() {
		w.reason = reason
		close(w.done)
		time.AfterFunc(closeGrace, func() { w.conn.Close() })
	})
}

// readPump reads the worker's messages until the connection fails.
func (w *workerConn) readPump() {
	defer func() {
		w.h.do(func(r *registry) { r.removeWorker(w) })
		w.close("connection lost")
		w.endExports(errDisconnected)
		w.h.log.Info("worker left", "worker", w.name, "node", w.node, "entries", w.entries.Load())
	}()
	c := w.conn
	c.SetReadLimit(wire.MaxWorkerMessage)
	c.SetReadDeadline(time.Now().Add(pongWait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		typ, r, err := c.NextReader()
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(pongWait))
		if w.buf.Cap() > 2*wire.MaxBatchBytes {
			w.buf = bytes.Buffer{} // let a rare huge message's buffer go
		}
		w.buf.Reset()
		if _, err := w.buf.ReadFrom(r); err != nil {
			return
		}
		var herr error
		if typ == websocket.BinaryMessage {
			herr = w.handleChunk(w.buf.Bytes())
		} else {
			herr = w.handle(w.buf.Bytes())
		}
		if herr != nil {
			w.h.metrics.badMessages.WithLabelValues("worker").Inc()
			w.h.log.Debug("bad worker message", "worker", w.name, "err", herr)
		}
	}
}

// handle acts on one text message.
func (w *workerConn) handle(msg []byte) error {
	// Entries are most of the traffic: decode them in one pass.
	if data, ok := wire.CutData(msg, wire.TypeEntries); ok && w.decodeEntries(data) == nil {
		w.fanoutBatch()
		return nil
	}
	env, err := wire.Parse(msg)
	if err != nil {
		return err
	}
	switch env.Type {
	case wire.TypeEntries:
		return w.handleEntries(env)
	case wire.TypeStats:
		var st wire.Stats
		if err := env.Decode(&st); err != nil {
			return err
		}
		st.Node, st.Worker = w.node, w.name // a worker speaks only for itself
		w.stats.Store(&st)
	case wire.TypePcapEnd:
		var end wire.PcapEnd
		if err := env.Decode(&end); err != nil {
			return err
		}
		w.endExport(end)
	default:
		return errors.New("unexpected message type " + strconv.Quote(env.Type))
	}
	return nil
}

// handleEntries decodes a batch and fans it out.
func (w *workerConn) handleEntries(env wire.Envelope) error {
	if len(env.Data) == 0 {
		return errors.New("entries message without data")
	}
	if err := w.decodeEntries(env.Data); err != nil {
		return err
	}
	w.fanoutBatch()
	return nil
}

// decodeEntries decodes a batch into the reused slice.
func (w *workerConn) decodeEntries(data []byte) error {
	// Unmarshal decodes into existing elements: zero them first, so that
	// nothing of the previous batch survives in fields a message omits.
	clear(w.batch.Entries[:cap(w.batch.Entries)])
	w.batch.Entries = w.batch.Entries[:0]
	return json.Unmarshal(data, &w.batch)
}

func (w *workerConn) fanoutBatch() {
	w.entries.Add(uint64(len(w.batch.Entries)))
	w.h.fanout(w, w.batch.Entries)
}

// fanout enriches each entry and offers it to every subscriber whose
// filter it matches, encoding it once, and only if someone wants it.
func (h *server) fanout(w *workerConn, es []entry.Entry) {
	h.in.Add(uint64(len(es)))
	subs := *h.subs.Load()
	if len(subs) == 0 {
		return
	}
	m := *h.ipmap.Load()
	var out, dups uint64
	now := time.Now()
	for i := range es {
		e := &es[i]
		if h.dedup.duplicate(e, now) {
			dups++
			continue
		}
		wire.Enrich(e, m)
		var msg []byte
		for _, s := range subs {
			if !s.filter.Load().Match(e) {
				continue
			}
			if msg == nil {
				msg = w.encodeEntry(e)
			}
			if s.offer(msg) {
				out++
			}
		}
	}
	h.out.Add(out)
	h.duplicates.Add(dups)
}

// entryPrefix starts the envelope of an entry message.
var entryPrefix = []byte(`{"v":` + strconv.Itoa(wire.Version) + `,"type":"` + wire.TypeEntry + `","data":`)

// encodeEntry returns the entry envelope, in a buffer of its own: it is
// shared by the queues of the subscribers it matches.
func (w *workerConn) encodeEntry(e *entry.Entry) []byte {
	b := make([]byte, 0, w.encHint)
	b = append(b, entryPrefix...)
	b = render.AppendJSON(b, e)
	b = append(b, '}')
	w.encHint = max(len(b)+len(b)/8, 256)
	return b
}

// writePump sends queued messages and pings until the connection closes.
func (w *workerConn) writePump() {
	defer w.h.conns.Done()
	defer w.close("write failed")
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		var err error
		select {
		case b := <-w.send:
			w.conn.SetWriteDeadline(time.Now().Add(writeWait))
			err = w.conn.WriteMessage(websocket.TextMessage, b)
		case <-ping.C:
			w.conn.SetWriteDeadline(time.Now().Add(writeWait))
			err = w.conn.WriteMessage(websocket.PingMessage, nil)
		case <-w.done:
			closeNow(w.conn, websocket.CloseNormalClosure, w.reason)
			return
		}
		if err != nil {
			return
		}
	}
}
