package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// A small Redis client: RESP2 commands over a pool of connections. The cart
// needs five commands, which does not justify a client library.

// Caps on what the client reads from the server, so a broken server cannot
// make it allocate without bound.
const (
	respMaxLine  = 64 << 10
	respMaxBulk  = 1 << 20
	respMaxArray = 10_000
)

// redisError is an error reply (-ERR ...) from the server.
type redisError string

func (e redisError) Error() string { return "redis: " + string(e) }

// errNil is the nil bulk string or nil array.
var errNil = errors.New("redis: nil")

// redisClient keeps up to size idle connections to one server.
type redisClient struct {
	addr    string
	timeout time.Duration
	idle    chan *redisConn
}

type redisConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func newRedisClient(addr string, size int) *redisClient {
	return &redisClient{addr: addr, timeout: 2 * time.Second, idle: make(chan *redisConn, size)}
}

// do sends one command and returns its reply: string, int64, []any, or nil.
func (rc *redisClient) do(ctx context.Context, args ...string) (any, error) {
	conn, err := rc.get(ctx)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(rc.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.c.SetDeadline(deadline)
	reply, err := conn.roundTrip(args)
	var rerr redisError
	if err != nil && !errors.As(err, &rerr) && !errors.Is(err, errNil) {
		conn.c.Close() // the stream may be mid-reply: never reuse it
		return nil, err
	}
	rc.put(conn)
	return reply, err
}

func (rc *redisClient) get(ctx context.Context) (*redisConn, error) {
	select {
	case c := <-rc.idle:
		return c, nil
	default:
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, rc.timeout)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", rc.addr)
	if err != nil {
		return nil, err
	}
	return &redisConn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}, nil
}

func (rc *redisClient) put(c *redisConn) {
	select {
	case rc.idle <- c:
	default:
		c.c.Close()
	}
}

func (rc *redisClient) close() {
	for {
		select {
		case c := <-rc.idle:
			c.c.Close()
		default:
			return
		}
	}
}

func (c *redisConn) roundTrip(args []string) (any, error) {
	c.w.Write(appendCommand(nil, args))
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	return readReply(c.r, 0)
}

// appendCommand encodes args as a RESP array of bulk strings.
func appendCommand(b []byte, args []string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// readReply reads one RESP2 reply. Arrays nest at most 4 deep: the cart never
// needs more, and a cap keeps recursion bounded.
func readReply(r *bufio.Reader, depth int) (any, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, errors.New("redis: empty reply line")
	}
	body := string(line[1:])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, redisError(body)
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: integer %q: %w", body, err)
		}
		return n, nil
	case '$':
		return readBulk(r, body)
	case '*':
		if depth >= 4 {
			return nil, errors.New("redis: reply nested too deep")
		}
		return readArray(r, body, depth)
	}
	return nil, fmt.Errorf("redis: unknown reply type %q", line[0])
}

func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > respMaxLine {
		return nil, errors.New("redis: reply line too long")
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errors.New("redis: reply line without CRLF")
	}
	return line[:len(line)-2], nil
}

func readBulk(r *bufio.Reader, size string) (any, error) {
	n, err := strconv.Atoi(size)
	switch {
	case err != nil:
		return nil, fmt.Errorf("redis: bulk length %q: %w", size, err)
	case n == -1:
		return nil, errNil
	case n < 0 || n > respMaxBulk:
		return nil, fmt.Errorf("redis: bulk length %d out of range", n)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return string(buf[:n]), nil
}

func readArray(r *bufio.Reader, size string, depth int) (any, error) {
	n, err := strconv.Atoi(size)
	switch {
	case err != nil:
		return nil, fmt.Errorf("redis: array length %q: %w", size, err)
	case n == -1:
		return nil, errNil
	case n < 0 || n > respMaxArray:
		return nil, fmt.Errorf("redis: array length %d out of range", n)
	}
	out := make([]any, 0, n)
	for range n {
		v, err := readReply(r, depth+1)
		if err != nil && !errors.Is(err, errNil) {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
