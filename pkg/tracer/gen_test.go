package tracer

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGeneratedUpToDate compiles bpf/ again, with the go:generate line of
// gen.go, into a temporary directory and compares the result with the
// committed objects and bindings. hack/deps.sh installs clang, so this runs
// wherever `make test` does.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the BPF programs")
	}
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("clang is not installed (hack/deps.sh installs it): cannot check the generated BPF objects")
	}
	args := generateArgs(t)
	out := t.TempDir()
	for i, a := range args {
		if a == "-output-dir" {
			args[i+1] = out
		}
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=tracer")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, b)
	}
	files, err := filepath.Glob(filepath.Join(out, "tls_*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("bpf2go wrote nothing (%v)", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s is not committed: run make generate", name)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what bpf/ compiles to: run make generate and commit", name)
		}
	}
}

// generateArgs returns the arguments of gen.go's go:generate line after
// "go".
func generateArgs(t *testing.T) []string {
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go "); ok {
			return splitQuoted(rest)
		}
	}
	t.Fatal("gen.go has no go:generate line")
	return nil
}

// splitQuoted splits on spaces, keeping double-quoted words whole.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}
