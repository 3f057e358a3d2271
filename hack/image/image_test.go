package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParseLdd(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []string
		wantErr string
	}{{
		name: "debian redis-server",
		out: "\tlinux-vdso.so.1 (0x00007ffc8a5e9000)\n" +
			"\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f2b1c5a0000)\n" +
			"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2b1c3bf000)\n" +
			"\t/lib64/ld-linux-x86-64.so.2 (0x00007f2b1c6f1000)\n",
		want: []string{"/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"},
	}, {
		name: "arm64 loader",
		out:  "\tlinux-vdso.so.1 (0x0000ffff8)\n\tlibc.so.6 => /lib/aarch64-linux-gnu/libc.so.6 (0x0000ffff7)\n\t/lib/ld-linux-aarch64.so.1 (0x0000ffff9)\n",
		want: []string{"/lib/aarch64-linux-gnu/libc.so.6", "/lib/ld-linux-aarch64.so.1"},
	}, {
		name:    "missing library",
		out:     "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n",
		wantErr: "libraries not found: libfoo.so.1",
	}, {
		name: "static",
		out:  "\tstatically linked\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLdd([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseLdd() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseLdd() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    *spec
		wantErr string
	}{{
		name: "pause defaults",
		args: []string{"--pause", "-o", "p.tar", "--platform", "linux/arm64"},
		want: &spec{
			ref: pauseRef, out: "p.tar", format: "docker", platform: platform{"linux", "arm64"},
			platforms: []platform{{"linux", "arm64"}},
			goPkgs:    []mapping{{pausePkg, "/pause"}}, entrypoint: []string{"/pause"},
			user: "65535:65535", labels: map[string]string{}, baseFiles: true,
		},
	}, {
		name: "every kind of source",
		args: []string{"-t", "localhost/a:b", "-o", "a.tar", "--format", "oci",
			"--go", "./cmd/x", "--go", "./cmd/y:/bin/why", "--file", "rel/conf", "--file", "/etc/hosts:/x/hosts",
			"--add-binary", "/usr/bin/redis-server", "--entrypoint", "/x", "--entrypoint", "-v",
			"--cmd", "serve", "--env", "A=1", "--label", "k=v", "--user", "65532", "--workdir", "/w",
			"--base-files=false"},
		want: &spec{
			ref: "localhost/a:b", out: "a.tar", format: "oci", platform: platform{"linux", runtime.GOARCH},
			platforms:  []platform{{"linux", runtime.GOARCH}},
			goPkgs:     []mapping{{"./cmd/x", "/x"}, {"./cmd/y", "/bin/why"}},
			files:      []mapping{{"rel/conf", filepath.ToSlash(filepath.Join(wd, "rel/conf"))}, {"/etc/hosts", "/x/hosts"}},
			binaries:   []mapping{{"/usr/bin/redis-server", "/usr/bin/redis-server"}},
			entrypoint: []string{"/x", "-v"}, cmd: []string{"serve"}, env: []string{"A=1"},
			labels: map[string]string{"k": "v"}, user: "65532", workdir: "/w",
		},
	}, {
		name:    "missing name, output and content",
		args:    nil,
		wantErr: "-t NAME:TAG is required\n-o OUTPUT is required\nnothing to put in the image",
	}, {
		name:    "bad platform",
		args:    []string{"--pause", "-o", "x", "--platform", "windows/amd64"},
		wantErr: `--platform "windows/amd64": want linux/amd64 or linux/arm64`,
	}, {
		name:    "an index needs OCI",
		args:    []string{"--pause", "-o", "x", "--platform", "linux/amd64,linux/arm64"},
		wantErr: "several platforms make an image index: give --format oci",
	}, {
		name:    "platform twice",
		args:    []string{"--pause", "-o", "x", "--format", "oci", "--platform", "linux/amd64,linux/amd64"},
		wantErr: "linux/amd64 twice",
	}, {
		name:    "relative destination",
		args:    []string{"--file", "a:b"},
		wantErr: `destination "b" must be an absolute path`,
	}, {
		name:    "bad env",
		args:    []string{"--pause", "-o", "x", "--env", "NOVALUE"},
		wantErr: `env "NOVALUE" is not KEY=VALUE`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(spec{}, mapping{}, platform{})); diff != "" {
				t.Errorf("parseFlags() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// tarFile is what the tests compare of one tar member.
type tarFile struct {
	Name string
	Mode int64
	Type byte
	Data string
}

func readTar(t *testing.T, r io.Reader) []tarFile {
	t.Helper()
	var out []tarFile
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(epoch) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want epoch and root", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarFile{hdr.Name, hdr.Mode, hdr.Typeflag, string(data)})
	}
}

func TestTarLayer(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(src, []byte("#!bin"), 0o750); err != nil {
		t.Fatal(err)
	}
	got, err := tarLayer([]entry{
		{dst: "/usr/local/bin/tool", src: src, mode: 0o750},
		{dst: "/etc/conf", data: []byte("a=1\n"), mode: 0o644},
		{dst: "/tmp", dir: true, mode: fs.ModeSticky | 0o777},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []tarFile{
		{"etc/", 0o755, tar.TypeDir, ""},
		{"etc/conf", 0o644, tar.TypeReg, "a=1\n"},
		{"tmp/", 0o1777, tar.TypeDir, ""},
		{"usr/", 0o755, tar.TypeDir, ""},
		{"usr/local/", 0o755, tar.TypeDir, ""},
		{"usr/local/bin/", 0o755, tar.TypeDir, ""},
		{"usr/local/bin/tool", 0o750, tar.TypeReg, "#!bin"},
	}
	if diff := cmp.Diff(want, readTar(t, bytes.NewReader(got))); diff != "" {
		t.Errorf("tarLayer() mismatch (-want +got):\n%s", diff)
	}
}

func TestEntrySetConflict(t *testing.T) {
	set := newEntrySet()
	set.add(entry{dst: "/lib/libc.so.6", src: "/lib/x86_64-linux-gnu/libc.so.6"})
	set.add(entry{dst: "/lib/libc.so.6", src: "/lib/x86_64-linux-gnu/libc.so.6"}) // shared: fine
	set.add(entry{dst: "/lib/libc.so.6", src: "/other/libc.so.6"})
	if _, err := set.list(); err == nil || !strings.Contains(err.Error(), "added twice") {
		t.Fatalf("list() error = %v, want a conflict", err)
	}
}

// buildPause builds the pause image into dir and returns the archive's path.
func buildPause(t *testing.T, dir, format, arch string) string {
	t.Helper()
	out := filepath.Join(dir, "pause-"+format+"-"+arch+".tar")
	args := []string{"--pause", "-o", out, "--format", format, "--platform", "linux/" + arch,
		"--label", "org.opencontainers.image.source=hack/image"}
	if err := run(context.Background(), args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildPauseDockerArchive(t *testing.T) {
	dir := t.TempDir()
	out := buildPause(t, dir, "docker", "amd64")
	tag, err := name.NewTag(pauseRef)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := v1.Config{
		Entrypoint: []string{"/pause"},
		Env:        []string{defaultPath},
		User:       "65535:65535",
		Labels:     map[string]string{"org.opencontainers.image.source": "hack/image"},
	}
	if diff := cmp.Diff(wantCfg, cf.Config); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
	if cf.Architecture != "amd64" || cf.OS != "linux" {
		t.Errorf("platform = %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	names := layerNames(t, img)
	want := []string{"etc/", "etc/group", "etc/nsswitch.conf", "etc/passwd", "pause", "tmp/"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("layer files mismatch (-want +got):\n%s", diff)
	}

	// The same inputs give the same image.
	again := buildPause(t, t.TempDir(), "docker", "amd64")
	img2, err := tarball.ImageFromPath(again, &tag)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same inputs: digests %s and %s", d1, d2)
	}
}

func TestBuildOCIArchiveArm64(t *testing.T) {
	dir := t.TempDir()
	out := buildPause(t, dir, "oci", "arm64")
	extracted := filepath.Join(dir, "layout")
	if err := os.Mkdir(extracted, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("tar", "-xf", out, "-C", extracted).Run(); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(extracted)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(im.Manifests))
	}
	wantAnn := map[string]string{
		"io.containerd.image.name":          pauseRef,
		"org.opencontainers.image.ref.name": "3.10",
	}
	if diff := cmp.Diff(wantAnn, im.Manifests[0].Annotations); diff != "" {
		t.Errorf("annotations mismatch (-want +got):\n%s", diff)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("architecture = %s/%s, want arm64/v8", cf.Architecture, cf.Variant)
	}
}

func TestAddBinaryWithLibraries(t *testing.T) {
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("ldd is not installed")
	}
	bin, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls binary")
	}
	bin, _ = filepath.EvalSymlinks(bin)
	if dynamic, err := checkELF(bin, runtime.GOARCH); err != nil || !dynamic {
		t.Skipf("%s is not a dynamic ELF binary for %s (%v)", bin, runtime.GOARCH, err)
	}
	set := newEntrySet()
	p := platform{"linux", runtime.GOARCH}
	if err := addBinary(context.Background(), set, mapping{bin, "/bin/ls"}, p); err != nil {
		t.Fatal(err)
	}
	entries, err := set.list()
	if err != nil {
		t.Fatal(err)
	}
	var hasLibc, hasLoader bool
	for _, e := range entries {
		base := filepath.Base(e.dst)
		hasLibc = hasLibc || strings.HasPrefix(base, "libc.so")
		hasLoader = hasLoader || strings.HasPrefix(base, "ld-linux")
	}
	if !hasLibc || !hasLoader || len(entries) < 3 {
		t.Errorf("entries of %s = %v, want the binary, libc and the loader", bin, entries)
	}
}

func TestCheckELFWrongArch(t *testing.T) {
	dir := t.TempDir()
	bin, err := goBuild(context.Background(), pausePkg, platform{"linux", "arm64"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkELF(bin, "amd64"); err == nil || !strings.Contains(err.Error(), "EM_AARCH64") {
		t.Errorf("checkELF(arm64 binary, amd64) error = %v, want an architecture mismatch", err)
	}
	if _, err := checkELF("/etc/hostname", "amd64"); err == nil {
		t.Error("checkELF(text file) succeeded, want an error")
	}
}

func layerNames(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	for _, f := range readTar(t, rc) {
		names = append(names, f.Name)
	}
	return names
}

// FuzzParseLdd checks that no ldd output makes the parser panic, and that it only
// ever returns absolute paths.
func FuzzParseLdd(f *testing.F) {
	f.Add("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n\t/lib64/ld-linux-x86-64.so.2 (0x2)\n")
	f.Add("\tlibfoo.so => not found\n")
	f.Add("=>\n (\n/")
	f.Fuzz(func(t *testing.T, out string) {
		libs, err := parseLdd([]byte(out))
		if err != nil {
			return
		}
		for _, l := range libs {
			if !strings.HasPrefix(l, "/") {
				t.Fatalf("parseLdd returned relative path %q", l)
			}
		}
	})
}

// TestBuildMultiPlatformIndex: two platforms make one OCI index whose
// manifests carry their platforms and point at images of that architecture.
func TestBuildMultiPlatformIndex(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "pause.oci.tar")
	args := []string{"--pause", "-o", out, "--format", "oci", "--platform", "linux/amd64,linux/arm64"}
	if err := run(context.Background(), args, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	extracted := filepath.Join(dir, "layout")
	if err := os.Mkdir(extracted, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("tar", "-xf", out, "-C", extracted).Run(); err != nil {
		t.Fatal(err)
	}
	top, err := layout.ImageIndexFromPath(extracted)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["io.containerd.image.name"] != pauseRef {
		t.Fatalf("layout index = %+v, want one named index", tm.Manifests)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Platform.OS+"/"+m.Platform.Architecture+"/"+m.Platform.Variant+" "+cf.Architecture)
	}
	if diff := cmp.Diff([]string{"linux/amd64/ amd64", "linux/arm64/v8 arm64"}, got); diff != "" {
		t.Errorf("index manifests (-want +got):\n%s", diff)
	}
}
