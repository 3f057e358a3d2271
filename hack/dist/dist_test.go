package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/hack/krew"
)

func TestReleaseVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v0.1.0":                  "v0.1.0",
		"v0.1.0-3-gabc1234":       "v0.1.0-3-gabc1234",
		"0.2.0":                   "v0.2.0",
		"dev":                     "v0.0.0-dev",
		"":                        "v0.0.0-dev",
		"0b82d14-dirty":           "v0.0.0-dev-0b82d14-dirty",
		"0123456":                 "v0.0.0-dev-0123456",
		"feature/x.y_z":           "v0.0.0-dev-feature-x-y-z",
		"v0.1.0-3-gabc1234-dirty": "v0.1.0-3-gabc1234-dirty",
	} {
		got := releaseVersion(in)
		if got != want {
			t.Errorf("releaseVersion(%q) = %q, want %q", in, got, want)
		}
		if !krew.IsSemver(got) {
			t.Errorf("releaseVersion(%q) = %q is not a krew version", in, got)
		}
	}
}

// TestTarGzReproducible: the same files give the same bytes whatever their
// order, times or owners on disk; the archive holds what was asked.
func TestTarGzReproducible(t *testing.T) {
	dir := t.TempDir()
	bin, lic := filepath.Join(dir, "bin"), filepath.Join(dir, "LICENSE")
	os.WriteFile(bin, []byte("\x7fELF binary"), 0o700)
	os.WriteFile(lic, []byte("Apache-2.0"), 0o600)
	files := []archiveFile{{name: "kubectl-shark", src: bin, mode: 0o755}, {name: "LICENSE", src: lic, mode: 0o644}}
	mtime := time.Unix(1700000000, 0)
	a, b := filepath.Join(dir, "a.tar.gz"), filepath.Join(dir, "b.tar.gz")
	if err := writeTarGz(a, files, mtime); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(bin, time.Now(), time.Now())
	if err := writeTarGz(b, []archiveFile{files[1], files[0]}, mtime); err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Error("two builds of the same files differ")
	}
	got, err := krew.ArchiveFiles(a)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]os.FileMode{"LICENSE": 0o644, "kubectl-shark": 0o755}, got); diff != "" {
		t.Errorf("archive files (-want +got):\n%s", diff)
	}
	if err := writeTarGz(b, files, mtime.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if db, _ = os.ReadFile(b); bytes.Equal(da, db) {
		t.Error("-mtime does not reach the archive")
	}
}

const testTemplate = `spec:
  version: {{ .TagName }}
  platforms:
  - selector:
      matchLabels: {os: linux, arch: amd64}
    {{addURIAndSha "https://github.com/o/r/releases/download/{{ .TagName }}/kubectl-shark_{{ .TagName }}_linux_amd64.tar.gz" .TagName }}
    bin: kubectl-shark
`

func TestRender(t *testing.T) {
	arts := []artifact{{name: "kubectl-shark_v1.0.0_linux_amd64.tar.gz", sha256: strings.Repeat("ab", 32)}}
	tests := []struct {
		name, base string
		arts       []artifact
		wantURI    string
		wantErr    string
	}{
		{name: "release URL", arts: arts, wantURI: "https://github.com/o/r/releases/download/v1.0.0/kubectl-shark_v1.0.0_linux_amd64.tar.gz"},
		{name: "local base", base: "file:///tmp/dist", arts: arts, wantURI: "file:///tmp/dist/kubectl-shark_v1.0.0_linux_amd64.tar.gz"},
		{name: "archive not built", wantErr: "no such archive was built"},
		{name: "archive not named", arts: append(arts, artifact{name: "kubectl-shark_v1.0.0_plan9_amd64.tar.gz"}),
			wantErr: "archives the template does not name: kubectl-shark_v1.0.0_plan9_amd64.tar.gz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := render(testTemplate, "v1.0.0", tt.base, tt.arts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("render = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := "spec:\n  version: v1.0.0\n  platforms:\n  - selector:\n      matchLabels: {os: linux, arch: amd64}\n" +
				"    uri: " + tt.wantURI + "\n    sha256: \"" + strings.Repeat("ab", 32) + "\"\n    bin: kubectl-shark\n"
			if diff := cmp.Diff(want, string(out)); diff != "" {
				t.Errorf("render (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKrewTemplateNamesEveryPlatform: .krew.yaml names exactly the archives
// of the default platforms, so `make dist` can render it.
func TestKrewTemplateNamesEveryPlatform(t *testing.T) {
	src, err := os.ReadFile("../../.krew.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var arts []artifact
	for _, p := range defaultPlatforms {
		goos, goarch, _ := strings.Cut(p, "/")
		arts = append(arts, artifact{name: archiveName("v9.8.7", platform{goos, goarch}), sha256: strings.Repeat("0", 64)})
	}
	out, err := render(string(src), "v9.8.7", "", arts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := krew.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := krew.Validate("shark", p); err != nil {
		t.Errorf("rendered .krew.yaml: %v", err)
	}
	if w := krew.Warnings(p); len(w) > 0 {
		t.Errorf("rendered .krew.yaml: %q", w)
	}
	for _, p := range p.Spec.Platforms {
		if pairs := p.Pairs(); len(pairs) != 1 {
			t.Errorf("%s selects %v, want one os/arch", p.URI, pairs)
		} else if want := archiveName("v9.8.7", platform{pairs[0].OS, pairs[0].Arch}); !strings.HasSuffix(p.URI, "/"+want) {
			t.Errorf("the %s platform downloads %s, want %s", pairs[0], p.URI, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-version", "v1.0.0", "-platforms", "linux/amd64,windows/arm64", "-mtime", "1700000000", "-base-url", "file:///x/"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]platform{{"linux", "amd64"}, {"windows", "arm64"}}, c.platforms, cmp.AllowUnexported(platform{})); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	if c.mtime.Unix() != 1700000000 || c.baseURL != "file:///x" || c.version != "v1.0.0" {
		t.Errorf("config %+v", c)
	}
	for _, bad := range [][]string{{"-platforms", "linux"}, {"-mtime", "yesterday"}, {"extra"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}
