// Package hubclient is the CLI's side of the hub API (see pkg/wire): it
// posts targets, subscribes to entries, and downloads pcapng, over any
// dialer (in practice a port-forward to the hub pod). A subscription
// survives a broken connection: it dials again, resubscribes with its
// filter, and tells the caller how long it was away.
package hubclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// DialFunc opens a connection to the hub's API port.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Client talks to one hub.
type Client struct {
	token string
	base  string // http://host, the Host the hub sees
	http  *http.Client
	ws    *websocket.Dialer
}

// New returns a client that reaches the hub through dial (nil dials
// addr with net.Dialer) and presents token. addr is host:port: what the
// requests name as their Host.
func New(addr, token string, dial DialFunc) *Client {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	tr := &http.Transport{
		DialContext:           dial,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	return &Client{
		token: token,
		base:  "http://" + addr,
		http:  &http.Client{Transport: tr},
		ws: &websocket.Dialer{
			NetDialContext:   dial,
			HandshakeTimeout: 15 * time.Second,
			ReadBufferSize:   64 << 10,
			WriteBufferSize:  4 << 10,
		},
	}
}

// APIError is a hub's non-2xx answer.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	msg := strings.TrimSpace(e.Message)
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("hub: %s (HTTP %d)", msg, e.Status)
}

// IsUnauthorized reports whether err is the hub refusing the token.
func IsUnauthorized(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusUnauthorized
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	wire.SetToken(req.Header, c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, &APIError{Status: resp.StatusCode, Message: string(msg)}
	}
	return resp, nil
}

// Healthz asks whether the hub answers.
func (c *Client) Healthz(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, wire.PathHealthz, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Heartbeat tells the hub a client is still there.
func (c *Client) Heartbeat(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodPost, wire.PathHeartbeat, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PostTargets replaces the hub's targets and IP map.
func (c *Client) PostTargets(ctx context.Context, t wire.Targets) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, wire.PathTargets, strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PcapQuery selects the packets of an export (see GET /v1/pcap).
type PcapQuery struct {
	Since  time.Duration // 0: from the oldest stored packet
	Pods   []string      // namespace/name; empty: every target
	Follow bool          // keep streaming live packets
	Live   bool          // only packets from now on (the hub's clock), none stored
}

func (q PcapQuery) values() url.Values {
	v := url.Values{}
	if q.Since > 0 {
		v.Set("since", q.Since.String())
	}
	if len(q.Pods) > 0 {
		v.Set("pods", strings.Join(q.Pods, ","))
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	if q.Live {
		v.Set("live", "true")
	}
	return v
}

// Pcap starts an export; the body is a pcapng stream.
func (c *Client) Pcap(ctx context.Context, q PcapQuery) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, wire.PathPcap+"?"+q.values().Encode(), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Handler receives what a subscription brings. Every method is called from
// the subscription's goroutine, one at a time; none may be nil.
type Handler interface {
	Entry(e *entry.Entry)
	Dropped(n uint64)
	Stats(s wire.SessionStats)
	// Disconnected is called when the connection broke, with why; the
	// subscription dials again. Reconnected follows once it is back.
	Disconnected(err error)
	Reconnected(down time.Duration)
}

// Subscription timing: the hub sends stats every 2 s, so a connection
// that is silent for readTimeout is dead even if TCP does not know it.
var (
	heartbeatPeriod = 10 * time.Second
	readTimeout     = 15 * time.Second
	retryMin        = 100 * time.Millisecond
	retryMax        = time.Second
)

// ErrFilter wraps the hub's refusal of a filter.
var ErrFilter = errors.New("filter refused")

// Subscribe streams the entries that match filter to h until ctx ends,
// reconnecting as needed (every heartbeatPeriod it sends a heartbeat, so
// the hub does not go idle while this runs). It returns ctx's error, or
// the first error that retrying cannot fix: the token refused (401), the
// filter refused.
func (c *Client) Subscribe(ctx context.Context, filter string, h Handler) error {
	u := strings.Replace(c.base, "http://", "ws://", 1) + wire.PathSubscribe + "?" + url.Values{"filter": {filter}}.Encode()
	var downSince time.Time
	wait := retryMin
	for {
		err := c.subscribeOnce(ctx, u, h, &downSince)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if IsUnauthorized(err) || errors.Is(err, ErrFilter) {
			return err
		}
		if downSince.IsZero() { // it was up: retry at once, then back off
			downSince = time.Now()
			wait = retryMin
			h.Disconnected(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, retryMax)
	}
}

// subscribeOnce runs one connection; it returns why it ended.
func (c *Client) subscribeOnce(ctx context.Context, u string, h Handler, downSince *time.Time) error {
	hdr := http.Header{}
	wire.SetToken(hdr, c.token)
	conn, resp, err := c.ws.DialContext(ctx, u, hdr)
	if err != nil {
		if resp != nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			ae := &APIError{Status: resp.StatusCode, Message: string(msg)}
			if resp.StatusCode == http.StatusBadRequest {
				return fmt.Errorf("%w: %s", ErrFilter, strings.TrimSpace(ae.Message))
			}
			return ae
		}
		return err
	}
	defer conn.Close()
	if !downSince.IsZero() {
		h.Reconnected(time.Since(*downSince))
		*downSince = time.Time{}
	}
	conn.SetReadLimit(wire.MaxHubMessage)
	stop := make(chan struct{})
	defer close(stop)
	go c.heartbeats(ctx, conn, stop)
	var e entry.Entry
	for {
		conn.SetReadDeadline(time.Now().Add(readTimeout))
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		if data, ok := wire.CutData(msg, wire.TypeEntry); ok {
			e = entry.Entry{}
			if json.Unmarshal(data, &e) == nil {
				h.Entry(&e)
				continue
			}
		}
		if err := handle(msg, h); err != nil {
			return err
		}
	}
}

// handle acts on one message other than a fast-path entry.
func handle(msg []byte, h Handler) error {
	env, err := wire.Parse(msg)
	if err != nil {
		return err
	}
	switch env.Type {
	case wire.TypeEntry:
		var e entry.Entry
		if err := env.Decode(&e); err != nil {
			return err
		}
		h.Entry(&e)
	case wire.TypeDropped:
		var d wire.Dropped
		if env.Decode(&d) == nil {
			h.Dropped(d.N)
		}
	case wire.TypeStats:
		var s wire.SessionStats
		if env.Decode(&s) == nil {
			h.Stats(s)
		}
	case wire.TypeError:
		var e wire.Error
		env.Decode(&e)
		return fmt.Errorf("hub: %s", e.Message)
	}
	return nil // filter acks and types added later
}

// heartbeats keeps the hub from going idle, and makes a dead connection
// fail its write.
func (c *Client) heartbeats(ctx context.Context, conn *websocket.Conn, stop <-chan struct{}) {
	msg, _ := wire.Marshal(wire.TypeHeartbeat, nil)
	t := time.NewTicker(heartbeatPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			conn.Close()
			return
		case <-stop:
			return
		case <-t.C:
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				conn.Close()
				return
			}
		}
	}
}
