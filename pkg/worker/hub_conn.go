package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// hubConn is one connection to the hub. The read loop handles the hub's
// messages; the write pump is the only writer of the socket (but for
// pongs and the close frame, which gorilla/websocket allows alongside).
type hubConn struct {
	l   *HubLink
	ws  *websocket.Conn
	w   HubWorker
	ctx context.Context // ends with the connection: exports stop
	end context.CancelFunc

	pcapQ chan pcapMsg // pcap chunks and ends, in order

	failOnce sync.Once
	failErr  error

	emu     sync.Mutex
	exports map[string]*pcapExport
	running sync.WaitGroup // export goroutines

	buf bytes.Buffer // read buffer
}

// pcapMsg is a chunk (binary) or a pcap-end (text).
type pcapMsg struct {
	binary bool
	b      []byte
}

func newHubConn(ctx context.Context, l *HubLink, ws *websocket.Conn, w HubWorker) *hubConn {
	cctx, cancel := context.WithCancel(ctx)
	return &hubConn{
		l: l, ws: ws, w: w, ctx: cctx, end: cancel,
		pcapQ:   make(chan pcapMsg, 8),
		exports: map[string]*pcapExport{},
	}
}

// hello sends the first message; the hub answers with the targets and
// the filter.
func (c *hubConn) hello(h wire.Hello) error {
	b, err := wire.Marshal(wire.TypeHello, h)
	if err != nil {
		return err
	}
	c.ws.SetWriteDeadline(time.Now().Add(hubWriteWait))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// fail records why the connection ends (the first reason wins) and ends
// it.
func (c *hubConn) fail(err error) {
	c.failOnce.Do(func() { c.failErr = err })
	c.end()
}

// serve runs the connection until it fails or the link's context ends,
// then stops its exports and drops the entries queued for it.
func (c *hubConn) serve() error {
	var pump sync.WaitGroup
	pump.Go(c.writePump)
	c.fail(c.readLoop())
	// The read loop ends on a dead connection, or after the write pump
	// said goodbye; a pump stuck in a write to a hub that went away would
	// wait for its deadline: closing unblocks it.
	c.ws.Close()
	pump.Wait()
	c.l.connected.Store(false)
	c.running.Wait()
	c.l.drainQueue()
	if errors.Is(c.failErr, context.Canceled) {
		return nil
	}
	return c.failErr
}

// readLoop reads the hub's messages until the connection fails.
func (c *hubConn) readLoop() error {
	ws := c.ws
	ws.SetReadLimit(wire.MaxHubMessage)
	alive := func() { ws.SetReadDeadline(time.Now().Add(hubReadWait)) }
	alive()
	ws.SetPongHandler(func(string) error { alive(); return nil })
	ws.SetPingHandler(func(data string) error {
		alive()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(hubWriteWait))
		if err == nil || errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	for {
		typ, r, err := ws.NextReader()
		if err != nil {
			return c.readError(err)
		}
		alive()
		// The hub's first message (the targets) says it registered this
		// worker: entries are worth encoding from now on.
		c.l.connected.Store(true)
		if c.buf.Cap() > 2*wire.MaxBatchBytes {
			c.buf = bytes.Buffer{} // let a huge targets message's buffer go
		}
		c.buf.Reset()
		if _, err := c.buf.ReadFrom(r); err != nil {
			return c.readError(err)
		}
		if typ != websocket.TextMessage {
			c.l.opts.Logf("ignoring a binary message from the hub")
			continue
		}
		if err := c.handle(c.buf.Bytes()); err != nil {
			return err
		}
	}
}

// readError names why reading stopped: the hub's close reason, or the
// link's context ending.
func (c *hubConn) readError(err error) error {
	if c.ctx.Err() != nil {
		return c.ctx.Err()
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Text != "" {
			return fmt.Errorf("the hub closed the connection: %s", ce.Text)
		}
		return fmt.Errorf("the hub closed the connection (code %d)", ce.Code)
	}
	return err
}

// handle acts on one message. Only an envelope of another version ends
// the connection; other bad messages are logged and skipped.
func (c *hubConn) handle(msg []byte) error {
	env, err := wire.Parse(msg)
	if errors.Is(err, wire.ErrVersion) {
		return fmt.Errorf("hub %s: %w", c.l.opts.Addr, err)
	}
	if err == nil {
		err = c.dispatch(env)
	}
	if err != nil {
		c.l.opts.Logf("bad message from the hub: %v", err)
	}
	return nil
}

func (c *hubConn) dispatch(env wire.Envelope) error {
	switch env.Type {
	case wire.TypeTargets:
		var t wire.Targets
		if err := env.Decode(&t); err != nil {
			return err
		}
		c.l.setTargets(c.w, t)
	case wire.TypeFilter:
		var f wire.Filter
		if err := env.Decode(&f); err != nil {
			return err
		}
		c.l.setFilter(f.Expr)
	case wire.TypePcapRequest:
		var req wire.PcapRequest
		if err := env.Decode(&req); err != nil {
			return err
		}
		c.startExport(req)
	case wire.TypePcapCredit:
		var cr wire.PcapCredit
		if err := env.Decode(&cr); err != nil {
			return err
		}
		c.credit(cr)
	case wire.TypePcapCancel:
		var pc wire.PcapCancel
		if err := env.Decode(&pc); err != nil {
			return err
		}
		c.cancelExport(pc.ID)
	default:
		// A newer hub may send more; this worker does without.
		return fmt.Errorf("unknown message type %q", env.Type)
	}
	return nil
}

// setTargets applies a targets message: the IPMap first, so that entries
// of new targets are named at once, then the targets this worker can
// capture.
func (l *HubLink) setTargets(w HubWorker, t wire.Targets) {
	m, _ := t.IPMap.Normalize()
	l.ipmap.Store(&m)
	ts := make([]Target, 0, len(t.Targets))
	var bad []string
	for _, wt := range t.Targets {
		tg, err := targetOf(wt)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		ts = append(ts, tg)
	}
	if len(bad) > 0 {
		l.opts.Logf("ignoring %d targets from the hub: %s", len(bad), strings.Join(bad, "; "))
	}
	if err := w.SetTargets(ts); err != nil {
		l.opts.Logf("targets from the hub: %v", err)
		return
	}
	if sum := targetsSummary(ts); sum != l.lastTarget {
		l.lastTarget = sum
		l.opts.Logf("%d targets from the hub, %d addresses named", len(ts), len(m))
	}
}

// targetOf converts a wire target; the hub checked its fields, but this
// worker checks what it relies on.
func targetOf(wt wire.Target) (Target, error) {
	t := Target{UID: wt.UID, Namespace: wt.Namespace, Name: wt.Name}
	for _, s := range wt.IPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Target{}, fmt.Errorf("target %s/%s: bad IP %q", wt.Namespace, wt.Name, s)
		}
		t.IPs = append(t.IPs, a.Unmap().WithZone(""))
	}
	if t.Namespace == "" || t.Name == "" {
		return Target{}, fmt.Errorf("target %q has no namespace or name", wt.UID)
	}
	if err := t.Validate(); err != nil {
		return Target{}, err
	}
	return t, nil
}

