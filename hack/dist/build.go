package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kubectl-shark/kubectl-shark/hack/krew"
)

// artifact is one built archive.
type artifact struct {
	platform platform
	name     string // file name, e.g. kubectl-shark_v0.1.0_linux_amd64.tar.gz
	path     string
	sha256   string
}

// notVersionChar is what a semver pre-release identifier may not hold.
var notVersionChar = regexp.MustCompile(`[^0-9A-Za-z-]+`)

// releaseVersion returns v when krew accepts it as a version (v1.2.3, or the
// v1.2.3-4-gabcdef of `git describe` after a tag). Anything else (an untagged
// `git describe`, "dev") becomes a pre-release of v0.0.0, so that the manifest
// stays valid and the agent image tag derived from it stays a valid tag.
func releaseVersion(v string) string {
	switch {
	case krew.IsSemver(v):
		return v
	case krew.IsSemver("v" + v):
		return "v" + v
	case v == "" || v == "dev":
		return "v0.0.0-dev"
	}
	return "v0.0.0-dev-" + strings.Trim(notVersionChar.ReplaceAllString(v, "-"), "-")
}

// archiveName is the file name the release URLs of .krew.yaml use.
func archiveName(version string, p platform) string {
	return fmt.Sprintf("kubectl-shark_%s_%s_%s.tar.gz", version, p.os, p.arch)
}

func buildAll(ctx context.Context, c *config, stdout io.Writer) ([]artifact, error) {
	tmp, err := os.MkdirTemp("", "hack-dist-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var arts []artifact
	for _, p := range c.platforms {
		begin := time.Now()
		a, err := buildOne(ctx, c, p, tmp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintf(stdout, "%s: %s (%s)\n", a.path, a.sha256, time.Since(begin).Round(time.Second))
		arts = append(arts, a)
	}
	return arts, nil
}

// buildOne cross-compiles the plugin for p and packs its archive.
func buildOne(ctx context.Context, c *config, p platform, tmp string) (artifact, error) {
	bin := filepath.Join(tmp, p.os+"_"+p.arch, p.exe())
	if err := goBuild(ctx, c, p, bin); err != nil {
		return artifact{}, err
	}
	a := artifact{platform: p, name: archiveName(c.version, p)}
	a.path = filepath.Join(c.out, a.name)
	files := []archiveFile{
		{name: p.exe(), src: bin, mode: 0o755},
		{name: "LICENSE", src: c.license, mode: 0o644},
		{name: "kubectl_complete-shark", src: c.complete, mode: 0o755},
	}
	if err := writeTarGz(a.path, files, c.mtime); err != nil {
		return artifact{}, err
	}
	sum, err := krew.FileSHA256(a.path)
	a.sha256 = sum
	return a, err
}

// goBuild builds a static, path-free binary: CGO_ENABLED=0 and -trimpath, no
// VCS stamp (a dirty tree would change it), and the version set by -X.
func goBuild(ctx context.Context, c *config, p platform, out string) error {
	ldflags := "-s -w -X " + module + "/pkg/version.Version=" + c.version
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", ldflags, "-o", out, c.pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	return nil
}

// writeSums writes sha256sums.txt in the format `sha256sum -c` reads.
func writeSums(dir string, arts []artifact) error {
	sorted := append([]artifact(nil), arts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	var b strings.Builder
	for _, a := range sorted {
		fmt.Fprintf(&b, "%s  %s\n", a.sha256, a.name)
	}
	return writeFileAtomic(filepath.Join(dir, "sha256sums.txt"), []byte(b.String()))
}

// writeFileAtomic writes through a temporary file, so that a failed run never
// leaves a truncated file where a later step would pick it up.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
