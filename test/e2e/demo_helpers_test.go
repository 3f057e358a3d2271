//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// demoNamespace is where manifests/demo deploys the demo shop.
const demoNamespace = "demo"

// demoShop is the demo shop (hack/demoapp, manifests/demo) running on the
// local cluster, as ensureDemo leaves it.
type demoShop struct {
	c         *cluster
	Namespace string
	Nodes     int // nodes of the cluster
}

// ensureDemo makes sure the local cluster is up (with two nodes if it has to
// start it; NODES overrides) and the demo shop is deployed from this checkout
// and ready, with traffic flowing. It runs `hack/demo.sh deploy`, which builds
// and loads the demo images (not the shark-agent image: tests that tap load
// their own) and waits for every Deployment.
//
// It puts back what it found: it deletes the namespace demo if it was not
// there, and stops the cluster if it started it. SHARK_E2E_KEEP_DEMO=1 keeps
// both, for a faster next run.
func ensureDemo(t *testing.T) *demoShop {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the cluster creates interfaces, mounts and cgroups")
	}
	c := &cluster{root: repoRoot(t)}
	initial := c.nodesUp(t)
	keep := os.Getenv("SHARK_E2E_KEEP_DEMO") == "1"
	if initial == 0 {
		nodes := 2
		if n := os.Getenv("NODES"); n == "1" {
			nodes = 1
		}
		c.must(t, nodes, "up")
		if !keep {
			t.Cleanup(func() { c.restore(t, 0) })
		}
	}
	_, err := c.run(t, 0, "kubectl", "get", "namespace", demoNamespace)
	existed := err == nil
	if !existed && !keep && initial > 0 {
		t.Cleanup(func() {
			if out, err := c.run(t, 0, "kubectl", "delete", "namespace", demoNamespace, "--wait=true", "--timeout=120s"); err != nil {
				t.Errorf("delete the demo namespace: %v\n%s", err, out)
			}
		})
	}

	begin := time.Now()
	deploy := exec.Command(filepath.Join(c.root, "hack", "demo.sh"), "deploy")
	deploy.Dir = c.root
	deploy.Env = append(os.Environ(), "SKIP_AGENT=1")
	if out, err := deploy.CombinedOutput(); err != nil {
		t.Fatalf("hack/demo.sh deploy: %v\n%s", err, out)
	}
	t.Logf("hack/demo.sh deploy took %s (demo namespace existed: %v)", time.Since(begin).Round(100*time.Millisecond), existed)

	d := &demoShop{c: c, Namespace: demoNamespace, Nodes: c.nodesUp(t)}
	d.waitTraffic(t, 90*time.Second)
	return d
}

// kubectl runs kubectl in the demo's namespace and returns its output;
// what kubectl logs on stderr goes only into the error.
func (d *demoShop) kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return d.c.stdout(t, append([]string{"kubectl", "-n", d.Namespace}, args...)...)
}

// get fetches url from inside the loadgen pod, so service names resolve
// through CoreDNS; it returns the status and the body.
func (d *demoShop) get(t *testing.T, url string) (status, body string) {
	t.Helper()
	out, err := d.kubectl(t, "exec", "deploy/loadgen", "--", "/demoapp", "get", "-any-status", url)
	if err != nil {
		t.Fatalf("GET %s from loadgen: %v\n%s", url, err, out)
	}
	status, body, _ = strings.Cut(out, "\n")
	return status, body
}

// loadgenStats is what loadgen's /stats reports (hack/demoapp/loadgen.go).
type loadgenStats struct {
	Sent    int64                       `json:"sent"`
	Skipped int64                       `json:"skipped"`
	Status  map[string]int64            `json:"status"`
	Routes  map[string]map[string]int64 `json:"routes"`
	DNS     map[string]int64            `json:"dns"`
}

func (d *demoShop) stats(t *testing.T) loadgenStats {
	t.Helper()
	status, body := d.get(t, "http://localhost:9090/stats")
	var s loadgenStats
	if status != "200" {
		t.Fatalf("loadgen /stats: status %s: %s", status, body)
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("loadgen /stats %q: %v", body, err)
	}
	return s
}

// waitTraffic waits until loadgen has had answers from front.
func (d *demoShop) waitTraffic(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s := d.stats(t); s.Status["200"] > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from front in loadgen's stats after %s", timeout)
		}
		time.Sleep(2 * time.Second)
	}
}

// podNodes maps each app of the demo to the node its pod runs on.
func (d *demoShop) podNodes(t *testing.T) map[string]string {
	t.Helper()
	out, err := d.kubectl(t, "get", "pods", "--field-selector=status.phase=Running",
		"-o", `jsonpath={range .items[*]}{.metadata.labels.app}{" "}{.spec.nodeName}{"\n"}{end}`)
	if err != nil {
		t.Fatalf("list the demo's pods: %v\n%s", err, out)
	}
	nodes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if app, node, ok := strings.Cut(line, " "); ok {
			nodes[app] = node
		}
	}
	return nodes
}
