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

// TestUI opens the dashboard of a live session on the demo shop the way a
// user does: `kubectl shark ui -n demo --no-browser` prints the address
// (Dashboard: http://127.0.0.1:PORT/?token=...) and keeps the port-forward
// open; a real browser (Debian's chromium, driven by playwright-core from
// pkg/ui/e2e/cluster.e2e.ts) opens it and must see live demo traffic in
// the feed and the service map. Screenshots go to .cache/ui-artifacts.
// uiAgentImage is the agent built for this test, under its own tag so that
// it never races the session tests loading theirs.
const uiAgentImage = "localhost/shark/agent:e2e-ui"

func TestUI(t *testing.T) {
	d := ensureDemo(t)
	root := d.c.root
	kubeconfig := strings.TrimSpace(d.c.must(t, 0, "kubeconfig"))

	ui := exec.Command(filepath.Join(root, "hack", "ui.sh"), "deps")
	ui.Dir = root
	if out, err := ui.CombinedOutput(); err != nil {
		t.Fatalf("hack/ui.sh deps: %v\n%s", err, out)
	}
	dir := t.TempDir()
	plugin := filepath.Join(dir, "kubectl-shark")
	goCmd(t, root, "build", "-o", plugin, "./cmd/kubectl-shark")
	tarball := filepath.Join(dir, "agent.tar")
	goCmd(t, root, "run", "./hack/image", "-t", uiAgentImage, "-o", tarball, "--go", "./cmd/shark-agent", "--entrypoint", "/shark-agent")
	d.c.must(t, 0, "load", tarball)

	e := &sharkEnv{c: d.c, plugin: plugin, kubeconfig: kubeconfig, image: uiAgentImage, ns: d.Namespace, nodes: d.Nodes}
	p := e.start(t, "ui", "-n", d.Namespace, "--no-browser", "--port", "0")
	var url string
	deadline := time.After(3 * time.Minute)
	for url == "" {
		select {
		case line, ok := <-p.stdout:
			if !ok {
				t.Fatalf("kubectl shark ui ended without printing the address; stderr:\n%s", p.Stderr())
			}
			if rest, found := strings.CutPrefix(line, "Dashboard: "); found {
				url = strings.TrimSpace(rest)
			}
		case <-deadline:
			t.Fatalf("no Dashboard: line within 3m; stderr:\n%s", p.Stderr())
		}
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.Contains(url, "/?token=") {
		t.Fatalf("dashboard address %q, want http://127.0.0.1:PORT/?token=...", url)
	}
	t.Logf("dashboard at %s", url[:strings.Index(url, "?")])

	browser := exec.Command("npx", "vitest", "run", "--config", "vitest.e2e.config.ts", "e2e/cluster.e2e.ts")
	browser.Dir = filepath.Join(root, "pkg", "ui")
	browser.Env = append(os.Environ(), "SHARK_UI_URL="+url, "SHARK_UI_NAMESPACE="+d.Namespace, "npm_config_update_notifier=false")
	out, err := browser.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 passed") {
		t.Fatalf("the browser test failed: %v\n%s\nkubectl shark ui stderr:\n%s", err, out, p.Stderr())
	}
	if code := p.interrupt(t, 45*time.Second); code != 0 {
		t.Errorf("kubectl shark ui exited %d after Ctrl-C; stderr:\n%s", code, p.Stderr())
	}
}

func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
