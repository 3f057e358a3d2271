package hub

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// Timing of every WebSocket (gorilla/websocket's chat example): the peer
// must answer a ping within pongWait; a write may block for writeWait.
const (
	writeWait  = 10 * time.Second
	pongWait   = 60 * time.Second
	pingPeriod = pongWait * 9 / 10
	// closeGrace is how long a closing connection may take to send its
	// close frame before the socket is shut.
	closeGrace = time.Second
	// noticePeriod is how often a write pump looks for drops to report
	// when no entry comes through.
	noticePeriod = time.Second
	// helloWait bounds the wait for a worker's hello.
	helloWait = 10 * time.Second
	// controlQueue bounds the control messages queued to a connection.
	controlQueue = 16
)

// writeBuffers is shared by every connection's write buffer: an idle
// connection then holds no write buffer at all.
var writeBuffers sync.Pool

// subscriberUpgrader keeps gorilla's default origin check: a page of
// another origin cannot subscribe with the user's cookie.
var subscriberUpgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   4 << 10,
	WriteBufferSize:  32 << 10,
	WriteBufferPool:  &writeBuffers,
}

// subscriber is one client subscription. The worker read pumps offer it
// entries (never blocking); its write pump sends them.
type subscriber struct {
	h      *server
	id     uint64
	remote string
	conn   *websocket.Conn
	filter atomic.Pointer[filter.Filter]

	// entries holds encoded entry envelopes, shared by every subscriber
	// they match; ctrl holds the rest (stats, errors, acks).
	entries chan []byte
	ctrl    chan outMsg
	// dropped counts entries dropped since the last notice; droppedTotal
	// since the subscription began.
	dropped      atomic.Uint64
	droppedTotal atomic.Uint64

	done      chan struct{}
	closeOnce sync.Once
	reason    string
}

// outMsg is a control message: raw bytes, or a message prepared once for
// every subscriber.
type outMsg struct {
	data []byte
	pm   *websocket.PreparedMessage
}

// serveSubscribe upgrades GET /v1/subscribe?filter=EXPR.
func (h *server) serveSubscribe(w http.ResponseWriter, r *http.Request) {
	f, err := filter.Compile(r.URL.Query().Get("filter"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(*h.subs.Load()) >= h.opts.MaxSubscribers {
		http.Error(w, "too many subscribers", http.StatusServiceUnavailable)
		return
	}
	conn, err := subscriberUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the client
	}
	s := &subscriber{
		h:       h,
		id:      h.nextID.Add(1),
		remote:  r.RemoteAddr,
		conn:    conn,
		entries: make(chan []byte, h.opts.SubscriberQueue),
		ctrl:    make(chan outMsg, controlQueue),
		done:    make(chan struct{}),
	}
	s.filter.Store(f)
	s.sendFilterAck() // queued first, so that it is the first message
	added := false
	if !h.do(func(reg *registry) {
		if added = reg.addSubscriber(s); added {
			h.conns.Add(2) // the pumps; added in the loop, so before Run waits
		}
	}) || !added {
		closeNow(conn, websocket.CloseTryAgainLater, "too many subscribers, or the hub is stopping")
		return
	}
	h.log.Info("subscriber connected", "id", s.id, "remote", s.remote, "filter", f.String())
	go s.writePump()
	s.readPump()
}

// closeNow sends a close frame and closes conn.
func closeNow(conn *websocket.Conn, code int, reason string) {
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeGrace))
	conn.Close()
}

// offer queues an entry without blocking; a full queue counts a drop.
func (s *subscriber) offer(msg []byte) bool {
	select {
	case s.entries <- msg:
		return true
	default:
	}
	select {
	case <-s.done:
	default:
		s.dropped.Add(1)
		s.droppedTotal.Add(1)
		s.h.dropped.Add(1)
	}
	return false
}

// sendControl queues a control message; a subscriber too slow to take it
// goes without (stats come again).
func (s *subscriber) sendControl(m outMsg) {
	select {
	case s.ctrl <- m:
	default:
	}
}

func (s *subscriber) sendEnvelope(typ string, data any) {
	b, err := wire.Marshal(typ, data)
	if err != nil {
		s.h.log.Error("encoding a message", "type", typ, "err", err)
		return
	}
	s.sendControl(outMsg{data: b})
}

