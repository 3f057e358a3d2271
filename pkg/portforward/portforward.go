// Package portforward reaches one port of a pod through the API server,
// as `kubectl port-forward` does, but survives the drops that plague long
// port-forwards: every new connection to the pod runs over the current
// stream connection, and a broken stream connection is dialed again on
// the next use. A local listener (for a browser) keeps its port across
// reconnects, so a page that reconnects finds the hub again.
package portforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// dialTimeout bounds one attempt to open the stream connection.
const dialTimeout = 10 * time.Second

// Forwarder forwards connections to one port of one pod.
type Forwarder struct {
	Namespace, Pod string
	Port           int

	dialer httpstream.Dialer

	mu        sync.Mutex
	conn      httpstream.Connection
	requestID int

	dials atomic.Int64 // stream connections opened, for tests and stats
}

// New returns a Forwarder to namespace/pod:port. It dials nothing yet.
// Like kubectl, it speaks the port-forward protocol over WebSockets and
// falls back to SPDY when the API server does not upgrade to them.
func New(cfg *rest.Config, client kubernetes.Interface, namespace, pod string, port int) (*Forwarder, error) {
	u := client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod/%s: %w", pod, err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	if ws, err := portforward.NewSPDYOverWebsocketDialer(u, cfg); err == nil {
		dialer = portforward.NewFallbackDialer(ws, dialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
	}
	return &Forwarder{Namespace: namespace, Pod: pod, Port: port, dialer: dialer}, nil
}

// Dials returns how many stream connections were opened: 1 plus the
// reconnects.
func (f *Forwarder) Dials() int64 { return f.dials.Load() }

// connection returns the live stream connection, dialing a new one when
// there is none or the last one closed.
func (f *Forwarder) connection(ctx context.Context) (httpstream.Connection, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		select {
		case <-f.conn.CloseChan():
			f.conn = nil
		default:
		}
	}
	if f.conn == nil {
		conn, err := f.dial(ctx)
		if err != nil {
			return nil, 0, err
		}
		f.conn = conn
	}
	f.requestID++
	return f.conn, f.requestID, nil
}

// dial opens a stream connection. The dialer takes no context, so a dial
// that outlives ctx is abandoned and closed when it returns.
func (f *Forwarder) dial(ctx context.Context) (httpstream.Connection, error) {
	type result struct {
		conn httpstream.Connection
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		conn, proto, err := f.dialer.Dial(portforward.PortForwardProtocolV1Name)
		if err == nil && proto != portforward.PortForwardProtocolV1Name {
			conn.Close()
			err = fmt.Errorf("the API server speaks port-forward protocol %q, not %q", proto, portforward.PortForwardProtocolV1Name)
		}
		ch <- result{conn, err}
	}()
	t := time.NewTimer(dialTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("port-forward to pod/%s: %w", f.Pod, r.err)
		}
		f.dials.Add(1)
		return r.conn, nil
	case <-ctx.Done():
	case <-t.C:
	}
	go func() {
		if r := <-ch; r.conn != nil {
			r.conn.Close()
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("port-forward to pod/%s: no answer from the API server in %v", f.Pod, dialTimeout)
}

// drop forgets conn if it is still the current one, and closes it.
func (f *Forwarder) drop(conn httpstream.Connection) {
	f.mu.Lock()
	if f.conn == conn {
		f.conn = nil
	}
	f.mu.Unlock()
	conn.Close()
}

// Dial opens a connection to the pod's port. It has the signature of
// net.Dialer.DialContext, so HTTP and WebSocket clients can use it; the
// network and address are ignored.
func (f *Forwarder) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var lastErr error
	// A stream connection can die between two uses; one fresh dial is
	// worth a try before giving up.
	for attempt := 0; attempt < 2; attempt++ {
		conn, id, err := f.connection(ctx)
		if err != nil {
			return nil, err
		}
		c, err := f.open(conn, id)
		if err == nil {
			return c, nil
		}
		lastErr = err
		f.drop(conn)
	}
	return nil, lastErr
}

// open creates the error and data streams of one forwarded connection.
func (f *Forwarder) open(conn httpstream.Connection, id int) (net.Conn, error) {
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, strconv.Itoa(f.Port))
	h.Set(corev1.PortForwardRequestIDHeader, strconv.Itoa(id))
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod/%s: %w", f.Pod, err)
	}
	errStream.Close() // nothing to write on it
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		conn.RemoveStreams(errStream)
		return nil, fmt.Errorf("port-forward to pod/%s: %w", f.Pod, err)
	}
	local, remote := net.Pipe()
	s := &stream{conn: conn, data: data, errStream: errStream, pipe: remote}
	go s.run()
	return &forwardedConn{Conn: local, s: s, pod: f.Pod, port: f.Port}, nil
}

// stream pumps one forwarded connection between a pipe and the streams.
type stream struct {
	conn      httpstream.Connection
	data      httpstream.Stream
	errStream httpstream.Stream
	pipe      net.Conn

	errMsg atomic.Pointer[string] // what the kubelet said went wrong
}

func (s *stream) run() {
	defer s.conn.RemoveStreams(s.errStream, s.data)
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		msg, _ := io.ReadAll(io.LimitReader(s.errStream, 4<<10))
		if len(msg) > 0 {
			m := string(msg)
			s.errMsg.Store(&m)
			s.pipe.Close()
		}
	}()
	remoteDone := make(chan struct{})
	go func() {
		defer close(remoteDone)
		io.Copy(s.pipe, s.data)
		s.pipe.Close()
	}()
	io.Copy(s.data, s.pipe)
	s.data.Close() // no more to send
	select {
	case <-remoteDone:
	case <-time.After(5 * time.Second):
	}
	s.data.Reset()
	select {
	case <-errDone:
	case <-time.After(time.Second):
	}
}

// forwardedConn is the local end of a forwarded connection. Its
// addresses name the pod, for error messages.
type forwardedConn struct {
	net.Conn
	s    *stream
	pod  string
	port int
}

// Read returns the kubelet's error, when it sent one, instead of a bare
// EOF: "connection refused" reads better than "EOF".
func (c *forwardedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		if m := c.s.errMsg.Load(); m != nil {
			return n, fmt.Errorf("port-forward to pod/%s:%d: %s", c.pod, c.port, *m)
		}
	}
	return n, err
}

// Close closes the local end; the pump then ends the streams.
func (c *forwardedConn) Close() error { return c.Conn.Close() }

// Serve accepts connections on ln and forwards each to the pod, until ctx
// ends or ln is closed. A connection that cannot be forwarded is closed
// at once (the client retries); onError, when set, hears why.
func (f *Forwarder) Serve(ctx context.Context, ln net.Listener, onError func(error)) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go f.pipe(ctx, c, onError)
	}
}

func (f *Forwarder) pipe(ctx context.Context, c net.Conn, onError func(error)) {
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	remote, err := f.Dial(dctx, "tcp", "")
	cancel()
	if err != nil {
		if onError != nil && ctx.Err() == nil {
			onError(err)
		}
		return
	}
	defer remote.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(remote, c)
		remote.Close()
		close(done)
	}()
	io.Copy(c, remote)
	c.Close()
	<-done
}

// Close closes the stream connection; connections in flight end.
func (f *Forwarder) Close() {
	f.mu.Lock()
	conn := f.conn
	f.conn = nil
	f.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}
