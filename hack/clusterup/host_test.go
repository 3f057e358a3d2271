package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireHost skips tests that change the host (interfaces, cgroups) unless they
// run as root with the tools at hand and no cluster is up to be disturbed.
func requireHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create interfaces and cgroups")
	}
	for _, tool := range []string{"ip", "unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	if linkExists(nodeBridge) {
		t.Skip("a cluster is up: not touching its network")
	}
}

func TestNetworkSetupAndTeardown(t *testing.T) {
	requireHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := testLayout(t)
	l.run = t.TempDir()
	l.state = t.TempDir()
	ns := nodes(l, 2)
	// setupNetwork turns on forwarding in the host: put the host's values back.
	if err := saveSysctls(l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = teardownNetwork(context.Background(), l)
		if err := restoreSysctls(l); err != nil {
			t.Error(err)
		}
	})
	if err := setupNetwork(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{nodeBridge, "shark-cni1", "shark-n2"} {
		if !linkExists(link) {
			t.Errorf("link %s missing after setup", link)
		}
	}
	// Node 2 sees its own address, its pod bridge and node 1 on the bridge.
	out, err := output(ctx, "nsenter", "--net="+ns[1].netns, "--", "ip", "-o", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"eth0    inet 10.88.0.2/24", "shark-cni2    inet 10.89.2.1/24"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("node 2 addresses lack %q:\n%s", want, out)
		}
	}
	// Bridges keep their own address whatever ports come and go: a pod's
	// veth with a lower one does not take it over.
	for _, br := range []struct {
		name string
		in   []string
		mac  string
	}{
		{nodeBridge, nil, bridgeMAC(0)},
		{"shark-cni1", nil, bridgeMAC(1)},
		{"shark-cni2", []string{"nsenter", "--net=" + ns[1].netns, "--"}, bridgeMAC(2)},
	} {
		cmd := func(args ...string) (string, error) {
			all := append(append([]string{}, br.in...), args...)
			return output(ctx, all[0], all[1:]...)
		}
		if _, err := cmd("ip", "link", "add", "shark-t0", "address", "02:00:00:00:00:01", "type", "veth", "peer", "name", "shark-t1"); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd("ip", "link", "set", "shark-t0", "master", br.name, "up"); err != nil {
			t.Fatal(err)
		}
		out, err := cmd("ip", "-br", "link", "show", "dev", br.name) // NAME STATE ADDRESS FLAGS
		if f := strings.Fields(out); err != nil || len(f) < 3 || f[2] != br.mac {
			t.Errorf("%s: %q with a lower port, %v; want address %s", br.name, strings.TrimSpace(out), err, br.mac)
		}
		if _, err := cmd("ip", "link", "del", "shark-t0"); err != nil {
			t.Fatal(err)
		}
	}
	routes, err := output(ctx, "ip", "route", "show", "10.89.2.0/24")
	if err != nil || !strings.Contains(routes, "via 10.88.0.2 dev shark0") {
		t.Errorf("host route to node 2's pods = %q, %v", routes, err)
	}
	unreachable, _ := output(ctx, "ip", "route", "show", "type", "unreachable")
	if !strings.Contains(unreachable, "10.89.0.0/16") || !strings.Contains(unreachable, "10.88.0.0/16") {
		t.Errorf("unreachable routes = %q, want the node and pod ranges", unreachable)
	}

	if err := teardownNetwork(ctx, l); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{nodeBridge, "shark-cni1", "shark-n2"} {
		if linkExists(link) {
			t.Errorf("link %s left after teardown", link)
		}
	}
	if _, err := os.Stat(ns[1].netns); !os.IsNotExist(err) {
		t.Errorf("netns file %s left: %v", ns[1].netns, err)
	}
	if left, _ := output(ctx, "ip", "route", "show", "type", "unreachable"); strings.Contains(left, "10.89.0.0/16") {
		t.Errorf("unreachable route left: %q", left)
	}
}

func TestCgroupCreateAndRemove(t *testing.T) {
	requireHost(t)
	path := "/shark-test-" + filepath.Base(t.TempDir()) + "/node-1"
	parent := filepath.Dir(path)
	t.Cleanup(func() { _ = removeCgroup(parent) })
	if err := createCgroup(path); err != nil {
		t.Fatal(err)
	}
	hs, err := cgroupHierarchies()
	if err != nil || len(hs) == 0 {
		t.Fatalf("hierarchies = %v, %v", hs, err)
	}
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h, path)); err != nil {
			t.Errorf("%s: %v", h, err)
		}
		if cpus, err := os.ReadFile(filepath.Join(h, path, "cpuset.cpus")); err == nil && strings.TrimSpace(string(cpus)) == "" {
			t.Errorf("%s: cpuset.cpus is empty", h)
		}
	}
	if pids := cgroupProcs(parent); len(pids) != 0 {
		t.Errorf("cgroupProcs of a fresh cgroup = %v", pids)
	}
	if err := removeCgroup(parent); err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(h, parent)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", filepath.Join(h, parent), err)
		}
	}
}
