//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sharkEnv is a cluster with the agent image loaded, the plugin built, and
// a namespace of test workloads: web-1 (a Go HTTP server) on node 2 when
// there are two nodes, and client (a toolbox that GETs web-1 every 200 ms)
// on node 1.
type sharkEnv struct {
	c          *cluster
	plugin     string
	kubeconfig string
	image      string
	ns         string
	nodes      int
}

const agentImage = "localhost/shark/agent:e2e"

// setupSharkEnv brings up what the session tests need and removes their
// workloads at the end; the cluster is left as it was found.
func setupSharkEnv(t *testing.T) *sharkEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the cluster creates interfaces, mounts and cgroups")
	}
	c := &cluster{root: repoRoot(t)}
	initial := c.nodesUp(t)
	t.Cleanup(func() { c.restore(t, initial) })
	nodes := initial
	if initial == 0 {
		nodes = 2
		c.must(t, nodes, "up")
	}
	e := &sharkEnv{c: c, image: agentImage, nodes: nodes}
	e.kubeconfig = strings.TrimSpace(c.must(t, 0, "kubeconfig"))
	dir := t.TempDir()
	e.plugin = filepath.Join(dir, "kubectl-shark")
	e.goBuild(t, "-o", e.plugin, "./cmd/kubectl-shark")
	tarball := filepath.Join(dir, "agent.tar")
	e.goRun(t, "./hack/image", "-t", agentImage, "-o", tarball, "--go", "./cmd/shark-agent", "--entrypoint", "/shark-agent")
	c.must(t, 0, "load", tarball)
	toolbox := "localhost/shark/toolbox:e2e"
	e.goRun(t, "./hack/image", "-t", toolbox, "-o", filepath.Join(dir, "toolbox.tar"),
		"--go", "./hack/image/toolbox", "--entrypoint", "/toolbox", "--user", "65532:65532")
	c.must(t, 0, "load", filepath.Join(dir, "toolbox.tar"))

	e.ns = fmt.Sprintf("e2e-tap-%d", time.Now().UnixNano()%1_000_000)
	c.kubectl(t, "create", "namespace", e.ns)
	t.Cleanup(func() { c.run(t, 0, "kubectl", "delete", "namespace", e.ns, "--wait=false") })
	e.apply(t, e.webPod("web-1", e.node(2)))
	c.kubectl(t, "-n", e.ns, "wait", "--for=condition=Ready", "pod/web-1", "--timeout=120s")
	// Pods have no DNS names: the client gets web-1's address.
	e.apply(t, toolboxPod(e.ns, "client", e.node(1), toolbox,
		"get", "-count", "0", "-every", "200ms", "-timeout", "2s", "http://"+e.podIP(t, "web-1")+":8080/steady"))
	c.kubectl(t, "-n", e.ns, "wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
	return e
}

func (e *sharkEnv) goBuild(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = e.c.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

func (e *sharkEnv) goRun(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run"}, args...)...)
	cmd.Dir = e.c.root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run %s: %v\n%s", args[0], err, out)
	}
}

// node returns the name of node i (1 or 2), or node 1 on one node.
func (e *sharkEnv) node(i int) string {
	if e.nodes < 2 {
		i = 1
	}
	return fmt.Sprintf("shark-node-%d", i)
}

func (e *sharkEnv) apply(t *testing.T, manifest string) {
	t.Helper()
	e.c.kubectl(t, "apply", "-f", writeManifest(t, manifest))
}

func (e *sharkEnv) podIP(t *testing.T, pod string) string {
	t.Helper()
	return strings.TrimSpace(e.c.kubectl(t, "-n", e.ns, "get", "pod", pod, "-o", "jsonpath={.status.podIP}"))
}

func (e *sharkEnv) webPod(name, node string) string {
	return toolboxPod(e.ns, name, node, "localhost/shark/toolbox:e2e", "serve", "-addr", ":8080")
}

