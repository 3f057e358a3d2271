// Package packaging tests what `make dist` ships as a user meets it: the
// krew manifests against krew's rules, the archives against the manifest,
// and an install the way `kubectl krew install --manifest --archive` does it,
// run through kubectl's own plugin discovery.
//
// The archives come from $SHARK_DIST (`make test` points it at a fresh
// `make dist`); without it the test runs hack/dist into a temporary directory.
package packaging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"text/template"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/hack/krew"
)

var (
	repo string // the checkout
	dist string // the directory with the archives and shark.yaml
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	var err error
	if repo, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		return 0, err
	}
	if dist = os.Getenv("SHARK_DIST"); dist != "" {
		return m.Run(), nil
	}
	tmp, err := os.MkdirTemp("", "shark-dist-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	dist = tmp
	cmd := exec.Command("go", "run", "./hack/dist", "-version", "v0.0.0-packaging-test", "-o", dist)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("hack/dist: %v\n%s", err, out)
	}
	return m.Run(), nil
}

func releaseManifest(t *testing.T) *krew.Plugin {
	t.Helper()
	p, err := krew.ValidateFile(filepath.Join(dist, "shark.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReleaseManifest holds dist/shark.yaml to krew's validator rules and
// every archive to its entry: the hash, LICENSE, the files, bin.
func TestReleaseManifest(t *testing.T) {
	p := releaseManifest(t)
	if w := krew.Warnings(p); len(w) > 0 {
		t.Errorf("krew would warn: %q", w)
	}
	if err := krew.VerifyArchives(p, krew.InDir(dist)); err != nil {
		t.Error(err)
	}
	// make test builds a subset of the platforms to save time: the
	// manifest must list exactly the archives built.
	// sha256sums.txt names the archives of this build (older ones may lie
	// next to them).
	sums, err := os.ReadFile(filepath.Join(dist, "sha256sums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		f := strings.Fields(line)
		parts := strings.Split(strings.TrimSuffix(f[len(f)-1], ".tar.gz"), "_")
		want = append(want, parts[len(parts)-2]+"/"+parts[len(parts)-1])
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, platformPairs(p)); diff != "" || len(want) == 0 {
		t.Errorf("platforms (-archives +manifest):\n%s", diff)
	}
	if !strings.Contains(p.Spec.Description, "privileged pods") {
		t.Error("the description does not say that privileged pods are created")
	}
}

// TestArchives: each archive holds exactly the plugin, LICENSE and the
// completion helper, executable where they must be, and sha256sums.txt
// lists every archive with its real hash.
func TestArchives(t *testing.T) {
	p := releaseManifest(t)
	sums, err := os.ReadFile(filepath.Join(dist, "sha256sums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var wantSums []string
	for _, pl := range p.Spec.Platforms {
		archive, err := krew.InDir(dist)(pl)
		if err != nil {
			t.Fatal(err)
		}
		files, err := krew.ArchiveFiles(archive)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]os.FileMode{pl.Bin: 0o755, "LICENSE": 0o644, "kubectl_complete-shark": 0o755}
		if diff := cmp.Diff(want, files); diff != "" {
			t.Errorf("%s (-want +got):\n%s", filepath.Base(archive), diff)
		}
		if pl.Pairs()[0].OS == "windows" != strings.HasSuffix(pl.Bin, ".exe") {
			t.Errorf("%s: bin %q", filepath.Base(archive), pl.Bin)
		}
		wantSums = append(wantSums, pl.Sha256+"  "+filepath.Base(archive))
	}
	sort.Slice(wantSums, func(i, j int) bool { return wantSums[i][66:] < wantSums[j][66:] })
	if diff := cmp.Diff(strings.Join(wantSums, "\n")+"\n", string(sums)); diff != "" {
		t.Errorf("sha256sums.txt (-want +got):\n%s", diff)
	}
}

// TestPluginYAML: plugin.yaml passes krew's rules and is .krew.yaml rendered
// at its version, differing only in the hashes. Those belong to the release's
// archives (`make plugin-yaml VERSION=vX.Y.Z` on the tagged commit; the
// release also publishes that file as shark.yaml), which the archives of
// this checkout cannot match: their times are the last commit's.
func TestPluginYAML(t *testing.T) {
	path := filepath.Join(repo, "plugin.yaml")
	p, err := krew.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := krew.Validate("shark", p); err != nil {
		t.Fatal(err)
	}
	if w := krew.Warnings(p); len(w) > 0 {
		t.Errorf("krew would warn: %q", w)
	}
	all := []string{"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64", "windows/amd64", "windows/arm64"}
	if diff := cmp.Diff(all, platformPairs(p)); diff != "" {
		t.Errorf("plugin.yaml platforms (-want +got):\n%s", diff)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := renderTemplate(t, p)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("plugin.yaml drifted from .krew.yaml (-rendered +plugin.yaml):\n%s", diff)
	}
}

// renderTemplate renders .krew.yaml the way krew-release-bot does, at the
// version of p, taking each archive's hash from p.
func renderTemplate(t *testing.T, p *krew.Plugin) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repo, ".krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sha := map[string]string{}
	for _, pl := range p.Spec.Platforms {
		sha[pl.URI] = pl.Sha256
	}
	data := struct{ TagName string }{p.Spec.Version}
	funcs := template.FuncMap{"addURIAndSha": func(url, tag string) (string, error) {
		var b bytes.Buffer
		if err := template.Must(template.New("uri").Parse(url)).Execute(&b, struct{ TagName string }{tag}); err != nil {
			return "", err
		}
		return fmt.Sprintf("uri: %s\n    sha256: %q", b.String(), sha[b.String()]), nil
	}}
	var out bytes.Buffer
	if err := template.Must(template.New(".krew.yaml").Funcs(funcs).Parse(string(src))).Execute(&out, data); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestKrewInstall installs the archive of this machine as krew would, then
// uses it only through kubectl: plugin discovery, `kubectl shark version`,
// and `kubectl shark <TAB>` through kubectl_complete-shark.
func TestKrewInstall(t *testing.T) {
	p := releaseManifest(t)
	host := krew.OSArch{OS: runtime.GOOS, Arch: runtime.GOARCH}
	pl, ok := p.Select(host)
	if !ok {
		t.Fatalf("no platform for %s", host)
	}
	archive, err := krew.InDir(dist)(pl)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	in, err := krew.Install(p, archive, root, host)
	if err != nil {
		t.Fatal(err)
	}
	// What the caveats tell users to do for completion.
	bin := filepath.Dir(in.Link)
	helper, err := os.ReadFile(filepath.Join(in.Dir, "kubectl_complete-shark"))
	if err != nil {
		t.Fatalf("the install lacks the completion helper: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "kubectl_complete-shark"), helper, 0o755); err != nil {
		t.Fatal(err)
	}
	k := kubectl{bin: findKubectl(t), path: bin + string(os.PathListSeparator) + "/usr/bin:/bin", home: t.TempDir()}

	out, _ := k.run(t, 0, "plugin", "list")
	if !strings.Contains(out, in.Link) {
		t.Errorf("kubectl plugin list does not show %s:\n%s", in.Link, out)
	}
	out, _ = k.run(t, 0, "shark", "version", "--client")
	if want := "kubectl-shark " + p.Spec.Version + " ("; !strings.HasPrefix(out, want) {
		t.Errorf("kubectl shark version --client = %q, want it to start %q", out, want)
	}
	// No cluster: the client version, one note, exit 0.
	out, errOut := k.run(t, 0, "shark", "version")
	if !strings.HasPrefix(out, "kubectl-shark "+p.Spec.Version) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.HasPrefix(errOut, "note: ") {
		t.Errorf("kubectl shark version without a cluster: stdout %q, stderr %q", out, errOut)
	}
	out, _ = k.run(t, 0, "__complete", "shark", "")
	for _, want := range []string{"tap\t", "pcap\t", "ui\t", "clean\t", "version\t"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl shark <TAB> lacks %q:\n%s", strings.TrimSpace(want), out)
		}
	}
	out, _ = k.run(t, 0, "__complete", "shark", "version", "--cl")
	if !strings.Contains(out, "--client") {
		t.Errorf("kubectl shark version --cl<TAB> lacks --client:\n%s", out)
	}
}

// kubectl runs a kubectl with only the temporary bin directory (and the
// system's) on PATH, and no kubeconfig.
type kubectl struct{ bin, path, home string }

func (k kubectl) run(t *testing.T, wantCode int, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(k.bin, args...)
	cmd.Env = []string{"PATH=" + k.path, "HOME=" + k.home, "KUBECONFIG=" + filepath.Join(k.home, "no-kubeconfig")}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != wantCode {
		t.Fatalf("kubectl %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// findKubectl prefers $KUBECTL, then the kubectl that hack/cluster built
// (the cluster's own version), then the one on PATH.
func findKubectl(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("KUBECTL"); k != "" {
		return k
	}
	built, _ := filepath.Glob(filepath.Join(repo, ".cache", "k8s", "*", "kubectl"))
	sort.Strings(built)
	if len(built) > 0 {
		return built[len(built)-1]
	}
	k, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("no kubectl: set $KUBECTL, run hack/cluster build, or install one")
	}
	return k
}

// platformPairs lists a manifest's os/arch pairs, sorted.
func platformPairs(p *krew.Plugin) []string {
	var got []string
	for _, pl := range p.Spec.Platforms {
		for _, pair := range pl.Pairs() {
			got = append(got, pair.String())
		}
	}
	sort.Strings(got)
	return got
}
