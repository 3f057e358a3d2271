// Command clusterup runs the local Kubernetes cluster of kubectl-shark's demos and
// end-to-end tests on this machine, with no Docker, no registry and no systemd:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler on the host, and
// per node a containerd, a kubelet and a kube-proxy. Node 1 lives in the host's
// network namespace; nodes 2.. each get their own, routed to node 1 over a bridge.
// Every cluster address exists only on interfaces it creates, and `down` removes
// everything `up` made. hack/cluster is its entry point:
//
//	hack/cluster up            start (or keep) the cluster; NODES=2 for two nodes
//	hack/cluster down          stop it and remove every trace
//	hack/cluster status        what runs; exit 0 when the cluster is up and healthy
//	hack/cluster kubeconfig    print the kubeconfig path
//	hack/cluster load TAR...   import image tarballs into every node's containerd
//	hack/cluster build         install the host packages, build (or reuse) binaries and images
//	hack/cluster kubectl ARGS  kubectl of the cluster's version, on its kubeconfig
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hack/cluster:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

const usage = `usage: hack/cluster up|down|status|kubeconfig|load TAR...|build|kubectl ARGS...
environment: NODES=1..4 (up, default 1)`

// errUsage marks a command line that names no known command.
var errUsage = errors.New(usage)

func run(ctx context.Context, args []string, out io.Writer) (int, error) {
	if len(args) == 0 {
		return 2, errUsage
	}
	l, err := newLayout()
	if err != nil {
		return 1, err
	}
	cmd, rest := args[0], args[1:]
	if cmd == "kubeconfig" {
		fmt.Fprintln(out, l.kubeconfig)
		return 0, nil
	}
	if cmd == "kubectl" {
		return kubectlPassthrough(ctx, l, rest)
	}
	if os.Geteuid() != 0 {
		return 1, errors.New("run as root: the cluster creates interfaces, mounts and cgroups")
	}
	switch cmd {
	case "up":
		n, err := nodesFromEnv()
		if err != nil {
			return 2, err
		}
		return 0, up(ctx, l, n, out)
	case "down":
		return 0, down(ctx, l, out)
	case "status":
		return status(ctx, l, out)
	case "load":
		if len(rest) == 0 {
			return 2, errors.New("usage: hack/cluster load TARBALL...")
		}
		return 0, load(ctx, l, rest, out)
	case "build":
		if err := ensureHostPackages(ctx, out); err != nil {
			return 1, err
		}
		_, err := ensureArtifacts(ctx, l, out)
		return 0, err
	}
	return 2, errUsage
}

// nodesFromEnv reads NODES, the number of nodes `up` starts.
func nodesFromEnv() (int, error) {
	v := os.Getenv("NODES")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxNodes {
		return 0, fmt.Errorf("NODES=%q: want a number from 1 to %d", v, maxNodes)
	}
	return n, nil
}