func (s *subscriber) sendError(msg string) {
	s.sendEnvelope(wire.TypeError, wire.Error{Message: msg})
}

func (s *subscriber) sendFilterAck() {
	s.sendEnvelope(wire.TypeFilter, wire.Filter{Expr: s.filter.Load().String()})
}

// close ends the subscription: the write pump says goodbye and closes the
// socket, or the grace timer does if the pump is stuck in a write.
func (s *subscriber) close(reason string) {
	s.closeOnce.Do(func() {
		s.reason = reason
		close(s.done)
		time.AfterFunc(closeGrace, func() { s.conn.Close() })
	})
}

// readPump reads the client's messages until the connection fails, then
// unregisters the subscriber.
func (s *subscriber) readPump() {
	defer func() {
		s.h.do(func(r *registry) { r.removeSubscriber(s) })
		s.close("client left")
		// Log before Done: Run returns when all are done, and a test's
		// logger fails once the test has ended.
		s.h.log.Info("subscriber left", "id", s.id, "dropped", s.droppedTotal.Load())
		s.h.conns.Done()
	}()
	c := s.conn
	c.SetReadLimit(wire.MaxClientMessage)
	c.SetReadDeadline(time.Now().Add(pongWait))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(pongWait))
		s.handle(msg)
	}
}

// handle acts on one client message. Any message is a heartbeat.
func (s *subscriber) handle(msg []byte) {
	s.h.heartbeat()
	env, err := wire.Parse(msg)
	if err != nil {
		s.h.metrics.badMessages.WithLabelValues("subscriber").Inc()
		s.sendError(err.Error())
		return
	}
	switch env.Type {
	case wire.TypeHeartbeat:
	case wire.TypeFilter:
		var m wire.Filter
		if err := env.Decode(&m); err != nil {
			s.sendError(err.Error())
			return
		}
		f, err := filter.Compile(m.Expr)
		if err != nil {
			s.sendError(err.Error()) // the old filter stays
			return
		}
		s.filter.Store(f)
		s.h.do(func(r *registry) { r.pushFilter() })
		s.sendFilterAck()
	default:
		s.h.metrics.badMessages.WithLabelValues("subscriber").Inc()
		s.sendError("unknown message type " + strconv.Quote(env.Type))
	}
}

// writePump sends queued messages, drop notices and pings, until the
// subscription closes or a write fails.
func (s *subscriber) writePump() {
	defer s.h.conns.Done()
	defer s.close("write failed")
	notice := time.NewTicker(noticePeriod)
	ping := time.NewTicker(pingPeriod)
	defer notice.Stop()
	defer ping.Stop()
	for {
		var err error
		// Control messages (acks, errors, stats) go ahead of entries.
		select {
		case m := <-s.ctrl:
			err = s.writeOut(m)
		default:
			select {
			case m := <-s.ctrl:
				err = s.writeOut(m)
			case msg := <-s.entries:
				if err = s.notifyDrops(); err == nil {
					err = s.write(msg)
				}
			case <-notice.C:
				err = s.notifyDrops()
			case <-ping.C:
				s.conn.SetWriteDeadline(time.Now().Add(writeWait))
				err = s.conn.WriteMessage(websocket.PingMessage, nil)
			case <-s.done:
				closeNow(s.conn, websocket.CloseNormalClosure, s.reason)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// notifyDrops tells the client how many entries it lost since last time.
func (s *subscriber) notifyDrops() error {
	n := s.dropped.Swap(0)
	if n == 0 {
		return nil
	}
	b, err := wire.Marshal(wire.TypeDropped, wire.Dropped{N: n})
	if err != nil {
		return err
	}
	return s.write(b)
}

func (s *subscriber) write(b []byte) error {
	s.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

func (s *subscriber) writeOut(m outMsg) error {
	if m.pm == nil {
		return s.write(m.data)
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return s.conn.WritePreparedMessage(m.pm)
}

// preparedEnvelope encodes a message once for many subscribers.
func preparedEnvelope(typ string, data any) (outMsg, error) {
	b, err := wire.Marshal(typ, data)
	if err != nil {
		return outMsg{}, err
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		return outMsg{}, err
	}
	return outMsg{pm: pm}, nil
}