// toolboxPod is a locked-down pod running the toolbox on node.
func toolboxPod(ns, name, node, image string, args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q,"labels":{"app":%q}},
"spec":{"nodeSelector":{"kubernetes.io/hostname":%q},"terminationGracePeriodSeconds":1,
"securityContext":{"runAsNonRoot":true,"runAsUser":65532,"seccompProfile":{"type":"RuntimeDefault"}},
"containers":[{"name":"main","image":%q,"imagePullPolicy":"Never","args":[%s],
"securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}}}]}}`,
		name, ns, name, node, image, strings.Join(quoted, ","))
}

// sharkArgs adds the flags every test run of the plugin needs.
// Flags the test sets itself win.
func (e *sharkEnv) sharkArgs(args ...string) []string {
	out := append([]string(nil), args...)
	for _, f := range [][2]string{{"--kubeconfig", e.kubeconfig}, {"--image", e.image}, {"--image-pull-policy", "Never"}} {
		if !slices.Contains(args, f[0]) {
			out = append(out, f[0], f[1])
		}
	}
	return out
}

// run runs the plugin to its end.
func (e *sharkEnv) run(t *testing.T, timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.plugin, e.sharkArgs(args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// proc is the plugin running in the background; its output arrives line by
// line.
type proc struct {
	cmd    *exec.Cmd
	stdout chan string
	mu     sync.Mutex
	stderr strings.Builder
	errCh  chan string
	done   chan struct{}
}

func (e *sharkEnv) start(t *testing.T, args ...string) *proc {
	t.Helper()
	return e.startRaw(t, e.sharkArgs(args...)...)
}

func (e *sharkEnv) startRaw(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(e.plugin, args...)
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdout: make(chan string, 1<<16), errCh: make(chan string, 1024), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); lines(outPipe, p.stdout) }()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.errCh <- sc.Text():
			default:
			}
		}
	}()
	go func() { wg.Wait(); cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.done:
			case <-time.After(40 * time.Second):
				p.cmd.Process.Kill()
			}
		}
	})
	return p
}

func lines(r io.Reader, ch chan<- string) {
	defer close(ch)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		ch <- sc.Text()
	}
}

func (p *proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitStderr waits for a stderr line matching re and returns its groups.
func (p *proc) waitStderr(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.errCh:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-p.done:
			if m := re.FindStringSubmatch(p.Stderr()); m != nil {
				return m
			}
			t.Fatalf("the plugin ended before printing %q; stderr:\n%s", re, p.Stderr())
		case <-deadline:
			t.Fatalf("no %q within %s; stderr:\n%s", re, timeout, p.Stderr())
		}
	}
}

// exit interrupts the plugin (Ctrl-C) and returns its exit code.
func (p *proc) interrupt(t *testing.T, timeout time.Duration) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		t.Fatalf("the plugin did not exit within %s of Ctrl-C; stderr:\n%s", timeout, p.Stderr())
	}
	return p.cmd.ProcessState.ExitCode()
}

var sessionLine = regexp.MustCompile(`starting session ([a-z0-9]{6}) in namespace (\S+)`)

// labelledObjects lists the objects that carry kubectl shark's label and,
// when id is set, belong to session id. Other engineers' tests may run
// sessions on the same cluster: a test looks at its own session, or at
// what appeared while it ran (newLabelled).
func (e *sharkEnv) labelledObjects(t *testing.T, id string) []string {
	t.Helper()
	sel := "app.kubernetes.io/managed-by=kubectl-shark"
	if id != "" {
		sel += ",shark.io/session=" + id
	}
	out, err := e.c.run(t, 0, "kubectl", "get",
		"namespaces,pods,secrets,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings",
		"-A", "-l", sel, "-o", "name")
	if err != nil {
		t.Fatalf("list labelled objects: %v\n%s", err, out)
	}
	var objs []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "No resources") {
			objs = append(objs, l)
		}
	}
	return objs
}

// newLabelled returns the labelled objects that are not in before.
func (e *sharkEnv) newLabelled(t *testing.T, before []string) []string {
	t.Helper()
	var out []string
	for _, o := range e.labelledObjects(t, "") {
		if !slices.Contains(before, o) {
			out = append(out, o)
		}
	}
	return out
}

// waitNoLabelled waits until no object of session id is left.
func (e *sharkEnv) waitNoLabelled(t *testing.T, id string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var left []string
	for time.Since(start) < timeout {
		if left = e.labelledObjects(t, id); len(left) == 0 {
			return time.Since(start)
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("after %s these kubectl-shark objects are left: %v", timeout, left)
	return 0
}

// cleanAll removes every session, for tests that leave some on purpose.
func (e *sharkEnv) cleanAll(t *testing.T) {
	t.Helper()
	out, err := exec.Command(e.plugin, "clean", "--all", "--wait", "--kubeconfig", e.kubeconfig).CombinedOutput()
	if err != nil {
		t.Errorf("clean: %v: %s", err, out)
	}
}
