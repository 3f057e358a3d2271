package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// runGet fetches one URL and prints the body: the images have no shell and no
// curl, and tests reach the services with `kubectl exec ... /demoapp get`.
// A status of 400 or more is an error unless -any-status.
func runGet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	anyStatus := fs.Bool("any-status", false, "print the body of any status, and the status first")
	insecure := fs.Bool("k", false, "do not verify TLS certificates")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of the request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: demoapp get [-any-status] [-k] URL")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: *insecure} //nolint:gosec // opt-in, for tests
	c := &http.Client{Transport: tr, Timeout: *timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *anyStatus {
		fmt.Println(resp.StatusCode)
	}
	if _, err := io.Copy(os.Stdout, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return err
	}
	if resp.StatusCode >= 400 && !*anyStatus {
		return fmt.Errorf("%s: %s", fs.Arg(0), resp.Status)
	}
	return nil
}
