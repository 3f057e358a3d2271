//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClean leaves session objects in the real cluster on purpose, next to
// look-alikes that kubectl shark did not create, and checks that
// `kubectl shark clean` removes exactly its own.
func TestClean(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the cluster creates interfaces, mounts and cgroups")
	}
	c := &cluster{root: repoRoot(t)}
	initial := c.nodesUp(t)
	t.Cleanup(func() { c.restore(t, initial) })
	if initial == 0 {
		c.must(t, 1, "up")
	}
	kubeconfig := strings.TrimSpace(c.must(t, 0, "kubeconfig"))
	plugin := filepath.Join(t.TempDir(), "kubectl-shark")
	build := exec.Command("go", "build", "-o", plugin, "./cmd/kubectl-shark")
	build.Dir = c.root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	shark := func(args ...string) (string, int) {
		cmd := exec.Command(plugin, append(args, "--kubeconfig", kubeconfig)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	id := "c" + time.Now().Format("150405")[1:] // six characters, like the plugin's ids
	ours := "shark-" + id
	lookalike := "shark-" + id + "x" // labelled, but not named after its session
	foreign := "team-" + id          // not ours at all
	label := func(ns, session string) {
		c.kubectl(t, "create", "namespace", ns)
		if session != "" {
			c.kubectl(t, "label", "namespace", ns, "app.kubernetes.io/managed-by=kubectl-shark", "shark.io/session="+session)
		}
	}
	label(ours, id)
	label(lookalike, id+"other")
	label(foreign, "")
	c.kubectl(t, "-n", ours, "create", "secret", "generic", "shark-tls", "--from-literal=token=x")
	c.kubectl(t, "-n", ours, "label", "secret", "shark-tls", "app.kubernetes.io/managed-by=kubectl-shark", "shark.io/session="+id)
	t.Cleanup(func() {
		for _, ns := range []string{ours, lookalike, foreign} {
			c.run(t, 0, "kubectl", "delete", "namespace", ns, "--ignore-not-found", "--wait=false")
		}
	})

	out, code := shark("clean", "--all", "--wait", "--timeout", "90s")
	if code != 0 {
		t.Fatalf("clean: exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "removed namespace/"+ours) {
		t.Errorf("clean did not report removing %s:\n%s", ours, out)
	}
	gone := c.kubectl(t, "get", "namespaces", "-o", "name")
	if strings.Contains(gone, "namespace/"+ours+"\n") {
		t.Errorf("%s still exists after clean --wait", ours)
	}
	for _, ns := range []string{lookalike, foreign} {
		if !strings.Contains(gone, "namespace/"+ns+"\n") {
			t.Errorf("clean deleted %s, which it did not create", ns)
		}
	}

	again, code := shark("clean", "--all")
	if code != 0 || strings.Contains(again, "removed namespace/"+ours) {
		t.Errorf("second clean: exit %d:\n%s", code, again)
	}

	// No cluster at that address: one line, exit 1.
	bad := exec.Command(plugin, "clean", "--server", "https://127.0.0.1:1", "--insecure-skip-tls-verify")
	badOut, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("clean against no cluster: %v, want exit 1", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(badOut)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") {
		t.Errorf("clean against no cluster printed %q, want one error line", badOut)
	}
}
