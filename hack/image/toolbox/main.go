// Command toolbox is a tiny static busybox-like binary for cluster tests: an HTTP
// server that says which pod answered, and clients to resolve names and fetch URLs
// from inside a pod. hack/image puts it in an image; test/e2e drives it.
//
//	toolbox serve [-addr :8080]          answer every request with "hello from HOSTNAME"
//	toolbox get [-retries N] URL         print the body of URL; non-zero exit on failure
//	toolbox get -count 0 -every D URL    GET URL until killed, failures or not
//	toolbox lookup [-retries N] NAME     print the addresses NAME resolves to
//	toolbox sleep [DURATION|infinity]    sleep (default forever), exit on SIGTERM
//	toolbox hostname                     print the host name
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "toolbox:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: toolbox serve|get|lookup|sleep|hostname [args]")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, args)
	case "get":
		return get(ctx, args, out)
	case "lookup":
		return lookup(ctx, args, out)
	case "sleep":
		return sleep(ctx, args)
	case "hostname":
		name, err := os.Hostname()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, name)
		return err
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown) // best effort: the process exits next
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func get(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	retries := fs.Int("retries", 0, "retry this many times, a second apart")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of one attempt")
	count := fs.Int("count", 1, "GET this many times (0: until killed, going on after failures), one connection kept alive")
	every := fs.Duration("every", 0, "pause between two GETs of -count")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: toolbox get [-retries N] [-count N -every D] URL")
	}
	client := &http.Client{Timeout: *timeout}
	for i := 1; *count != 1 && (*count == 0 || i < *count); i++ {
		// All but the last GET of a series: traffic for capture tests.
		if _, err := fetch(ctx, client, fs.Arg(0)); err != nil {
			if *count != 0 || ctx.Err() != nil {
				return err
			}
			// Background traffic outlives a slow answer: exiting would
			// restart the container, and a test's exec into it would fail.
			fmt.Fprintln(os.Stderr, "toolbox:", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(*every):
		}
	}
	return retry(ctx, *retries, func() error {
		body, err := fetch(ctx, client, fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = out.Write(body)
		return err
	})
}

// maxBody caps what get prints: the test server answers with one short line.
const maxBody = 1 << 20

func fetch(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

func lookup(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	retries := fs.Int("retries", 0, "retry this many times, a second apart")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: toolbox lookup [-retries N] NAME")
	}
	return retry(ctx, *retries, func() error {
		addrs, err := net.DefaultResolver.LookupHost(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, strings.Join(addrs, " "))
		return err
	})
}

func sleep(ctx context.Context, args []string) error {
	d := time.Duration(1<<63 - 1)
	if len(args) > 0 && args[0] != "infinity" {
		var err error
		if d, err = time.ParseDuration(args[0]); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	return nil
}

// retry calls fn until it succeeds, it failed retries+1 times, or ctx ends.
func retry(ctx context.Context, retries int, fn func() error) error {
	var err error
	for i := 0; i <= retries; i++ {
		if err = fn(); err == nil {
			return nil
		}
		if i == retries {
			break
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	return err
}
