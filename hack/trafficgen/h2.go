package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"
)

func runH2CServer(ctx context.Context, args []string) error {
	fs := newFlagSet("h2c-server")
	var sf serveFlags
	sf.register(fs, "127.0.0.1:8081")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := sf.context(ctx)
	defer cancel()
	h2s := &http2.Server{IdleTimeout: 5 * time.Minute}
	// h2c is deprecated in favour of http.Server.Protocols, which speaks
	// prior knowledge only; the Upgrade: h2c dance needs this handler.
	return serveHTTP(ctx, newHTTPServer(h2c.NewHandler(newAPI(), h2s)), sf.addr) //nolint:staticcheck
}

// newH2CTransport speaks HTTP/2 over cleartext TCP with prior knowledge.
func newH2CTransport() *http2.Transport {
	return &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// multiTransport spreads requests over several HTTP/2 connections, one
// per transport, so a capture holds more than one h2c connection.
type multiTransport struct {
	trs  []*http2.Transport
	next atomic.Uint64
}

func (m *multiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	i := (m.next.Add(1) - 1) % uint64(len(m.trs))
	return m.trs[i].RoundTrip(req)
}

func (m *multiTransport) closeIdle() {
	for _, tr := range m.trs {
		tr.CloseIdleConnections()
	}
}

func runH2Client(ctx context.Context, args []string) error {
	fs := newFlagSet("h2-client")
	var cf clientFlags
	cf.register(fs, 60, 4)
	rawURL := fs.String("url", "http://127.0.0.1:8081", "h2c server base URL")
	conns := fs.Int("conns", 1, "HTTP/2 connections; the -c workers share them")
	largeEvery := fs.Int("large-every", 0, "make every Nth request a 200 KB download (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	if *conns < 1 {
		return errors.New("-conns must be >= 1")
	}
	base, err := url.Parse(strings.TrimSuffix(*rawURL, "/"))
	if err != nil || base.Scheme != "http" {
		return fmt.Errorf("-url %q: want http://host:port", *rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()

	mt := &multiTransport{}
	for range *conns {
		mt.trs = append(mt.trs, newH2CTransport())
	}
	defer mt.closeIdle()
	var rec recorder
	if err := runPlan(ctx, &cf, newHTTPClient(mt), base, *largeEvery, rec.http2); err != nil {
		return err
	}
	return rec.save(cf.log)
}

func runH2CUpgradeClient(ctx context.Context, args []string) error {
	fs := newFlagSet("h2c-upgrade-client")
	var cf clientFlags
	cf.register(fs, 6, 1)
	addr := fs.String("addr", "127.0.0.1:8081", "h2c server address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	var rec recorder
	// -c connections, each upgraded, sharing -n requests between them.
	err := forEach(ctx, cf.c, cf.c, func(ctx context.Context, j int) error {
		n := cf.n / cf.c
		if j < cf.n%cf.c {
			n++
		}
		if n == 0 {
			return nil
		}
		return upgradeConn(ctx, *addr, n, &rec)
	})
	if err != nil {
		return err
	}
	return rec.save(cf.log)
}

// upgradeSettings is the HTTP2-Settings payload of the upgrade request:
// SETTINGS_ENABLE_PUSH = 0.
var upgradeSettings = []byte{0x00, 0x02, 0x00, 0x00, 0x00, 0x00}

// upgradeConn makes n requests on one connection: the first as HTTP/1.1
// with Upgrade: h2c (answered on HTTP/2 stream 1, RFC 7540 section 3.2),
// the rest as HTTP/2 streams 3, 5, ...
func upgradeConn(ctx context.Context, addr string, n int, rec *recorder) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	const first = "/api/items"
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: trafficgen-upgrade/1\r\n"+
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n",
		first, addr, base64.RawURLEncoding.EncodeToString(upgradeSettings))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade: server answered %s", resp.Status)
	}
	rec.http1("GET", first, resp.StatusCode)

	c := &h2Conn{conn: conn, fr: http2.NewFramer(conn, br), host: addr}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return err
	}
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
		return err
	}
	if _, err := c.readResponse(1); err != nil {
		return fmt.Errorf("upgraded stream: %w", err)
	}
	rec.http2ResponseOnly()
	for i := 1; i < n; i++ {
		s := apiPlan[i%len(apiPlan)]
		id := uint32(2*i + 1)
		if err := c.writeRequest(id, s); err != nil {
			return err
		}
		status, err := c.readResponse(id)
		if err != nil {
			return fmt.Errorf("%s %s: %w", s.method, s.target, err)
		}
		rec.http2(s.method, s.target, status)
	}
	return c.fr.WriteGoAway(uint32(2*n-1), http2.ErrCodeNo, nil)
}

// h2Conn is a minimal HTTP/2 client connection driven one stream at a
// time.
type h2Conn struct {
	conn net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	host string
}

func (c *h2Conn) writeRequest(id uint32, s step) error {
	c.hbuf.Reset()
	fields := []hpack.HeaderField{
		{Name: ":method", Value: s.method},
		{Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: c.host},
		{Name: ":path", Value: s.target},
		{Name: "user-agent", Value: "trafficgen-upgrade/1"},
	}
	if s.body != "" {
		fields = append(fields,
			hpack.HeaderField{Name: "content-type", Value: "application/json"},
			hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(s.body))})
	}
	for k, v := range s.header {
		fields = append(fields, hpack.HeaderField{Name: strings.ToLower(k), Value: v, Sensitive: k == "Authorization"})
	}
	for _, f := range fields {
		if err := c.enc.WriteField(f); err != nil {
			return err
		}
	}
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: s.body == "", EndHeaders: true,
	})
	if err != nil || s.body == "" {
		return err
	}
	return c.fr.WriteData(id, true, []byte(s.body))
}

// readResponse reads frames until stream id ends, answering SETTINGS and
// PING and returning flow-control credit, and returns the final status.
func (c *h2Conn) readResponse(id uint32) (int, error) {
	status := 0
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return 0, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				err = c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				err = c.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			return 0, fmt.Errorf("server sent GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return 0, fmt.Errorf("stream reset: %v", f.ErrCode)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				if code, _ := strconv.Atoi(f.PseudoValue("status")); code >= 200 {
					status = code
				}
				if f.StreamEnded() {
					return status, nil
				}
			}
		case *http2.DataFrame:
			if n := uint32(len(f.Data())); n > 0 {
				err = c.fr.WriteWindowUpdate(0, n)
				if err == nil && !f.StreamEnded() {
					err = c.fr.WriteWindowUpdate(f.StreamID, n)
				}
			}
			if err == nil && f.StreamID == id && f.StreamEnded() {
				return status, nil
			}
		}
		if err != nil {
			return 0, err
		}
	}
}
