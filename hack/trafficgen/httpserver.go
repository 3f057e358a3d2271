package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// itemsETag is the fixed ETag of /api/etag, so a client can get a 304.
const itemsETag = `"items-v1"`

// Bounds on what a request may ask of the server.
const (
	maxBodyBytes = 1 << 20
	maxSlow      = 2 * time.Second
	maxChunks    = 64
	maxLargeKB   = 4096
)

// apiItem is the demo catalog's item as the HTTP API shows it.
type apiItem struct {
	ID         int    `json:"id"`
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
}

var apiItems = []apiItem{
	{1, "sku-1", "espresso cup", 1200},
	{2, "sku-2", "french press", 3400},
	{7, "sku-7", "milk jug", 1550},
	{42, "sku-42", "grinder", 12900},
}

// newAPI returns the demo HTTP API, served alike over HTTP/1.1 and h2c.
// Each endpoint exercises one thing a dissector must handle.
func newAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/items", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, apiItems)
	})
	mux.HandleFunc("GET /api/items/{id}", getItem)
	mux.HandleFunc("POST /api/items", createItem)
	mux.HandleFunc("PUT /api/items/{id}", updateItem)
	mux.HandleFunc("DELETE /api/items/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/etag", etagItems)
	mux.HandleFunc("GET /api/fail", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "backend unavailable"})
	})
	mux.HandleFunc("GET /old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/api/items", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /stream", streamChunks)
	mux.HandleFunc("GET /gzip", gzipItems)
	mux.HandleFunc("GET /slow", slow)
	mux.HandleFunc("GET /large", large)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func findItem(idText string) (apiItem, bool) {
	id, err := strconv.Atoi(idText)
	if err != nil {
		return apiItem{}, false
	}
	for _, it := range apiItems {
		if it.ID == id {
			return it, true
		}
	}
	return apiItem{}, false
}

func getItem(w http.ResponseWriter, r *http.Request) {
	it, ok := findItem(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such item"})
		return
	}
	writeJSON(w, http.StatusOK, it)
}

func createItem(w http.ResponseWriter, r *http.Request) {
	var it apiItem
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&it); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad json"})
		return
	}
	it.ID = 100
	w.Header().Set("Location", "/api/items/100")
	writeJSON(w, http.StatusCreated, it)
}

func updateItem(w http.ResponseWriter, r *http.Request) {
	it, ok := findItem(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such item"})
		return
	}
	var patch apiItem
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&patch); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad json"})
		return
	}
	if patch.Name != "" {
		it.Name = patch.Name
	}
	writeJSON(w, http.StatusOK, it)
}

func etagItems(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", itemsETag)
	w.Header().Set("Cache-Control", "max-age=60")
	if r.Header.Get("If-None-Match") == itemsETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, apiItems)
}

// streamChunks sends ?chunks=N JSON lines, flushing each, so HTTP/1.1 uses
// chunked transfer encoding and HTTP/2 several DATA frames.
func streamChunks(w http.ResponseWriter, r *http.Request) {
	n := queryInt(r, "chunks", 5, maxChunks)
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher, _ := w.(http.Flusher)
	for i := range n {
		fmt.Fprintf(w, "{\"seq\":%d,\"event\":\"tick\"}\n", i)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// gzipItems always answers gzip-encoded when the client accepts it.
func gzipItems(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Vary", "Accept-Encoding")
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		_ = json.NewEncoder(w).Encode(apiItems)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	zw := gzip.NewWriter(w)
	_ = json.NewEncoder(zw).Encode(apiItems)
	_ = zw.Close()
}

func slow(w http.ResponseWriter, r *http.Request) {
	d := time.Duration(queryInt(r, "ms", 100, int(maxSlow/time.Millisecond))) * time.Millisecond
	select {
	case <-time.After(d):
	case <-r.Context().Done():
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"slept_ms": d.Milliseconds()})
}

// large sends ?kb=N kilobytes (default 200) of deterministic text with a
// Content-Length, to span many segments.
func large(w http.ResponseWriter, r *http.Request) {
	kb := queryInt(r, "kb", 200, maxLargeKB)
	line := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n") // 64 bytes
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(kb*1024))
	for range kb * 16 {
		if _, err := w.Write(line); err != nil {
			return
		}
	}
}

func queryInt(r *http.Request, key string, def, limit int) int {
	v, err := strconv.Atoi(r.URL.Query().Get(key))
	if err != nil || v < 0 {
		return def
	}
	return min(v, limit)
}

// serveFlags are what every server shares.
type serveFlags struct {
	addr     string
	duration time.Duration
}

func (sf *serveFlags) register(fs *flag.FlagSet, addr string) {
	fs.StringVar(&sf.addr, "addr", addr, "listen address")
	fs.DurationVar(&sf.duration, "duration", 0, "stop after this long (0: until SIGINT/SIGTERM)")
}

func (sf *serveFlags) context(ctx context.Context) (context.Context, context.CancelFunc) {
	if sf.duration > 0 {
		return context.WithTimeout(ctx, sf.duration)
	}
	return context.WithCancel(ctx)
}

// serveHTTP runs srv on addr until ctx ends, then shuts it down gracefully.
func serveHTTP(ctx context.Context, srv *http.Server, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("serving on %s", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Long idle timeout: midstream recordings keep connections idle
		// while tcpdump starts.
		IdleTimeout: 5 * time.Minute,
		ErrorLog:    log.New(io.Discard, "", 0),
	}
}

func runHTTPServer(ctx context.Context, args []string) error {
	fs := newFlagSet("http-server")
	var sf serveFlags
	sf.register(fs, "127.0.0.1:8080")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := sf.context(ctx)
	defer cancel()
	return serveHTTP(ctx, newHTTPServer(newAPI()), sf.addr)
}
