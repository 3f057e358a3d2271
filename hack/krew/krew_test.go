package krew

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const goodManifest = `apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: shark
spec:
  version: v0.1.0
  shortDescription: See what your pods say
  description: |
    Creates privileged pods.
  platforms:
  - selector:
      matchLabels:
        os: linux
        arch: amd64
    uri: https://example.com/kubectl-shark_v0.1.0_linux_amd64.tar.gz
    sha256: "%s"
    files:
    - from: kubectl-shark
      to: .
    - from: LICENSE
      to: .
    bin: kubectl-shark
  - selector:
      matchLabels:
        os: windows
        arch: amd64
    uri: https://example.com/kubectl-shark_v0.1.0_windows_amd64.tar.gz
    sha256: "%s"
    files:
    - from: kubectl-shark.exe
      to: .
    - from: LICENSE
      to: .
    bin: kubectl-shark.exe
`

var zeros = strings.Repeat("0", 64)

func good(t *testing.T) *Plugin {
	t.Helper()
	p, err := Parse([]byte(strings.ReplaceAll(goodManifest, "%s", zeros)))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate("shark", p); err != nil {
		t.Fatalf("the good manifest is invalid: %v", err)
	}
	return p
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		plugin string // name the file gives
		mutate func(*Plugin)
		want   string
	}{
		{"api version", "shark", func(p *Plugin) { p.APIVersion = "krew.googlecontainertools.github.com/v1alpha1" }, "apiVersion"},
		{"kind", "shark", func(p *Plugin) { p.Kind = "Plugins" }, "kind"},
		{"name differs from file", "shark2", func(p *Plugin) {}, `metadata.name "shark", want "shark2"`},
		{"unsafe name", "sh.ark", func(p *Plugin) { p.Metadata.Name = "sh.ark" }, "must match"},
		{"reserved windows name", "con", func(p *Plugin) { p.Metadata.Name = "con" }, "reserved"},
		{"no short description", "shark", func(p *Plugin) { p.Spec.ShortDescription = "" }, "shortDescription is empty"},
		{"two-line short description", "shark", func(p *Plugin) { p.Spec.ShortDescription = "a\nb" }, "line break"},
		{"no v prefix", "shark", func(p *Plugin) { p.Spec.Version = "0.1.0" }, "semantic version"},
		{"not semver", "shark", func(p *Plugin) { p.Spec.Version = "v1.2" }, "semantic version"},
		{"leading zero", "shark", func(p *Plugin) { p.Spec.Version = "v1.02.0" }, "semantic version"},
		{"pre-release leading zero", "shark", func(p *Plugin) { p.Spec.Version = "v1.2.0-01" }, "semantic version"},
		{"no platforms", "shark", func(p *Plugin) { p.Spec.Platforms = nil }, "platforms is empty"},
		{"no uri", "shark", func(p *Plugin) { p.Spec.Platforms[0].URI = "" }, "uri is empty"},
		{"short sha", "shark", func(p *Plugin) { p.Spec.Platforms[0].Sha256 = "abc" }, "64 lowercase hex"},
		{"upper-case sha", "shark", func(p *Plugin) { p.Spec.Platforms[0].Sha256 = strings.Repeat("A", 64) }, "64 lowercase hex"},
		{"no bin", "shark", func(p *Plugin) { p.Spec.Platforms[0].Bin = "" }, "bin is empty"},
		{"empty files", "shark", func(p *Plugin) { p.Spec.Platforms[0].Files = []FileOperation{} }, "non-empty"},
		{"file without to", "shark", func(p *Plugin) { p.Spec.Platforms[0].Files[1].To = "" }, "files[1]"},
		{"no selector", "shark", func(p *Plugin) { p.Spec.Platforms[0].Selector = nil }, "selector: missing"},
		{"empty selector", "shark", func(p *Plugin) { p.Spec.Platforms[0].Selector = &metav1.LabelSelector{} }, "selector: empty"},
		{"bad selector key", "shark", func(p *Plugin) { p.Spec.Platforms[0].Selector.MatchLabels["distro"] = "debian" }, `key "distro"`},
		{"unreal pair", "shark", func(p *Plugin) { p.Spec.Platforms[0].Selector.MatchLabels["arch"] = "mips" }, "matches no supported"},
		{"overlap", "shark", func(p *Plugin) {
			p.Spec.Platforms[1].Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"arch": "amd64"}}
		}, "overlap: all select linux/amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good(t)
			tt.mutate(p)
			err := Validate(tt.plugin, p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestParseIsStrict(t *testing.T) {
	bad := strings.Replace(strings.ReplaceAll(goodManifest, "%s", zeros), "  version:", "  verison: x\n  version:", 1)
	if _, err := Parse([]byte(bad)); err == nil {
		t.Error("an unknown field parsed without error")
	}
	if _, err := Parse(nil); err == nil {
		t.Error("an empty manifest parsed without error")
	}
}

func TestIsSemver(t *testing.T) {
	for v, want := range map[string]bool{
		"v0.1.0": true, "v1.22.333": true, "v0.0.0-dev": true, "v0.1.0-3-gabc1234-dirty": true,
		"v1.0.0-rc.1+build.5": true, "v1.0.0+0017": true,
		"1.0.0": false, "v1.0": false, "v01.0.0": false, "v1.0.0-": false, "v1.0.0-01": false, "v1.0.0-a..b": false, "": false,
	} {
		if got := IsSemver(v); got != want {
			t.Errorf("IsSemver(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestWarnings(t *testing.T) {
	p := good(t)
	if w := Warnings(p); len(w) != 0 {
		t.Errorf("warnings on the good manifest: %q", w)
	}
	p.Spec.Description = strings.Repeat("word ", 20) + "\nhttps://example.com/" + strings.Repeat("x", 90)
	got := Warnings(p)
	if len(got) != 1 || !strings.Contains(got[0], "description") {
		t.Errorf("warnings = %q, want one about the first description line only", got)
	}
}

// tarGz builds an archive in memory from name → (mode, content).
type file struct {
	mode    int64
	content string
}

func tarGz(t testing.TB, files map[string]file, extra ...*tar.Header) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range sortedKeys(files) {
		f := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: f.mode, Size: int64(len(f.content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.content))
	}
	for _, h := range extra {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func sortedKeys(m map[string]file) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func writeArchive(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubectl-shark_v0.1.0_linux_amd64.tar.gz")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var linuxAMD64 = OSArch{"linux", "amd64"}

func TestInstall(t *testing.T) {
	data := tarGz(t, map[string]file{
		"kubectl-shark":          {0o755, "#!/bin/sh\necho shark\n"},
		"LICENSE":                {0o644, "license"},
		"kubectl_complete-shark": {0o755, "complete"},
		"README.md":              {0o644, "not installed"},
	})
	archive := writeArchive(t, data)
	p := good(t)
	p.Spec.Platforms[0].Sha256 = sum(data)
	root := t.TempDir()
	in, err := Install(p, archive, root, linuxAMD64)
	if err != nil {
		t.Fatal(err)
	}
	wantDir := filepath.Join(root, "store", "shark", "v0.1.0")
	if in.Dir != wantDir || in.Bin != filepath.Join(wantDir, "kubectl-shark") || in.Link != filepath.Join(root, "bin", "kubectl-shark") {
		t.Errorf("Install = %+v", in)
	}
	if target, err := os.Readlink(in.Link); err != nil || target != in.Bin {
		t.Errorf("link -> %q, %v; want %q", target, err, in.Bin)
	}
	entries, _ := os.ReadDir(in.Dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"LICENSE", "kubectl-shark"}, names); diff != "" {
		t.Errorf("installed files (-want +got):\n%s", diff)
	}
	// A second install replaces the link rather than failing.
	if _, err := Install(p, archive, root, linuxAMD64); err != nil {
		t.Errorf("reinstall: %v", err)
	}
}

func TestInstallFails(t *testing.T) {
	ok := map[string]file{"kubectl-shark": {0o755, "bin"}, "LICENSE": {0o644, "l"}}
	tests := []struct {
		name   string
		files  map[string]file
		extra  []*tar.Header
		mutate func(*Platform)
		pair   OSArch
		want   string
	}{
		{name: "sha mismatch", files: ok, mutate: func(p *Platform) { p.Sha256 = zeros }, want: "sha256"},
		{name: "no platform", files: ok, pair: OSArch{"darwin", "arm64"}, want: "no platform"},
		{name: "bin missing", files: map[string]file{"LICENSE": {0o644, "l"}, "other": {0o755, "x"}},
			mutate: func(p *Platform) { p.Files = nil }, want: `bin "kubectl-shark" is not in the installed files`},
		{name: "bin not executable", files: map[string]file{"kubectl-shark": {0o644, "bin"}, "LICENSE": {0o644, "l"}}, want: "not executable"},
		{name: "from matches nothing", files: map[string]file{"kubectl-shark": {0o755, "bin"}}, want: `nothing in the archive matches "LICENSE"`},
		{name: "escaping entry", files: map[string]file{"../evil": {0o755, "x"}}, want: "leaves the archive"},
		{name: "absolute entry", files: map[string]file{"/etc/evil": {0o755, "x"}}, want: "leaves the archive"},
		{name: "symlink entry", files: ok, extra: []*tar.Header{{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, want: "not a file or directory"},
		{name: "to escapes", files: ok, mutate: func(p *Platform) { p.Files[0].To = "../.." }, want: "leaves the archive or the install directory"},
		{name: "to unclean", files: ok, mutate: func(p *Platform) { p.Files[0].To = "bin/" }, want: "not a clean path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tarGz(t, tt.files, tt.extra...)
			archive := writeArchive(t, data)
			p := good(t)
			p.Spec.Platforms[0].Sha256 = sum(data)
			if tt.mutate != nil {
				tt.mutate(&p.Spec.Platforms[0])
			}
			pair := tt.pair
			if pair == (OSArch{}) {
				pair = linuxAMD64
			}
			_, err := Install(p, archive, t.TempDir(), pair)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Install = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestExtractZip(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "dir/kubectl-shark.exe", Method: zip.Deflate}
	h.SetMode(0o755)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte("MZ"))
	zw.Close()
	archive := filepath.Join(t.TempDir(), "a.zip")
	os.WriteFile(archive, buf.Bytes(), 0o644)
	files, err := ArchiveFiles(archive)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]os.FileMode{"dir/kubectl-shark.exe": 0o755}, files); diff != "" {
		t.Errorf("zip files (-want +got):\n%s", diff)
	}
}

func TestVerifyArchives(t *testing.T) {
	dir := t.TempDir()
	linux := tarGz(t, map[string]file{"kubectl-shark": {0o755, "bin"}, "LICENSE": {0o644, "l"}})
	windows := tarGz(t, map[string]file{"kubectl-shark.exe": {0o755, "MZ"}}) // no LICENSE
	os.WriteFile(filepath.Join(dir, "kubectl-shark_v0.1.0_linux_amd64.tar.gz"), linux, 0o644)
	os.WriteFile(filepath.Join(dir, "kubectl-shark_v0.1.0_windows_amd64.tar.gz"), windows, 0o644)
	p := good(t)
	p.Spec.Platforms[0].Sha256 = sum(linux)
	p.Spec.Platforms[1].Sha256 = sum(windows)
	err := VerifyArchives(p, InDir(dir))
	if err == nil || !strings.Contains(err.Error(), "spec.platforms[1]") || !strings.Contains(err.Error(), "no LICENSE") ||
		strings.Contains(err.Error(), "spec.platforms[0]") {
		t.Errorf("VerifyArchives = %v, want exactly platform 1 without LICENSE", err)
	}
}

// FuzzExtract: no archive, however broken, panics or writes outside its
// directory.
func FuzzExtract(f *testing.F) {
	f.Add(tarGz(f, map[string]file{"kubectl-shark": {0o755, "bin"}, "LICENSE": {0o644, "l"}}))
	f.Add(tarGz(f, map[string]file{"../x": {0o644, "x"}}))
	f.Add([]byte("PK\x03\x04garbage"))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		archive := filepath.Join(base, "a")
		if err := os.WriteFile(archive, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(base, "out")
		Extract(archive, out)
		entries, _ := os.ReadDir(base)
		for _, e := range entries {
			if e.Name() != "a" && e.Name() != "out" {
				t.Fatalf("extract wrote %s outside its directory", e.Name())
			}
		}
	})
}
