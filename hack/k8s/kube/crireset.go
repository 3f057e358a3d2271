package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	noop "go.opentelemetry.io/otel/trace/noop"
	internalapi "k8s.io/cri-api/pkg/apis"
	cri "k8s.io/cri-client/pkg"
)

// criReset stops and removes every pod sandbox and container of one CRI runtime, so
// that the runtime itself runs the CNI DEL, unmounts root filesystems and lets its
// shims exit. hack/cluster down calls it before it stops containerd; what a dead
// runtime leaves behind, hack/cluster removes by force afterwards.
func criReset(args []string) int {
	fs := flag.NewFlagSet("cri-reset", flag.ContinueOnError)
	endpoint := fs.String("runtime-endpoint", "", "CRI endpoint, e.g. unix:///run/containerd/containerd.sock")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *endpoint == "" {
		fmt.Fprintln(os.Stderr, "cri-reset: --runtime-endpoint is required")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := resetRuntime(ctx, *endpoint, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "cri-reset:", err)
		return 1
	}
	return 0
}

func resetRuntime(ctx context.Context, endpoint string, timeout time.Duration) error {
	rs, err := cri.NewRemoteRuntimeService(endpoint, timeout, noop.NewTracerProvider(), nil)
	if err != nil {
		return err
	}
	pods, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("list pod sandboxes: %w", err)
	}
	ids := make([]string, 0, len(pods))
	for _, p := range pods {
		ids = append(ids, p.Id)
	}
	// Sandboxes are independent: tear them down in parallel, a few at a time.
	errs := forEach(ids, 4, func(id string) error {
		if err := rs.StopPodSandbox(ctx, id); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", id, err)
		}
		if err := rs.RemovePodSandbox(ctx, id); err != nil {
			return fmt.Errorf("remove sandbox %s: %w", id, err)
		}
		return nil
	})
	// Containers whose sandbox is already gone are removed one by one.
	ctrs, err := rs.ListContainers(ctx, nil)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list containers: %w", err))...)
	}
	for _, c := range ctrs {
		errs = append(errs, removeContainer(ctx, rs, c.Id))
	}
	fmt.Printf("cri-reset: removed %d pod sandboxes and %d stray containers\n", len(ids), len(ctrs))
	return errors.Join(errs...)
}

func removeContainer(ctx context.Context, rs internalapi.RuntimeService, id string) error {
	if err := rs.StopContainer(ctx, id, 0); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	if err := rs.RemoveContainer(ctx, id); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// forEach runs fn on every item with at most n at once and returns the errors.
func forEach(items []string, n int, fn func(string) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, n)
	)
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}