// targetsSummary identifies a target set, to log only its changes.
func targetsSummary(ts []Target) string {
	keys := make([]string, len(ts))
	for i, t := range ts {
		keys[i] = t.UID + "=" + t.DisplayName()
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// writePump writes everything the worker sends until the connection
// fails or ends, then closes it.
func (c *hubConn) writePump() {
	ws := c.ws
	defer ws.Close()
	ping := time.NewTicker(hubPingPeriod)
	defer ping.Stop()
	stats := time.NewTicker(c.l.opts.StatsInterval)
	defer stats.Stop()
	c.write(websocket.TextMessage, c.statsMessage())
	for {
		var err error
		select {
		case <-c.ctx.Done():
			ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, "worker stopping"),
				time.Now().Add(hubCloseGrace))
			return
		case m := <-c.pcapQ:
			typ := websocket.TextMessage
			if m.binary {
				typ = websocket.BinaryMessage
			}
			err = c.write(typ, m.b)
		case b := <-c.l.queue:
			err = c.write(websocket.TextMessage, b.buf)
			if err == nil {
				c.l.sent.Add(uint64(b.n))
				c.l.batches.Add(1)
			} else {
				c.l.dropped.Add(uint64(b.n))
			}
			putEntryBatch(b)
		case <-stats.C:
			err = c.write(websocket.TextMessage, c.statsMessage())
		case <-ping.C:
			ws.SetWriteDeadline(time.Now().Add(hubWriteWait))
			err = ws.WriteMessage(websocket.PingMessage, nil)
		}
		if err != nil {
			c.fail(fmt.Errorf("writing to the hub: %w", err))
			return
		}
	}
}

func (c *hubConn) write(typ int, b []byte) error {
	if b == nil {
		return nil
	}
	c.ws.SetWriteDeadline(time.Now().Add(hubWriteWait))
	return c.ws.WriteMessage(typ, b)
}

// statsMessage encodes the worker's stats with the link's drops.
func (c *hubConn) statsMessage() []byte {
	st := c.w.HubStats()
	st.Node, st.Worker = c.l.opts.Hello.Node, c.l.opts.Hello.Worker
	st.Time = time.Now()
	st.EntriesDropped = c.l.dropped.Load()
	b, err := wire.Marshal(wire.TypeStats, st)
	if err != nil {
		c.l.opts.Logf("encoding stats: %v", err)
		return nil
	}
	return b
}
