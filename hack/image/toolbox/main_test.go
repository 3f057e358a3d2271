package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestServeAndGet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr := freeAddr(t)
	served := make(chan error, 1)
	go func() { served <- run(ctx, []string{"serve", "-addr", addr}, &bytes.Buffer{}) }()

	var out bytes.Buffer
	if err := run(ctx, []string{"get", "-retries", "20", "http://" + addr + "/any"}, &out); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if want := "hello from " + host + "\n"; out.String() != want {
		t.Errorf("get = %q, want %q", out.String(), want)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve returned %v after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("serve did not stop when its context ended")
	}
}

func TestGetFailsWithoutServer(t *testing.T) {
	err := run(context.Background(), []string{"get", "-timeout", "1s", "http://" + freeAddr(t) + "/"}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("get of a closed port succeeded")
	}
}

func TestGetForeverSurvivesFailures(t *testing.T) {
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) <= 3 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"get", "-count", "0", "-every", "1ms", srv.URL}, &bytes.Buffer{}) }()
	deadline := time.Now().Add(10 * time.Second)
	for served.Load() < 6 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("get -count 0 ended with %v after %d requests, want it to go on until cancelled", err, served.Load())
	}
	if served.Load() < 6 {
		t.Errorf("get -count 0 made %d requests, want it to go on after 3 failures", served.Load())
	}
}

func TestLookup(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"lookup", "localhost"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "127.0.0.1") && !strings.Contains(out.String(), "::1") {
		t.Errorf("lookup localhost = %q, want a loopback address", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{nil, {"frobnicate"}, {"get"}, {"lookup"}, {"sleep", "soon"}}
	for _, args := range tests {
		if err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	begin := time.Now()
	if err := run(ctx, []string{"sleep", "infinity"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("sleep took %s after its context ended", d)
	}
}
