package hubtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

func bytesReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

// conn is a WebSocket client whose messages a goroutine reads into a
// channel, so that tests can wait for them with a deadline.
type conn struct {
	ws     *websocket.Conn
	wmu    sync.Mutex // one writer at a time
	msgs   chan wire.Envelope
	credit chan wire.PcapCredit
	first  chan struct{} // closed when the first message arrives
	err    error         // why the reader stopped; read after msgs is closed
}

func newConn(ws *websocket.Conn, queue int) *conn {
	c := &conn{ws: ws, msgs: make(chan wire.Envelope, queue), credit: make(chan wire.PcapCredit, 1024), first: make(chan struct{})}
	go c.readLoop()
	return c
}

func (c *conn) readLoop() {
	defer close(c.msgs)
	var once sync.Once
	defer once.Do(func() { close(c.first) })
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		once.Do(func() { close(c.first) })
		env, err := wire.Parse(msg)
		if err != nil {
			c.err = err
			return
		}
		if env.Type == wire.TypePcapCredit {
			var cr wire.PcapCredit
			if env.Decode(&cr) == nil {
				c.credit <- cr
			}
			continue
		}
		c.msgs <- env
	}
}

// Next returns the next message, or an error when the connection ended
// or ctx is done first.
func (c *conn) Next(ctx context.Context) (wire.Envelope, error) {
	select {
	case env, ok := <-c.msgs:
		if !ok {
			return env, fmt.Errorf("connection closed: %w", c.err)
		}
		return env, nil
	case <-ctx.Done():
		return wire.Envelope{}, ctx.Err()
	}
}

// Expect returns the next message of type typ decoded into v (nil: not
// decoded), skipping messages of other types.
func (c *conn) Expect(ctx context.Context, typ string, v any) error {
	for {
		env, err := c.Next(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", typ, err)
		}
		if env.Type != typ {
			continue
		}
		if v == nil {
			return nil
		}
		return env.Decode(v)
	}
}

// Send sends an envelope of type typ holding data.
func (c *conn) Send(typ string, data any) error {
	b, err := wire.Marshal(typ, data)
	if err != nil {
		return err
	}
	return c.SendRaw(websocket.TextMessage, b)
}

// SendRaw sends one message as is.
func (c *conn) SendRaw(messageType int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(messageType, b)
}

// Close closes the connection.
func (c *conn) Close() error {
	c.wmu.Lock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.ws.Close()
}

// Worker is a fake worker: a real TLS WebSocket client speaking pkg/wire.
type Worker struct {
	*conn
	Hello wire.Hello
}

// DialWorker connects to the hub's worker port at addr, verifying it with
// the CA (PEM), says hello, and returns once the hub has registered the
// worker (its first message, the targets, has arrived and is left for
// Next).
func DialWorker(ctx context.Context, addr string, caPEM []byte, token string, hello wire.Hello) (*Worker, error) {
	tlsConf, err := wire.WorkerTLSConfig(caPEM)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 10 * time.Second}
	q := url.Values{"node": {hello.Node}, "worker": {hello.Worker}}
	u := url.URL{Scheme: "wss", Host: addr, Path: wire.PathWorker, RawQuery: q.Encode()}
	h := http.Header{}
	wire.SetToken(h, token)
	ws, resp, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		return nil, errStatus(resp, err)
	}
	w := &Worker{conn: newConn(ws, 4096), Hello: hello}
	if err := w.Send(wire.TypeHello, hello); err != nil {
		ws.Close()
		return nil, err
	}
	select {
	case <-w.first:
	case <-ctx.Done():
		ws.Close()
		return nil, ctx.Err()
	}
	return w, nil
}

// SendEntries sends one batch.
func (w *Worker) SendEntries(es []entry.Entry) error {
	return w.Send(wire.TypeEntries, wire.Entries{Entries: es})
}

