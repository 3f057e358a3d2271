package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// up brings the cluster up, or leaves a healthy one with the same node count as it
// is. What an earlier, failed or half-removed cluster left behind goes first.
func up(ctx context.Context, l layout, count int, out io.Writer) error {
	if err := ensureHostPackages(ctx, out); err != nil {
		return err
	}
	if err := ensureKernel(ctx); err != nil {
		return err
	}
	a, err := ensureArtifacts(ctx, l, out)
	if err != nil {
		return err
	}
	ci, err := readClusterInfo(l)
	if err != nil {
		return err
	}
	if ci.Nodes > 0 && healthy(ctx, l, ci.Nodes) {
		if ci.Nodes != count {
			return fmt.Errorf("the cluster is up with %d node(s); run hack/cluster down first to start %d", ci.Nodes, count)
		}
		fmt.Fprintf(out, "cluster already up (%d node(s), %s)\n", count, k8sVersion)
		printAccess(l, out)
		return nil
	}
	if ci.Nodes > 0 || leftovers(l) {
		fmt.Fprintln(out, "removing what an earlier cluster left behind")
		if err := down(ctx, l, io.Discard); err != nil {
			return fmt.Errorf("clean up the earlier cluster: %w", err)
		}
	}
	begin := time.Now()
	if err := start1(ctx, l, a, nodes(l, count), out); err != nil {
		return fmt.Errorf("%w\nlogs: %s; hack/cluster down removes what was started", err, l.logs)
	}
	fmt.Fprintf(out, "cluster up in %s: %d node(s), Kubernetes %s\n", time.Since(begin).Round(100*time.Millisecond), count, k8sVersion)
	printAccess(l, out)
	return nil
}

func printAccess(l layout, out io.Writer) {
	fmt.Fprintf(out, "kubeconfig: %s\n  export KUBECONFIG=%s\n", l.kubeconfig, l.kubeconfig)
}

// leftovers tells whether anything of a cluster is on the host although no cluster
// is recorded, so that up cleans it first.
func leftovers(l layout) bool {
	for _, p := range []string{l.state, l.run} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return linkExists(nodeBridge)
}

// start1 starts every piece in dependency order; nodes start in parallel.
func start1(ctx context.Context, l layout, a artifacts, ns []node, out io.Writer) error {
	step := stepper(out)
	if err := prepareHost(ctx, l, ns); err != nil {
		return err
	}
	step("network, certificates and configs ready")

	if err := start(l, etcdDaemon(l, a)); err != nil {
		return err
	}
	etcdClient, err := httpsClient(l.pki("etcd-ca.crt"), l.pki("apiserver-etcd-client.crt"), l.pki("apiserver-etcd-client.key"))
	if err != nil {
		return err
	}
	if err := waitFor(ctx, "etcd", 30*time.Second, httpOK(etcdClient, "https://"+l.apiAddr()+":2379/health")); err != nil {
		return err
	}
	step("etcd ready")

	if err := start(l, apiserverDaemon(l, a)); err != nil {
		return err
	}
	if err := waitFor(ctx, "kube-apiserver", 90*time.Second, apiReady(l)); err != nil {
		return err
	}
	step("kube-apiserver ready")

	// Nodes are registered before their kubelets start, with their pod CIDRs. The
	// API server is ready before its controllers have made kube-system: retry.
	manifests := nodeManifest(ns) + "---\n" + corednsManifest()
	if err := waitFor(ctx, "cluster objects", 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := kubectl(ctx, l, a, manifests, "apply", "-f", "-")
		return err == nil, err
	}); err != nil {
		return err
	}
	for _, d := range []daemon{controllerManagerDaemon(l, a), schedulerDaemon(l, a)} {
		if err := start(l, d); err != nil {
			return err
		}
	}
	if err := startNodes(ctx, l, a, ns); err != nil {
		return err
	}
	step("nodes started")
	if err := waitFor(ctx, "nodes", 120*time.Second, nodesReady(l, a, len(ns))); err != nil {
		return err
	}
	step("nodes Ready")
	if err := waitFor(ctx, "CoreDNS", 120*time.Second, deploymentAvailable(l, a, "kube-system", "coredns")); err != nil {
		return err
	}
	step("CoreDNS ready")
	return nil
}

