//go:build e2e

// Package e2e holds the end-to-end tests that run against the local cluster of
// hack/cluster. They need root, Go and Debian's apt; the first run builds
// Kubernetes (about 10 min on 2 cores), so run them with a long -timeout:
//
//	go test -tags e2e -timeout 60m -v ./test/e2e/
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestCluster checks that hack/cluster brings up two nodes whose pods resolve
// services through CoreDNS and talk across nodes, and that up/down cycles leave
// nothing behind. It puts the cluster back the way it found it.
func TestCluster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the cluster creates interfaces, mounts and cgroups")
	}
	c := &cluster{root: repoRoot(t)}
	// Packages and binaries first, so that a cold build is timed on its own.
	c.must(t, 0, "build")
	initial := c.nodesUp(t)
	t.Logf("cluster before the test: %d node(s) up", initial)
	t.Cleanup(func() { c.restore(t, initial) })

	t.Run("UpDownCyclesLeaveNothing", c.testCycles)
	t.Run("CrossNodeServiceDNS", c.testCrossNode)
}

type cluster struct {
	root string
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "hack", "cluster")); err != nil {
		t.Fatalf("not in the kubectl-shark checkout: %v", err)
	}
	return root
}

// run runs hack/cluster with NODES=nodes (when > 0) and returns its output.
func (c *cluster) run(t *testing.T, nodes int, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.root, "hack", "cluster"), args...)
	cmd.Env = os.Environ()
	if nodes > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("NODES=%d", nodes))
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stdout runs hack/cluster and returns its standard output alone: kubectl
// may log to stderr mid-stream (its WebSocket exec does), which must not
// mix into output that is parsed. A failure's error carries stderr.
func (c *cluster) stdout(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.root, "hack", "cluster"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), err
}

func (c *cluster) must(t *testing.T, nodes int, args ...string) string {
	t.Helper()
	begin := time.Now()
	out, err := c.run(t, nodes, args...)
	if err != nil {
		t.Fatalf("hack/cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("hack/cluster %s (NODES=%d) took %s", strings.Join(args, " "), nodes, time.Since(begin).Round(100*time.Millisecond))
	return out
}

func (c *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return c.must(t, 0, append([]string{"kubectl"}, args...)...)
}

// nodesUp returns how many nodes the cluster has if it is up and healthy, else 0.
func (c *cluster) nodesUp(t *testing.T) int {
	t.Helper()
	out, err := c.run(t, 0, "status")
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`cluster: up \((\d+) node`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("status exited 0 but says:\n%s", out)
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

// restore puts the cluster back in the state the test found: down, or up with
// the same number of nodes.
func (c *cluster) restore(t *testing.T, nodes int) {
	if c.nodesUp(t) == nodes {
		return
	}
	c.must(t, 0, "down")
	if nodes > 0 {
		c.must(t, nodes, "up")
	}
}

func (c *cluster) testCycles(t *testing.T) {
	c.must(t, 0, "down")
	baseline := takeSnapshot(t)
	if leaks := baseline.clusterTraces(); len(leaks) > 0 {
		t.Fatalf("traces of a cluster after down, before any cycle: %v", leaks)
	}
	for i := 1; i <= 3; i++ {
		out := c.must(t, 2, "up")
		if !strings.Contains(out, "cluster up in") {
			t.Fatalf("cycle %d: up did not start a fresh cluster:\n%s", i, out)
		}
		if got := c.nodesUp(t); got != 2 {
			t.Fatalf("cycle %d: status reports %d nodes up, want 2", i, got)
		}
		c.must(t, 0, "down")
		after := takeSnapshot(t)
		if leaks := after.clusterTraces(); len(leaks) > 0 {
			t.Errorf("cycle %d: down left %v", i, leaks)
		}
		if diff := after.newSince(baseline); len(diff) > 0 {
			t.Errorf("cycle %d: new since the baseline: %v", i, diff)
		}
	}
}

// snapshot is the host state that a cluster could leave traces in.
type snapshot struct {
	procs   []string // "pid cmdline" of processes that look like the cluster's
	mounts  []string // every mount point
	links   []string // every interface of the host's network namespace
	chains  []string // every iptables and ip6tables chain, as tool/table/chain
	cgroups []string // cgroup directories named shark
}

// clusterPattern matches names and command lines that belong to the cluster.
var clusterPattern = regexp.MustCompile(`shark-cluster|/\.cache/k8s/|containerd|^shark|^veth|^cni|KUBE-|CNI-|/shark$`)

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	s := snapshot{procs: clusterProcs(t), links: links(t), chains: chains(t), cgroups: sharkCgroups(t)}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 {
			s.mounts = append(s.mounts, f[1]+" ("+f[2]+")")
		}
	}
	return s
}

// clusterTraces lists everything in the snapshot that belongs to a cluster.
func (s snapshot) clusterTraces() []string {
	var out []string
	add := func(kind string, items []string) {
		for _, it := range items {
			if clusterPattern.MatchString(it) {
				out = append(out, kind+" "+it)
			}
		}
	}
	add("process", s.procs)
	add("mount", s.mounts)
	add("link", s.links)
	add("chain", s.chains)
	add("cgroup", s.cgroups)
	return out
}

// newSince lists what is in s but not in the baseline. Other work on the machine
// (network namespaces of other tests under /run/netns, which the cluster never
// uses) is left out, so that only what a cluster could have made counts.
func (s snapshot) newSince(base snapshot) []string {
	var out []string
	diff := func(kind string, now, before []string, foreign func(string) bool) {
		for _, it := range now {
			if !slices.Contains(before, it) && !foreign(it) {
				out = append(out, kind+" "+it)
			}
		}
	}
	none := func(string) bool { return false }
	diff("mount", s.mounts, base.mounts, func(m string) bool { return strings.HasPrefix(m, "/run/netns/") })
	diff("link", s.links, base.links, func(l string) bool { return !clusterPattern.MatchString(l) })
	diff("chain", s.chains, base.chains, none)
	diff("cgroup", s.cgroups, base.cgroups, none)
	return out
}

func clusterProcs(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "pid=,args=").Output()
	if err != nil {
		t.Fatal(err)
	}
	var procs []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && clusterPattern.MatchString(line) && !strings.Contains(line, "ps -eo") {
			procs = append(procs, line)
		}
	}
	return procs
}