// WaitFilter waits for a filter message with expression expr (earlier
// filter messages are skipped).
func (w *Worker) WaitFilter(ctx context.Context, expr string) error {
	for {
		var f wire.Filter
		if err := w.Expect(ctx, wire.TypeFilter, &f); err != nil {
			return fmt.Errorf("waiting for filter %q: %w", expr, err)
		}
		if f.Expr == expr {
			return nil
		}
	}
}

// SendPcap answers a pcap request with data (a pcapng stream) in chunks
// of at most chunk bytes, within the credit the hub grants, then ends it.
func (w *Worker) SendPcap(ctx context.Context, req wire.PcapRequest, data []byte, chunk int) error {
	credit := req.Credit
	for len(data) > 0 {
		for credit == 0 {
			select {
			case c := <-w.credit:
				if c.ID == req.ID {
					credit += c.Chunks
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		n := min(chunk, len(data), wire.MaxPcapChunk)
		if err := w.SendRaw(websocket.BinaryMessage, wire.AppendPcapChunk(nil, req.ID, data[:n])); err != nil {
			return err
		}
		data = data[n:]
		credit--
	}
	return w.Send(wire.TypePcapEnd, wire.PcapEnd{ID: req.ID})
}

// Subscriber is a client of GET /v1/subscribe.
type Subscriber struct {
	*conn
}

// SubscribeOptions tune a subscriber's client side.
type SubscribeOptions struct {
	// Dial, if not nil, opens the TCP connection (to shrink its buffers).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Queue is how many messages the client reads ahead of Next (65536).
	Queue int
}

// Subscribe connects to the hub's API at addr with filter expr.
func Subscribe(ctx context.Context, addr, token, expr string, o *SubscribeOptions) (*Subscriber, error) {
	if o == nil {
		o = &SubscribeOptions{}
	}
	if o.Queue <= 0 {
		o.Queue = 1 << 16
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: o.Dial}
	q := url.Values{}
	if expr != "" {
		q.Set("filter", expr)
	}
	u := url.URL{Scheme: "ws", Host: addr, Path: wire.PathSubscribe, RawQuery: q.Encode()}
	h := http.Header{}
	wire.SetToken(h, token)
	ws, resp, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil && resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			if len(b) > 0 {
				err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(b))
			}
		}
		return nil, errStatus(resp, err)
	}
	s := &Subscriber{conn: newConn(ws, o.Queue)}
	// The hub acknowledges the filter once the subscription is registered.
	var ack wire.Filter
	if err := s.Expect(ctx, wire.TypeFilter, &ack); err != nil {
		ws.Close()
		return nil, err
	}
	if ack.Expr != expr {
		ws.Close()
		return nil, fmt.Errorf("hub acknowledged filter %q, want %q", ack.Expr, expr)
	}
	return s, nil
}

// SetFilter asks for another filter (the ack or error comes as a message).
func (s *Subscriber) SetFilter(expr string) error {
	return s.Send(wire.TypeFilter, wire.Filter{Expr: expr})
}

// Heartbeat sends a heartbeat message.
func (s *Subscriber) Heartbeat() error { return s.Send(wire.TypeHeartbeat, nil) }

// NextEntry returns the next entry, skipping other messages but drop
// notices, whose counts it adds to *dropped (when not nil).
func (s *Subscriber) NextEntry(ctx context.Context, dropped *uint64) (entry.Entry, error) {
	for {
		env, err := s.Next(ctx)
		if err != nil {
			return entry.Entry{}, err
		}
		switch env.Type {
		case wire.TypeEntry:
			var e entry.Entry
			return e, env.Decode(&e)
		case wire.TypeDropped:
			var d wire.Dropped
			if err := env.Decode(&d); err != nil {
				return entry.Entry{}, err
			}
			if dropped == nil {
				return entry.Entry{}, errors.New("unexpected drop notice")
			}
			*dropped += d.N
		}
	}
}