// stepper prints each step with the time since the first.
func stepper(out io.Writer) func(string) {
	begin := time.Now()
	return func(what string) {
		fmt.Fprintf(out, "  %6.1fs  %s\n", time.Since(begin).Seconds(), what)
	}
}

// prepareHost records what down must restore, then makes the network, the PKI,
// the kubeconfigs and every config file.
func prepareHost(ctx context.Context, l layout, ns []node) error {
	// cluster.json first: if anything below fails, down still knows the cluster.
	steps := []func() error{
		func() error { return writeClusterInfo(l, len(ns)) },
		func() error { return saveSysctls(l) },
		func() error { return recordSharedDirs(l) },
		func() error { return setupNetwork(ctx, ns) },
		func() error { return writePKI(l, ns) },
		func() error { return writeKubeconfigs(l, ns) },
		func() error { return writeConfigs(l, ns) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// startNodes starts every node's containerd, loads the cluster's images into it,
// then starts its kubelet and kube-proxy. Nodes start in parallel.
func startNodes(ctx context.Context, l layout, a artifacts, ns []node) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ns))
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := startNode(ctx, l, a, n); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func startNode(ctx context.Context, l layout, a artifacts, n node) error {
	if err := createCgroup(n.cgroupRoot); err != nil {
		return err
	}
	if err := start(l, containerdDaemon(n)); err != nil {
		return err
	}
	if err := waitFor(ctx, "containerd", 30*time.Second, func(ctx context.Context) (bool, error) {
		_, err := output(ctx, "ctr", "--address", n.sock(), "version")
		return err == nil, err
	}); err != nil {
		return err
	}
	if err := importImages(ctx, n, []string{a.pauseImage, a.corednsImage}); err != nil {
		return err
	}
	for _, d := range []daemon{kubeletDaemon(l, a, n), kubeProxyDaemon(a, n)} {
		if err := start(l, d); err != nil {
			return err
		}
	}
	return nil
}

// importImages loads image tarballs into a node's containerd, in the namespace the
// kubelet's CRI uses.
func importImages(ctx context.Context, n node, tarballs []string) error {
	for _, t := range tarballs {
		if _, err := output(ctx, "ctr", "--address", n.sock(), "--namespace", "k8s.io", "images", "import", t); err != nil {
			return err
		}
	}
	return nil
}

// expectedDaemons are the pid file names of a cluster with count nodes.
func expectedDaemons(count int) []string {
	names := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	for i := 1; i <= count; i++ {
		n := fmt.Sprintf("shark-node-%d", i)
		names = append(names, "containerd-"+n, "kubelet-"+n, "kube-proxy-"+n)
	}
	return names
}

// healthy tells whether every daemon runs and the API server is ready.
func healthy(ctx context.Context, l layout, count int) bool {
	for _, name := range expectedDaemons(count) {
		p, err := readPidFile(l, name)
		if err != nil || !p.alive() {
			return false
		}
	}
	ok, _ := apiReady(l)(ctx)
	return ok
}

// load imports image tarballs into every node's containerd.
func load(ctx context.Context, l layout, tarballs []string, out io.Writer) error {
	ci, err := readClusterInfo(l)
	if err != nil {
		return err
	}
	if ci.Nodes == 0 {
		return errors.New("no cluster is up: run hack/cluster up first")
	}
	for _, t := range tarballs {
		if _, err := os.Stat(t); err != nil {
			return err
		}
	}
	ns := nodes(l, ci.Nodes)
	var wg sync.WaitGroup
	errs := make([]error, len(ns))
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = importImages(ctx, n, tarballs)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "loaded %s into %d node(s)\n", strings.Join(tarballs, ", "), len(ns))
	return nil
}
