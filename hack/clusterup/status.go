package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Exit codes of status.
const (
	statusUp       = 0
	statusDown     = 1
	statusDegraded = 3
)

// status prints what runs and exits 0 when the cluster is up and healthy, 1 when no
// cluster is there, and 3 when one is there but broken.
func status(ctx context.Context, l layout, out io.Writer) (int, error) {
	ci, err := readClusterInfo(l)
	if err != nil {
		return statusDegraded, err
	}
	if ci.Nodes == 0 {
		if leftovers(l) {
			fmt.Fprintln(out, "cluster: down, with leftovers (hack/cluster down removes them)")
			return statusDegraded, nil
		}
		fmt.Fprintln(out, "cluster: down")
		return statusDown, nil
	}
	code := statusUp
	for _, name := range expectedDaemons(ci.Nodes) {
		p, err := readPidFile(l, name)
		switch {
		case err != nil:
			fmt.Fprintf(out, "  %-28s not started\n", name)
			code = statusDegraded
		case !p.alive():
			fmt.Fprintf(out, "  %-28s dead (pid %d)\n", name, p.pid)
			code = statusDegraded
		default:
			fmt.Fprintf(out, "  %-28s running (pid %d)\n", name, p.pid)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if ok, err := apiReady(l)(ctx); !ok {
		fmt.Fprintf(out, "  kube-apiserver not ready: %v\n", err)
		code = statusDegraded
	} else if bin := kubeBinary(l); bin != "" {
		a := artifacts{binDir: filepath.Dir(bin)}
		if nodes, err := kubectl(ctx, l, a, "", "get", "nodes", "-o", "wide"); err == nil {
			fmt.Fprint(out, nodes)
		}
	}
	state := map[int]string{statusUp: "up", statusDegraded: "degraded"}[code]
	fmt.Fprintf(out, "cluster: %s (%d node(s), %s)\n", state, ci.Nodes, ci.Version)
	printAccess(l, out)
	return code, nil
}

// kubectlPassthrough runs the cluster's kubectl with the cluster's kubeconfig in
// place of this process, so that its exit code and terminal are the user's.
func kubectlPassthrough(_ context.Context, l layout, args []string) (int, error) {
	bin := kubeBinary(l)
	if bin == "" {
		return 1, errors.New("kubectl is not built yet: run hack/cluster build or up")
	}
	kubectlBin := filepath.Join(filepath.Dir(bin), "kubectl")
	argv := append(append([]string{kubectlBin}, l.kubectlFlags()...), args...)
	return 1, syscall.Exec(kubectlBin, argv, os.Environ())
}

// globSorted is filepath.Glob with the matches ordered by modification time,
// oldest first.
func globSorted(pattern string) ([]string, error) {
	m, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	mtime := func(p string) time.Time {
		st, err := os.Stat(p)
		if err != nil {
			return time.Time{}
		}
		return st.ModTime()
	}
	sort.Slice(m, func(i, j int) bool { return mtime(m[i]).Before(mtime(m[j])) })
	return m, nil
}
