package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
)

// entry is one file or directory of the layer.
type entry struct {
	dst  string // absolute, clean path in the image
	src  string // host file to copy; empty for a directory or inline data
	data []byte // inline content when src is empty
	mode fs.FileMode
	dir  bool
}

// baseFiles lets programs look up users and hosts the way they expect, and gives
// them a world-writable /tmp, as a distroless static base would.
func baseFiles() []entry {
	return []entry{
		{dst: "/etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{dst: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{dst: "/etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{dst: "/tmp", mode: fs.ModeSticky | 0o777, dir: true},
	}
}

// collect gathers every entry of the image; Go binaries are built into tmp.
func collect(ctx context.Context, s *spec, tmp string) ([]entry, error) {
	set := newEntrySet()
	if s.baseFiles {
		for _, e := range baseFiles() {
			set.add(e)
		}
	}
	for i, g := range s.goPkgs {
		bin, err := goBuild(ctx, g.src, s.platform, filepath.Join(tmp, fmt.Sprint(i)))
		if err != nil {
			return nil, err
		}
		set.add(entry{dst: g.dst, src: bin, mode: 0o755})
	}
	for _, f := range s.files {
		if err := addTree(set, f); err != nil {
			return nil, err
		}
	}
	for _, b := range s.binaries {
		if err := addBinary(ctx, set, b, s.platform); err != nil {
			return nil, err
		}
	}
	return set.list()
}

// entrySet de-duplicates entries by path: two binaries may share libc, but two
// different sources for one path are an error.
type entrySet struct {
	byDst map[string]entry
	errs  []error
}

func newEntrySet() *entrySet { return &entrySet{byDst: map[string]entry{}} }

func (s *entrySet) add(e entry) {
	old, ok := s.byDst[e.dst]
	if ok && (old.src != e.src || old.dir != e.dir || !bytes.Equal(old.data, e.data)) {
		s.errs = append(s.errs, fmt.Errorf("%s: added twice, from %q and %q", e.dst, old.src, e.src))
		return
	}
	s.byDst[e.dst] = e
}

func (s *entrySet) list() ([]entry, error) {
	if len(s.errs) > 0 {
		return nil, errors.Join(s.errs...)
	}
	out := make([]entry, 0, len(s.byDst))
	for _, e := range s.byDst {
		out = append(out, e)
	}
	return out, nil
}

// addTree adds a host file, or a directory with everything below it. Symbolic
// links are followed: the image gets the content they point to.
func addTree(set *entrySet, m mapping) error {
	st, err := os.Stat(m.src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		set.add(entry{dst: m.dst, src: m.src, mode: st.Mode().Perm()})
		return nil
	}
	return filepath.WalkDir(m.src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(m.src, p)
		if err != nil {
			return err
		}
		dst := cleanPath(path.Join(m.dst, filepath.ToSlash(rel)))
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if info.IsDir() {
			set.add(entry{dst: dst, mode: info.Mode().Perm(), dir: true})
			return nil
		}
		set.add(entry{dst: dst, src: p, mode: info.Mode().Perm()})
		return nil
	})
}

// addBinary adds a host ELF binary and, when it is dynamically linked, the shared
// libraries and loader that ldd lists, each at the path ldd gives.
func addBinary(ctx context.Context, set *entrySet, m mapping, p platform) error {
	dynamic, err := checkELF(m.src, p.arch)
	if err != nil {
		return err
	}
	st, err := os.Stat(m.src)
	if err != nil {
		return err
	}
	set.add(entry{dst: m.dst, src: m.src, mode: st.Mode().Perm()})
	if !dynamic {
		return nil
	}
	if p.arch != runtime.GOARCH {
		return fmt.Errorf("%s: ldd here resolves %s libraries only, not %s", m.src, runtime.GOARCH, p.arch)
	}
	out, err := exec.CommandContext(ctx, "ldd", m.src).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", m.src, err)
	}
	libs, err := parseLdd(out)
	if err != nil {
		return fmt.Errorf("ldd %s: %w", m.src, err)
	}
	for _, lib := range libs {
		set.add(entry{dst: cleanPath(lib), src: lib, mode: 0o755})
	}
	return nil
}

// elfMachines maps an image architecture to the ELF machine its binaries have.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkELF fails unless path is a Linux ELF executable for arch, and tells whether
// it is dynamically linked (has a program interpreter).
func checkELF(path, arch string) (dynamic bool, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("%s: not an ELF binary: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elfMachines[arch] {
		return false, fmt.Errorf("%s: built for %s, the image is %s", path, f.Machine, arch)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

// parseLdd returns the absolute paths in ldd's output: the libraries after "=>" and
// the loader on a line of its own. The vDSO has no file and is skipped; a library
// ldd could not find is an error, since the image would not run.
func parseLdd(out []byte) ([]string, error) {
	var libs, missing []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		soname, target, hasArrow := strings.Cut(line, "=>")
		if hasArrow {
			target = strings.TrimSpace(target)
			if strings.HasPrefix(target, "not found") {
				missing = append(missing, strings.TrimSpace(soname))
				continue
			}
		} else {
			target = line
		}
		p, _, _ := strings.Cut(target, " (")
		if strings.HasPrefix(p, "/") {
			libs = append(libs, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("libraries not found: %s", strings.Join(missing, ", "))
	}
	return libs, sc.Err()
}

// goBuild builds pkg as a static, stripped binary for the platform into dir.
func goBuild(ctx context.Context, pkg string, p platform, dir string) (string, error) {
	bin := filepath.Join(dir, path.Base(strings.TrimRight(pkg, "/")))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s for %s: %w", pkg, p, err)
	}
	if _, err := checkELF(bin, p.arch); err != nil {
		return "", err
	}
	return bin, nil
}

func absPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(abs), nil
}

// cleanPath is an absolute, clean slash path.
func cleanPath(p string) string { return path.Clean("/" + p) }
