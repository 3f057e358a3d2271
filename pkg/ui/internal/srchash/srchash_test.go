package srchash

import (
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSum checks what changes the hash: sources do, tests and outputs do not.
func TestSum(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "index.html", "<div id=root>")
	write(t, dir, "package.json", "{}")
	write(t, dir, "package-lock.json", "{}")
	write(t, dir, "tsconfig.json", "{}")
	write(t, dir, "vite.config.ts", "x")
	write(t, dir, "src/a.ts", "a")
	base, err := Sum(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, body string
		changes          bool
	}{
		{"a source", "src/a.ts", "b", true},
		{"a new source", "src/b/c.tsx", "c", true},
		{"the lock file", "package-lock.json", `{"x":1}`, true},
		{"a unit test", "src/a.test.ts", "t", false},
		{"the build", "dist/index.html", "x", false},
		{"the hash file", File, "x", false},
		{"node_modules", "node_modules/x/y.js", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.CopyFS(d, os.DirFS(dir)); err != nil {
				t.Fatal(err)
			}
			write(t, d, tc.file, tc.body)
			got, err := Sum(d)
			if err != nil {
				t.Fatal(err)
			}
			if (got != base) != tc.changes {
				t.Errorf("changing %s: hash changed = %v, want %v", tc.file, got != base, tc.changes)
			}
		})
	}
}
