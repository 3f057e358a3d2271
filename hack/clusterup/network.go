package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// setupNetwork creates the node network: bridge shark0 with node 1's address, one
// network namespace per further node joined to it by a veth pair, each node's pod
// bridge, and the routes between them. The host also gets unreachable routes for
// the node and pod ranges and keeps the service range on shark0, so that no cluster
// address is ever routed off the machine, even while nothing serves it.
func setupNetwork(ctx context.Context, ns []node) error {
	first := ns[0]
	steps := [][]string{
		{"ip", "link", "add", nodeBridge, "type", "bridge"},
		{"ip", "link", "set", nodeBridge, "address", bridgeMAC(0)},
		{"ip", "addr", "replace", prefixOf(first.ip, nodeNet), "dev", nodeBridge},
		{"ip", "link", "set", nodeBridge, "up"},
		{"ip", "route", "replace", "unreachable", nodeSupernet.String()},
		{"ip", "route", "replace", "unreachable", podNet.String()},
		{"ip", "route", "replace", serviceNet.String(), "dev", nodeBridge, "src", first.ip.String()},
	}
	if err := runSteps(ctx, steps); err != nil {
		return err
	}
	for _, n := range ns {
		if err := setupNode(ctx, n, first); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	return nil
}

func setupNode(ctx context.Context, n, first node) error {
	if n.netns != "" {
		if err := createNetns(ctx, n.netns); err != nil {
			return err
		}
		// Create the pair inside the node's namespace and send the host end to ours.
		host := strconv.Itoa(os.Getpid())
		steps := [][]string{
			inNetns(n.netns, "ip", "link", "set", "lo", "up"),
			inNetns(n.netns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", n.hostVeth, "netns", host),
			{"ip", "link", "set", n.hostVeth, "master", nodeBridge, "up"},
			inNetns(n.netns, "ip", "addr", "add", prefixOf(n.ip, nodeNet), "dev", "eth0"),
			inNetns(n.netns, "ip", "link", "set", "eth0", "up"),
			inNetns(n.netns, "ip", "route", "add", podNet.String(), "via", first.ip.String()),
			inNetns(n.netns, "ip", "route", "add", serviceNet.String(), "via", first.ip.String()),
			{"ip", "route", "replace", n.podCIDR.String(), "via", n.ip.String(), "dev", nodeBridge},
		}
		if err := runSteps(ctx, steps); err != nil {
			return err
		}
	}
	// The CNI bridge plugin would create the pod bridge with the first pod; creating
	// it now gives the pod CIDR a route before then.
	steps := [][]string{
		inNetns(n.netns, "ip", "link", "add", n.cniBridge, "type", "bridge"),
		inNetns(n.netns, "ip", "link", "set", n.cniBridge, "address", bridgeMAC(n.index)),
		inNetns(n.netns, "ip", "addr", "replace", prefixOf(n.podGateway, n.podCIDR), "dev", n.cniBridge),
		inNetns(n.netns, "ip", "link", "set", n.cniBridge, "up"),
	}
	if err := runSteps(ctx, steps); err != nil {
		return err
	}
	return setSysctls(ctx, n.netns, map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
	})
}

// bridgeMAC is the fixed, locally administered address of bridge i (0: the
// node bridge, else node i's pod bridge). A bridge without one takes the
// lowest address of its ports, so it changed as pods came and went, and
// pods whose ARP entry for their gateway still held the old address lost
// their traffic for seconds, until it was resolved again.
func bridgeMAC(i int) string {
	return fmt.Sprintf("02:5a:00:00:%02x:%02x", i>>8, i&0xff)
}

func prefixOf(a interface{ String() string }, p interface{ Bits() int }) string {
	return fmt.Sprintf("%s/%d", a, p.Bits())
}

func runSteps(ctx context.Context, steps [][]string) error {
	for _, s := range steps {
		if err := runCmd(ctx, s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// createNetns makes a network namespace that lives on as a bind mount at path,
// without touching /run/netns (whose first use by ip-netns leaves a mount behind).
func createNetns(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	return runCmd(ctx, "unshare", "--net="+path, "true")
}

// setSysctls writes /proc/sys values in the given network namespace (the host's if
// empty). Values under net/ are per namespace; the rest are global.
func setSysctls(ctx context.Context, netns string, kv map[string]string) error {
	if netns == "" {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	var script strings.Builder
	for k, v := range kv {
		fmt.Fprintf(&script, "echo %s > /proc/sys/%s\n", v, k)
	}
	return runCmd(ctx, "nsenter", "--net="+netns, "--", "sh", "-ec", script.String())
}

// teardownNetwork deletes what setupNetwork and the CNI plugins made: the node
// namespaces (their interfaces go with them), pod veths left on the host's pod
// bridges, the bridges, and the host routes. Missing pieces are fine.
func teardownNetwork(ctx context.Context, l layout) error {
	var errs []error
	for i := 1; i <= maxNodes; i++ {
		n := newNode(l, i)
		if n.hostVeth != "" {
			errs = append(errs, deleteLink(ctx, n.hostVeth))
		}
		if n.netns != "" {
			errs = append(errs, removeNetns(n.netns))
		}
		// Veths of pods whose namespaces were already gone stay on the bridge.
		for _, port := range bridgePorts(n.cniBridge) {
			errs = append(errs, deleteLink(ctx, port))
		}
		errs = append(errs, deleteLink(ctx, n.cniBridge))
	}
	// The service route goes with shark0; the unreachable ones stay until deleted.
	errs = append(errs, deleteLink(ctx, nodeBridge))
	for _, prefix := range []string{nodeSupernet.String(), podNet.String()} {
		errs = append(errs, deleteRoute(ctx, "unreachable", prefix))
	}
	return errors.Join(errs...)
}

func removeNetns(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := syscall.Unmount(path, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return os.Remove(path)
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// deleteLink deletes an interface of the host. One that is gone, or goes while
// we try (a veth whose peer's namespace was just destroyed), is fine.
func deleteLink(ctx context.Context, name string) error {
	if !linkExists(name) {
		return nil
	}
	if err := runCmd(ctx, "ip", "link", "del", name); err != nil && linkExists(name) {
		return err
	}
	return nil
}

// bridgePorts lists the interfaces enslaved to a bridge of the host.
func bridgePorts(bridge string) []string {
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// deleteRoute deletes a host route of the given type; one that is not there is fine.
func deleteRoute(ctx context.Context, typ, prefix string) error {
	out, err := output(ctx, "ip", "route", "show", "type", typ, "exact", prefix)
	if err != nil || strings.TrimSpace(out) == "" {
		return err
	}
	return runCmd(ctx, "ip", "route", "del", typ, prefix)
}
