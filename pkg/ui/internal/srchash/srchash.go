// Package srchash hashes the dashboard's sources: what `make ui` builds
// dist/ from. The hash is recorded beside dist/ at build time, and a test
// compares it with the sources, so that a stale dist/ fails the build.
package srchash

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// File is where the hash of the sources dist/ was built from is kept,
// relative to the app's directory.
const File = "dist.sha256"

// inputs are the files and directories the build reads.
var inputs = []string{"index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "src", "public"}

// source says whether a file under src/ is built into dist (tests are not).
func source(name string) bool {
	base := path.Base(name)
	return !strings.Contains(base, ".test.") && !strings.HasPrefix(base, ".")
}

// Sum returns the hex SHA-256 of the sources under dir: each file's path
// and contents, in path order. Line endings are taken as they are.
func Sum(dir string) (string, error) {
	fsys := os.DirFS(dir)
	var names []string
	for _, in := range inputs {
		err := fs.WalkDir(fsys, in, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && source(p) {
				names = append(names, p)
			}
			return nil
		})
		if err != nil && !(in == "public" && os.IsNotExist(err)) {
			return "", err
		}
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return "", err
		}
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(hex.EncodeToString(sha256sum(b))))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sha256sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
