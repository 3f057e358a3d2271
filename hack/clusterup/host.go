package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hostNeeds maps a file the cluster runs to the Debian package that ships it.
var hostNeeds = []struct{ path, pkg string }{
	{"/usr/bin/containerd", "containerd"},
	{"/usr/bin/ctr", "containerd"},
	{"/usr/bin/containerd-shim-runc-v2", "containerd"},
	{"/usr/sbin/runc", "runc"},
	{cniBinDir + "/bridge", "containernetworking-plugins"},
	{cniBinDir + "/host-local", "containernetworking-plugins"},
	{cniBinDir + "/loopback", "containernetworking-plugins"},
	{cniBinDir + "/portmap", "containernetworking-plugins"},
	{"/usr/sbin/iptables", "iptables"},
	{"/usr/sbin/conntrack", "conntrack"},
	{"/usr/bin/nsenter", "util-linux"},
	{"/usr/bin/unshare", "util-linux"},
	{"/usr/sbin/ip", "iproute2"},
}

// missingPackages lists the packages of hostNeeds whose files are missing.
func missingPackages() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range hostNeeds {
		if _, err := os.Stat(n.path); err == nil || seen[n.pkg] {
			continue
		}
		seen[n.pkg] = true
		out = append(out, n.pkg)
	}
	return out
}

// ensureHostPackages installs what the cluster needs from Debian's archive.
func ensureHostPackages(ctx context.Context, out io.Writer) error {
	pkgs := missingPackages()
	if len(pkgs) == 0 {
		return nil
	}
	fmt.Fprintf(out, "installing %s with apt-get\n", strings.Join(pkgs, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"update", "-q"},
		append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...),
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, b)
		}
	}
	if left := missingPackages(); len(left) > 0 {
		return fmt.Errorf("still missing after apt-get install: %s", strings.Join(left, " "))
	}
	return nil
}

// ensureKernel checks the two kernel features the cluster relies on: overlayfs for
// container images and bridge netfilter, without which a pod cannot reach a service
// backed by a pod on its own bridge.
func ensureKernel(ctx context.Context) error {
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		_ = exec.CommandContext(ctx, "modprobe", "br_netfilter").Run()
		if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
			return errors.New("the kernel has no bridge netfilter (br_netfilter): services cannot work")
		}
	}
	fss, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return err
	}
	if !strings.Contains(string(fss), "\toverlay\n") {
		_ = exec.CommandContext(ctx, "modprobe", "overlay").Run()
		if fss, _ = os.ReadFile("/proc/filesystems"); !strings.Contains(string(fss), "\toverlay\n") {
			return errors.New("the kernel has no overlayfs: containerd cannot unpack images")
		}
	}
	return nil
}

// hostSysctls are the host settings that up (forwarding, bridge netfilter) and the
// kubelet (its kernel tunables) change; down puts the saved values back.
var hostSysctls = []string{
	"net/ipv4/ip_forward",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

func (l layout) sysctlFile() string { return filepath.Join(l.state, "sysctl.json") }

// saveSysctls records the host's values once: an up after a failed up must not
// take the cluster's values for the host's.
func saveSysctls(l layout) error {
	if _, err := os.Stat(l.sysctlFile()); err == nil {
		return nil
	}
	saved := map[string]string{}
	for _, k := range hostSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			continue
		}
		saved[k] = strings.TrimSpace(string(v))
	}
	b, err := json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(l.sysctlFile(), b, 0o644)
}

func restoreSysctls(l layout) error {
	b, err := os.ReadFile(l.sysctlFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var saved map[string]string
	if err := json.Unmarshal(b, &saved); err != nil {
		return err
	}
	var errs []error
	for k, v := range saved {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sharedDirs are host directories that containerd's shims, the CNI library and
// the kubelet use whatever they are configured with. down removes what the cluster
// put there, and a directory itself only if up created it.
var sharedDirs = []string{"/run/containerd", "/var/lib/cni", "/var/log/containers", "/var/lib/kubelet"}

// deviceManagerSocket is the kubelet's device plugin socket, at a path that no
// flag moves; every kubelet of the cluster binds it in turn.
const deviceManagerSocket = "/var/lib/kubelet/device-plugins/kubelet.sock"

func (l layout) createdDirsFile() string { return filepath.Join(l.state, "created-dirs.json") }

// recordSharedDirs notes which sharedDirs do not exist yet.
func recordSharedDirs(l layout) error {
	if _, err := os.Stat(l.createdDirsFile()); err == nil {
		return nil
	}
	var created []string
	for _, d := range sharedDirs {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			created = append(created, d)
		}
	}
	b, err := json.Marshal(created)
	if err != nil {
		return err
	}
	return writeFile(l.createdDirsFile(), b, 0o644)
}

// cleanSharedDirs removes the cluster's files from sharedDirs: shim sockets, CNI
// result caches of the cluster's sandboxes, container log symlinks into the
// cluster's state and the device plugin socket; then the directories up created,
// if empty. The runtimes remove all but the last when they shut pods down
// properly; this is for what a forced teardown leaves.
func cleanSharedDirs(l layout, shimSockets, sandboxIDs []string) error {
	var errs []error
	remove := func(p string) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, s := range shimSockets {
		remove(s)
	}
	for _, id := range sandboxIDs {
		results, _ := filepath.Glob("/var/lib/cni/results/*-" + id + "-*")
		for _, r := range results {
			remove(r)
		}
	}
	if st, err := os.Lstat(deviceManagerSocket); err == nil && st.Mode()&fs.ModeSocket != 0 {
		remove(deviceManagerSocket)
	}
	links, _ := filepath.Glob("/var/log/containers/*")
	for _, link := range links {
		if target, err := os.Readlink(link); err == nil && strings.HasPrefix(target, l.state+"/") {
			remove(link)
		}
	}
	b, err := os.ReadFile(l.createdDirsFile())
	if err == nil {
		var created []string
		if err := json.Unmarshal(b, &created); err != nil {
			return err
		}
		for _, d := range created {
			removeEmptyTree(d)
		}
	}
	return errors.Join(errs...)
}

// removeEmptyTree removes dir and its subdirectories, as long as they hold no files.
func removeEmptyTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i]) // fails, and so keeps the directory, when not empty
	}
}

// shimSockets returns the sockets of the shims that a node's containerd started,
// from the address files in its task state. Shims killed instead of shut down
// leave them in /run/containerd/s.
func shimSockets(n node) []string {
	files, _ := filepath.Glob(filepath.Join(n.containerdState(), "io.containerd.runtime.v2.task", "*", "*", "address"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		addr := strings.TrimSpace(string(b))
		if p, ok := strings.CutPrefix(addr, "unix://"); ok && strings.HasPrefix(p, "/run/containerd/s/") {
			out = append(out, p)
		}
	}
	return out
}

// sandboxIDs lists the pod sandboxes a node's containerd knows, from its CRI state.
func sandboxIDs(n node) []string {
	dirs, _ := filepath.Glob(filepath.Join(n.containerdRoot(), "io.containerd.grpc.v1.cri", "sandboxes", "*"))
	ids := make([]string, 0, len(dirs))
	for _, d := range dirs {
		ids = append(ids, filepath.Base(d))
	}
	return ids
}
