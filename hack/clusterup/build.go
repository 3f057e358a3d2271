package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// artifacts are the cluster's binaries and images, built once and cached under
// .cache keyed by version and by a hash of the sources that make them.
type artifacts struct {
	binDir       string // kube (multi-call), etcd, coredns and the component symlinks
	pauseImage   string // docker-archive tarballs
	corednsImage string
}

func (a artifacts) bin(name string) string { return filepath.Join(a.binDir, name) }

// components are the names the multi-call binary answers to; each gets a symlink
// so that ps shows which component a process is.
var components = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"}

// ensureArtifacts builds whatever is missing from the cache and returns the paths.
func ensureArtifacts(ctx context.Context, l layout, out io.Writer) (artifacts, error) {
	k8sDir := filepath.Join(l.repo, "hack", "k8s")
	dnsDir := filepath.Join(k8sDir, "coredns")
	k8sHash, err := hashSources(k8sDir, "coredns")
	if err != nil {
		return artifacts{}, err
	}
	dnsHash, err := hashSources(dnsDir, "")
	if err != nil {
		return artifacts{}, err
	}
	a := artifacts{binDir: filepath.Join(l.cache, "k8s", k8sVersion+"-"+k8sHash)}
	k8sLD := versionLDFlags()
	builds := []goBuild{
		{dir: k8sDir, pkg: "./kube", out: a.bin("kube"), ldflags: k8sLD, what: "Kubernetes " + k8sVersion,
			note: " (the first build takes about 10 min on 2 cores)"},
		{dir: k8sDir, pkg: "./etcd", out: a.bin("etcd"), what: "etcd"},
	}
	dnsBin := filepath.Join(l.cache, "coredns", corednsVersion+"-"+dnsHash, "coredns")
	builds = append(builds, goBuild{dir: dnsDir, pkg: ".", out: dnsBin, what: "CoreDNS " + corednsVersion})
	for _, b := range builds {
		if err := b.ensure(ctx, l, out); err != nil {
			return artifacts{}, err
		}
	}
	for _, c := range components {
		if err := symlink("kube", a.bin(c)); err != nil {
			return artifacts{}, err
		}
	}
	if err := symlink(dnsBin, a.bin("coredns")); err != nil {
		return artifacts{}, err
	}
	a.pauseImage, a.corednsImage, err = ensureImages(ctx, l, dnsBin, dnsHash, out)
	return a, err
}

// versionLDFlags stamps the version that `go build` cannot know into the binaries,
// as upstream's release build does.
func versionLDFlags() string {
	flags := []string{"-s", "-w"}
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", p+".gitVersion="+k8sVersion,
			"-X", p+".gitMajor=1",
			"-X", p+".gitMinor="+strings.Split(k8sVersion, ".")[1],
			"-X", p+".gitTreeState=clean",
			"-X", p+".buildDate=1970-01-01T00:00:00Z")
	}
	return strings.Join(flags, " ")
}

// goBuild is one cached `go build` of a static binary.
type goBuild struct {
	dir, pkg, out string
	ldflags       string
	what, note    string
}

func (b goBuild) ensure(ctx context.Context, l layout, out io.Writer) error {
	if _, err := os.Stat(b.out); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(b.out), 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(l.cache, "logs", "build-"+filepath.Base(b.out)+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	ldflags := b.ldflags
	if ldflags == "" {
		ldflags = "-s -w"
	}
	fmt.Fprintf(out, "building %s%s, log: %s\n", b.what, b.note, logPath)
	begin := time.Now()
	tmp := b.out + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", tmp, b.pkg)
	cmd.Dir = b.dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -buildvcs=false", "GOWORK=off",
		"GOOS=linux", "GOARCH="+runtime.GOARCH)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s failed (%w), see %s", b.what, err, logPath)
	}
	fmt.Fprintf(out, "built %s in %s\n", b.what, time.Since(begin).Round(time.Second))
	return os.Rename(tmp, b.out)
}

// hashSources hashes the module's go.mod, go.sum and Go files, skipping the
// subdirectory skip (a nested module with its own hash). A change in any of them
// gives a new cache key, so a stale binary is never reused.
func hashSources(dir, skip string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && skip != "" && p == filepath.Join(dir, skip) {
			return filepath.SkipDir
		}
		name := d.Name()
		if !d.IsDir() && (name == "go.mod" || name == "go.sum" || strings.HasSuffix(name, ".go")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func symlink(target, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Symlink(target, link)
}

// ensureImages builds the pause and CoreDNS images with hack/image unless the
// cache has them for the current sources.
func ensureImages(ctx context.Context, l layout, dnsBin, dnsHash string, out io.Writer) (pause, coredns string, err error) {
	imgHash, err := hashSources(filepath.Join(l.repo, "hack", "image"), "")
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(l.cache, "images")
	pause = filepath.Join(dir, fmt.Sprintf("pause-%s-%s.tar", imgHash, runtime.GOARCH))
	coredns = filepath.Join(dir, fmt.Sprintf("coredns-%s-%s-%s.tar", corednsVersion, dnsHash+imgHash, runtime.GOARCH))
	jobs := []struct {
		path string
		args []string
	}{
		{pause, []string{"--pause"}},
		{coredns, []string{"-t", corednsImage, "--file", dnsBin + ":/coredns", "--entrypoint", "/coredns",
			"--user", "65532:65532"}},
	}
	for _, j := range jobs {
		if _, err := os.Stat(j.path); err == nil {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", err
		}
		args := append([]string{"run", "./hack/image", "-o", j.path}, j.args...)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = l.repo
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly -buildvcs=false", "GOWORK=off")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return "", "", fmt.Errorf("build image %s: %w", filepath.Base(j.path), err)
		}
	}
	return pause, coredns, nil
}
