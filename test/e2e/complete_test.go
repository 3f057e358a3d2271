//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCompletionAndVersion asks the plugin for completions as
// kubectl_complete-shark does (`kubectl-shark __complete ...`), against the
// real API server, and compares them with what kubectl itself lists; then
// `kubectl shark version` finds a session hub of another version.
func TestCompletionAndVersion(t *testing.T) {
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
	complete := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command(plugin, append([]string{"__complete", "--kubeconfig", kubeconfig}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("__complete %q: %v", args, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if last := lines[len(lines)-1]; last != ":4" {
			t.Errorf("__complete %q ended with %q, want :4 (no file names)", args, last)
		}
		var got []string
		for _, l := range lines[:len(lines)-1] {
			name, _, _ := strings.Cut(l, "\t")
			got = append(got, name)
		}
		return got
	}
	names := func(args ...string) []string {
		t.Helper()
		var out []string
		for _, l := range strings.Fields(c.kubectl(t, append(args, "-o", "name")...)) {
			_, name, _ := strings.Cut(l, "/")
			out = append(out, name)
		}
		sort.Strings(out)
		return out
	}

	ns := "complete-" + time.Now().Format("150405")
	c.kubectl(t, "create", "namespace", ns)
	t.Cleanup(func() { c.run(t, 0, "kubectl", "delete", "namespace", ns, "--wait=false") })

	t.Run("namespaces", func(t *testing.T) {
		// Other tests create namespaces meanwhile: what kubectl lists both
		// before and after must be offered, and nothing it never listed.
		before := names("get", "namespaces")
		got := complete("tap", "-n", "")
		after := names("get", "namespaces")
		for _, n := range before {
			if slices.Contains(after, n) && !slices.Contains(got, n) {
				t.Errorf("tap -n <TAB> lacks %s: %q", n, got)
			}
		}
		for _, n := range got {
			if !slices.Contains(before, n) && !slices.Contains(after, n) {
				t.Errorf("tap -n <TAB> offers %s, which kubectl does not list", n)
			}
		}
		if got := complete("tap", "-n", "complete-"); !cmp.Equal(got, []string{ns}) {
			t.Errorf("tap -n complete-<TAB> = %q, want [%s]", got, ns)
		}
	})
	t.Run("pods", func(t *testing.T) {
		want := names("-n", "kube-system", "get", "pods")
		if len(want) == 0 {
			t.Fatal("no pods in kube-system to complete")
		}
		if diff := cmp.Diff(want, complete("pcap", "-n", "kube-system", "")); diff != "" {
			t.Errorf("pcap -n kube-system <TAB> (-kubectl +plugin):\n%s", diff)
		}
		if got := complete("tap", "-n", ns, ""); len(got) != 0 {
			t.Errorf("pods of an empty namespace = %q", got)
		}
	})
	t.Run("contexts", func(t *testing.T) {
		want := strings.Fields(c.kubectl(t, "config", "get-contexts", "-o", "name"))
		sort.Strings(want)
		if diff := cmp.Diff(want, complete("ui", "--context", "")); diff != "" {
			t.Errorf("--context <TAB> (-kubectl +plugin):\n%s", diff)
		}
	})
	t.Run("version", func(t *testing.T) {
		// A hub of another version; it never starts (the image is not
		// there), and a pending hub is a session all the same.
		id := "v" + time.Now().Format("150405")[1:]
		c.kubectl(t, "-n", ns, "run", "shark-hub", "--restart=Never", "--image-pull-policy=Never",
			"--image=ghcr.io/kubectl-shark/shark-agent:v0.0.1",
			"--labels=app.kubernetes.io/managed-by=kubectl-shark,app.kubernetes.io/component=hub,shark.io/session="+id)
		cmd := exec.Command(plugin, "version", "--kubeconfig", kubeconfig)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("version: %v\n%s", err, stderr.String())
		}
		if want := "agent v0.0.1: session " + id + " (pod " + ns + "/shark-hub, "; !strings.Contains(string(out), want) {
			t.Errorf("version printed %q, want a line with %q", out, want)
		}
		if want := "warning: session " + id + " runs agent v0.0.1 but this plugin is dev"; !strings.Contains(stderr.String(), want) {
			t.Errorf("version warned %q, want %q", stderr.String(), want)
		}
	})
}
