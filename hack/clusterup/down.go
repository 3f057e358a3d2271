package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// down stops the cluster and removes every trace of it from the host: processes,
// mounts, network namespaces, interfaces, routes, iptables chains, cgroups, sysctl
// changes and state. It finds things by their recorded pids and fixed names, so it
// also cleans up after a failed up, and running it twice is fine.
func down(ctx context.Context, l layout, out io.Writer) error {
	begin := time.Now()
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	all := nodes(l, maxNodes)
	var tracked []proc
	for _, name := range expectedDaemons(maxNodes) {
		if p, err := readPidFile(l, name); err == nil && p.exists() {
			tracked = append(tracked, p)
		}
	}

	// Stop what watches and restarts pods before emptying the runtimes.
	var names []string
	for _, n := range all {
		names = append(names, "kube-proxy-"+n.name)
	}
	add(stopAll(ctx, l, append(names, "kube-scheduler", "kube-controller-manager"), 5*time.Second))
	names = names[:0]
	for _, n := range all {
		names = append(names, "kubelet-"+n.name)
	}
	add(stopAll(ctx, l, names, 10*time.Second))

	// Let each containerd tear its pods down properly (CNI DEL, unmounts, shims
	// exit), then force whatever it could not.
	var sockets, sandboxes []string
	for _, n := range all {
		sandboxes = append(sandboxes, sandboxIDs(n)...)
		tracked = append(tracked, procsOf(findShims(n.sock()))...)
		resetRuntime(ctx, l, n)
		sockets = append(sockets, shimSockets(n)...)
	}
	names = names[:0]
	for _, n := range all {
		names = append(names, "containerd-"+n.name)
	}
	add(stopAll(ctx, l, names, 10*time.Second))
	var strays []int
	for _, n := range all {
		strays = append(strays, findShims(n.sock())...)
	}
	strays = append(strays, cgroupProcs(cgroupParent)...)
	killed, err := killPids(ctx, strays)
	add(err)
	tracked = append(tracked, killed...)

	add(stopAll(ctx, l, []string{"kube-apiserver"}, 10*time.Second))
	add(stopAll(ctx, l, []string{"etcd"}, 10*time.Second))

	waitReaped(ctx, tracked, 5*time.Second)
	add(unmountAll(l.state, l.run))
	add(teardownNetwork(ctx, l))
	add(cleanupIptables(ctx))
	flushConntrack(ctx)
	add(removeCgroup(cgroupParent))
	add(restoreSysctls(l))
	add(cleanSharedDirs(l, sockets, sandboxes))
	if len(errs) == 0 {
		// Only with nothing mounted below them may the state directories go.
		add(os.RemoveAll(l.state))
		add(os.RemoveAll(l.run))
		add(os.RemoveAll(l.kubeconfig))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster not fully removed: %w", err)
	}
	fmt.Fprintf(out, "cluster down in %s\n", time.Since(begin).Round(100*time.Millisecond))
	return nil
}

// stopAll stops the named daemons in parallel.
func stopAll(ctx context.Context, l layout, names []string, grace time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = stopDaemon(ctx, l, name, grace)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// resetRuntime asks a node's running containerd to stop and remove every pod. It
// is best effort: what it leaves, down removes by force.
func resetRuntime(ctx context.Context, l layout, n node) {
	p, err := readPidFile(l, "containerd-"+n.name)
	if err != nil || !p.alive() {
		return
	}
	bin := kubeBinary(l)
	if bin == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "cri-reset", "--runtime-endpoint="+n.endpoint(), "--timeout=25s")
	cmd.Stdout, cmd.Stderr = nil, nil
	_ = cmd.Run()
}

// kubeBinary finds a built multi-call binary without building one: down must work
// even when the sources changed since up.
func kubeBinary(l layout) string {
	matches, _ := globSorted(l.cache + "/k8s/" + k8sVersion + "-*/kube")
	if len(matches) == 0 {
		return ""
	}
	return matches[len(matches)-1]
}

// flushConntrack drops the host's connection tracking entries of cluster
// addresses, so that a new cluster's services never inherit stale NAT entries.
func flushConntrack(ctx context.Context) {
	for _, args := range [][]string{
		{"-D", "-d", serviceNet.String()},
		{"-D", "-s", podNet.String()},
		{"-D", "-d", podNet.String()},
	} {
		_ = exec.CommandContext(ctx, "conntrack", args...).Run() // exits 1 when nothing matched
	}
}

// procsOf records pids with their start times, for waitReaped.
func procsOf(pids []int) []proc {
	var out []proc
	for _, pid := range pids {
		if st, err := procStartTime(pid); err == nil {
			out = append(out, proc{name: fmt.Sprintf("pid %d", pid), pid: pid, start: st})
		}
	}
	return out
}
