package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket log keys: "<METHOD> <dir> <status>", the method the opcode in
// upper case (TEXT, BINARY, PING, PONG, CLOSE), dir who sent it (client,
// server), status the close code of a close frame.

// wsServer echoes every data message; it answers a close with the same
// code and the reason "bye".
func wsServer(args []string) error {
	fs := flag.NewFlagSet("ws-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8765", "listen address")
	duration := fs.Duration("duration", 10*time.Minute, "exit after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	up := websocket.Upgrader{EnableCompression: true, WriteBufferSize: 1024}
	mux := http.NewServeMux()
	mux.HandleFunc("/chat", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetCloseHandler(func(code int, _ string) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "bye"), time.Now().Add(time.Second))
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
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		time.Sleep(*duration)
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// wsClient opens one connection (compressed or not), exchanges text,
// binary, a message large enough to be fragmented, a ping, and closes.
func wsClient(args []string) error {
	fs := flag.NewFlagSet("ws-client", flag.ContinueOnError)
	u := fs.String("url", "ws://127.0.0.1:8765/chat", "server URL")
	compress := fs.Bool("compress", false, "offer permessage-deflate")
	logPath := fs.String("log", "", "log file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d := websocket.Dialer{EnableCompression: *compress, WriteBufferSize: 1024, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(*u, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	l := Log{}
	l.entry("http", "GET", resp.Request.URL.RequestURI(), strconv.Itoa(resp.StatusCode))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	pongs := 0
	c.SetPongHandler(func(string) error { pongs++; return nil })

	echo := func(typ int, method string, msg []byte) error {
		if err := c.WriteMessage(typ, msg); err != nil {
			return err
		}
		l.entry("websocket", method, "client")
		for {
			got, back, err := c.ReadMessage()
			if err != nil {
				return err
			}
			if got != typ || !bytes.Equal(back, msg) {
				return fmt.Errorf("echo of %d bytes came back as %d bytes", len(msg), len(back))
			}
			l.entry("websocket", method, "server")
			return nil
		}
	}
	msgs := []struct {
		typ    int
		method string
		data   []byte
	}{
		{websocket.TextMessage, "TEXT", []byte(`{"type":"subscribe","room":"shop"}`)},
		{websocket.BinaryMessage, "BINARY", []byte{0, 1, 2, 3, 0xFF}},
		{websocket.TextMessage, "TEXT", bytes.Repeat([]byte("all work and no play "), 200)}, // 4200 bytes: fragmented
		{websocket.TextMessage, "TEXT", []byte("naïve café ☕")},
	}
	for i, m := range msgs {
		if err := echo(m.typ, m.method, m.data); err != nil {
			return err
		}
		if i == 1 {
			if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
				return err
			}
			l.entry("websocket", "PING", "client")
		}
	}
	// The pong is read with the next message; the close handshake ends
	// the reading.
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"), time.Now().Add(time.Second)); err != nil {
		return err
	}
	l.entry("websocket", "CLOSE", "client", "1000")
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				return err
			}
			break
		}
	}
	l.entry("websocket", "CLOSE", "server", "1000")
	if pongs != 1 {
		return fmt.Errorf("%d pongs, want 1", pongs)
	}
	l.entry("websocket", "PONG", "server")
	return l.write(*logPath)
}
