package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// mountInfo is one line of /proc/self/mountinfo, the fields down needs.
type mountInfo struct {
	mountPoint string
	fsType     string
}

// parseMountInfo reads mountinfo lines: field 5 is the mount point (octal-escaped),
// and the filesystem type follows the " - " separator.
func parseMountInfo(b []byte) []mountInfo {
	var out []mountInfo
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		p := strings.Fields(post)
		if len(f) < 5 || len(p) < 1 {
			continue
		}
		out = append(out, mountInfo{mountPoint: unescapeOctal(f[4]), fsType: p[0]})
	}
	return out
}

// unescapeOctal undoes the \NNN escapes the kernel uses for spaces and the like.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readMounts() ([]mountInfo, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountInfo(b), nil
}

// mountsUnder returns the mount points at or below any of the roots, deepest first.
func mountsUnder(ms []mountInfo, roots ...string) []string {
	var out []string
	for _, m := range ms {
		for _, r := range roots {
			if m.mountPoint == r || strings.HasPrefix(m.mountPoint, r+"/") {
				out = append(out, m.mountPoint)
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out
}

// unmountAll unmounts everything below the roots: pod volumes, container root
// filesystems, sandbox shm and network namespace files. Stacked mounts need more
// than one pass.
func unmountAll(roots ...string) error {
	for pass := 0; pass < 8; pass++ {
		ms, err := readMounts()
		if err != nil {
			return err
		}
		targets := mountsUnder(ms, roots...)
		if len(targets) == 0 {
			return nil
		}
		for _, t := range targets {
			if err := syscall.Unmount(t, 0); err != nil {
				_ = syscall.Unmount(t, syscall.MNT_DETACH)
			}
		}
	}
	ms, err := readMounts()
	if err != nil {
		return err
	}
	if left := mountsUnder(ms, roots...); len(left) > 0 {
		return fmt.Errorf("still mounted: %s", strings.Join(left, ", "))
	}
	return nil
}

// cgroupHierarchies returns the mount points of every cgroup hierarchy: each v1
// controller and the v2 unified one on this hybrid machine.
func cgroupHierarchies() ([]string, error) {
	ms, err := readMounts()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.fsType == "cgroup" || m.fsType == "cgroup2" {
			out = append(out, m.mountPoint)
		}
	}
	return out, nil
}

// createCgroup makes path in every hierarchy, since the kubelet insists that its
// cgroup root exist. New cpuset cgroups start with no CPUs or memory nodes, so
// they inherit their parent's.
func createCgroup(path string) error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir := h
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			parent := dir
			dir = filepath.Join(dir, part)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := inheritCpuset(parent, dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func inheritCpuset(parent, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			return nil // not a v1 cpuset hierarchy
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(cur)) > 0 {
			continue
		}
		v, err := os.ReadFile(filepath.Join(parent, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cgroupProcs returns every pid in path's subtree, in any hierarchy.
func cgroupProcs(path string) []int {
	hs, _ := cgroupHierarchies()
	seen := map[int]bool{}
	var pids []int
	for _, h := range hs {
		root := filepath.Join(h, path)
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroup removes path's subtree from every hierarchy, children first.
func removeCgroup(path string) error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hs {
		root := filepath.Join(h, path)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}