func links(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func chains(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		save, err := exec.Command(tool).Output()
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		table := ""
		for _, line := range strings.Split(string(save), "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, ":"):
				name, _, _ := strings.Cut(line[1:], " ")
				out = append(out, tool+"/"+table+"/"+name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func sharkCgroups(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("/sys/fs/cgroup/*/shark")
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// testCrossNode runs a web server on node 2 and a client on node 1, and has the
// client find the server by its service name through CoreDNS.
func (c *cluster) testCrossNode(t *testing.T) {
	c.must(t, 2, "up")
	image := "localhost/shark/toolbox:e2e"
	tarball := filepath.Join(t.TempDir(), "toolbox.tar")
	build := exec.Command("go", "run", "./hack/image", "-t", image, "-o", tarball,
		"--go", "./hack/image/toolbox", "--entrypoint", "/toolbox", "--user", "65532:65532")
	build.Dir = c.root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("hack/image: %v\n%s", err, out)
	}
	c.must(t, 0, "load", tarball)

	ns := fmt.Sprintf("e2e-%d", time.Now().UnixNano()%1_000_000)
	c.kubectl(t, "apply", "-f", writeManifest(t, crossNodeManifest(ns, image)))
	t.Cleanup(func() { c.run(t, 0, "kubectl", "delete", "namespace", ns, "--wait=false") })
	c.kubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod/web", "pod/client", "--timeout=120s")

	webIP := netip.MustParseAddr(strings.TrimSpace(c.kubectl(t, "-n", ns, "get", "pod", "web", "-o", "jsonpath={.status.podIP}")))
	clientIP := netip.MustParseAddr(strings.TrimSpace(c.kubectl(t, "-n", ns, "get", "pod", "client", "-o", "jsonpath={.status.podIP}")))
	if !netip.MustParsePrefix("10.89.2.0/24").Contains(webIP) || !netip.MustParsePrefix("10.89.1.0/24").Contains(clientIP) {
		t.Fatalf("web %s, client %s: want them on node 2 (10.89.2.0/24) and node 1 (10.89.1.0/24)", webIP, clientIP)
	}
	svcIP := strings.TrimSpace(c.kubectl(t, "-n", ns, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"))

	inClient := func(args ...string) (string, error) {
		return c.stdout(t, append([]string{"kubectl", "-n", ns, "exec", "client", "--", "/toolbox"}, args...)...)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"short service name resolves to the ClusterIP", []string{"lookup", "-retries", "20", "web"}, svcIP},
		{"FQDN resolves", []string{"lookup", "web." + ns + ".svc.cluster.local"}, svcIP},
		{"HTTP to the service crosses nodes", []string{"get", "-retries", "20", "http://web/"}, "hello from web"},
		{"HTTP to the pod IP crosses nodes", []string{"get", "http://" + webIP.String() + ":8080/"}, "hello from web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := inClient(tt.args...)
			if err != nil || !strings.Contains(out, tt.want) {
				t.Errorf("toolbox %s = %q, %v; want %q", strings.Join(tt.args, " "), out, err, tt.want)
			}
		})
	}
	t.Run("names outside the cluster do not resolve", func(t *testing.T) {
		if out, err := inClient("lookup", "example.com."); err == nil {
			t.Errorf("example.com resolved to %q: cluster DNS must not forward off the machine", out)
		}
	})
}

func writeManifest(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// crossNodeManifest is a namespace with a web server pinned to node 2, its service,
// and a client pinned to node 1, both locked down as the restricted profile wants.
func crossNodeManifest(ns, image string) string {
	pod := func(name, node string, args []string, labels map[string]string) map[string]any {
		return map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name, "namespace": ns, "labels": labels},
			"spec": map[string]any{
				"nodeSelector":                  map[string]string{"kubernetes.io/hostname": node},
				"terminationGracePeriodSeconds": 1,
				"securityContext": map[string]any{
					"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": map[string]string{"type": "RuntimeDefault"},
				},
				"containers": []any{map[string]any{
					"name": name, "image": image, "imagePullPolicy": "Never", "args": args,
					"ports": []any{map[string]any{"containerPort": 8080}},
					"securityContext": map[string]any{
						"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
						"capabilities": map[string]any{"drop": []string{"ALL"}},
					},
				}},
			},
		}
	}
	objects := []any{
		map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}},
		pod("web", "shark-node-2", []string{"serve", "-addr", ":8080"}, map[string]string{"app": "web"}),
		map[string]any{
			"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "web", "namespace": ns},
			"spec": map[string]any{
				"selector": map[string]string{"app": "web"},
				"ports":    []any{map[string]any{"port": 80, "targetPort": 8080}},
			},
		},
		pod("client", "shark-node-1", []string{"sleep", "infinity"}, map[string]string{"app": "client"}),
	}
	var b bytes.Buffer
	for _, o := range objects {
		j, err := json.Marshal(o)
		if err != nil {
			panic(err)
		}
		b.WriteString("---\n")
		b.Write(j) // JSON is YAML
		b.WriteString("\n")
	}
	return b.String()
}
