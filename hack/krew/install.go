package krew

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxArchiveFile bounds every file unpacked, so that a broken archive cannot
// fill the disk.
const maxArchiveFile = 512 << 20

// Installed says where Install put a plugin.
type Installed struct {
	Dir  string // root/store/NAME/VERSION
	Bin  string // the executable inside Dir
	Link string // root/bin/kubectl-NAME, a symlink to Bin
}

// Install does what `kubectl krew install --manifest=M --archive=A` does for
// the os/arch pair: pick the platform, check the archive's sha256, unpack it,
// move `files` into root/store/NAME/VERSION, and link `bin` as
// root/bin/kubectl-NAME.
func Install(p *Plugin, archive, root string, pair OSArch) (*Installed, error) {
	pl, ok := p.Select(pair)
	if !ok {
		return nil, fmt.Errorf("no platform of %s selects %s", p.Metadata.Name, pair)
	}
	sum, err := FileSHA256(archive)
	if err != nil {
		return nil, err
	}
	if sum != pl.Sha256 {
		return nil, fmt.Errorf("%s: sha256 %s, the manifest says %s", archive, sum, pl.Sha256)
	}
	staging, err := os.MkdirTemp("", "krew-staging-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)
	if err := Extract(archive, staging); err != nil {
		return nil, err
	}
	in := &Installed{Dir: filepath.Join(root, "store", p.Metadata.Name, p.Spec.Version)}
	if err := moveAll(staging, in.Dir, pl.Files); err != nil {
		return nil, err
	}
	if in.Bin, err = binPath(in.Dir, pl.Bin, pair); err != nil {
		return nil, err
	}
	in.Link = filepath.Join(root, "bin", "kubectl-"+p.Metadata.Name)
	if pair.OS == "windows" {
		in.Link += ".exe"
	}
	if err := os.MkdirAll(filepath.Dir(in.Link), 0o755); err != nil {
		return nil, err
	}
	os.Remove(in.Link) // reinstall replaces the link, as krew does
	if err := os.Symlink(in.Bin, in.Link); err != nil {
		return nil, err
	}
	return in, nil
}

// binPath checks that bin names an executable file inside dir.
func binPath(dir, bin string, pair OSArch) (string, error) {
	p := filepath.Join(dir, filepath.FromSlash(bin))
	if !isSubPath(dir, p) {
		return "", fmt.Errorf("bin %q is outside the install directory", bin)
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("bin %q is not in the installed files: %w", bin, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("bin %q is not a regular file", bin)
	}
	if pair.OS != "windows" && st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("bin %q is not executable (mode %v)", bin, st.Mode().Perm())
	}
	return p, nil
}

// moveAll applies the file operations from the unpacked archive to the
// install directory; no operations moves everything.
func moveAll(from, to string, ops []FileOperation) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	if ops == nil {
		ops = []FileOperation{{From: "*", To: "."}}
	}
	for _, op := range ops {
		moves, err := moveTargets(from, to, op)
		if err != nil {
			return fmt.Errorf("files %+v: %w", op, err)
		}
		for _, m := range moves {
			if err := os.MkdirAll(filepath.Dir(m[1]), 0o755); err != nil {
				return err
			}
			if err := os.Rename(m[0], m[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// moveTargets resolves one operation as krew does: a From naming one file
// moves that file (to To/NAME, or to To itself when To is not "."); otherwise
// From is a glob and every match goes into the directory To.
func moveTargets(from, to string, op FileOperation) ([][2]string, error) {
	if op.To != filepath.Clean(op.To) {
		return nil, fmt.Errorf("to %q is not a clean path", op.To)
	}
	src := filepath.Join(from, filepath.FromSlash(op.From))
	if st, err := os.Stat(src); err == nil && !st.IsDir() {
		dst := filepath.Join(to, filepath.FromSlash(op.To))
		if op.To == "." {
			dst = filepath.Join(to, filepath.Base(src))
		}
		if !isSubPath(from, src) || !isSubPath(to, dst) {
			return nil, fmt.Errorf("%q -> %q leaves the archive or the install directory", op.From, op.To)
		}
		return [][2]string{{src, dst}}, nil
	}
	matches, err := filepath.Glob(src)
	if err != nil {
		return nil, err
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("nothing in the archive matches %q", op.From)
	}
	dir := filepath.Join(to, filepath.FromSlash(op.To))
	var moves [][2]string
	for _, m := range matches {
		dst := filepath.Join(dir, filepath.Base(m))
		if !isSubPath(from, m) || !isSubPath(to, dst) {
			return nil, fmt.Errorf("%q -> %q leaves the archive or the install directory", m, dst)
		}
		moves = append(moves, [2]string{m, dst})
	}
	return moves, nil
}

func isSubPath(base, p string) bool {
	rel, err := filepath.Rel(base, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// FileSHA256 returns the hex sha256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Extract unpacks a .tar.gz or .zip archive (told apart by content, as krew
// does) into dir. Only regular files and directories are accepted, and no
// entry may leave dir.
func Extract(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return extractTarGz(br, dir)
	case bytes.Equal(magic, []byte("PK\x03\x04")):
		st, err := f.Stat()
		if err != nil {
			return err
		}
		return extractZip(f, st.Size(), dir)
	}
	return fmt.Errorf("%s: neither a .tar.gz nor a .zip archive", archive)
}

func extractTarGz(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if _, err := safeJoin(dir, h.Name); err != nil {
				return err
			}
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("archive entry %q: type %q is not a file or directory", h.Name, h.Typeflag)
		}
		if err := writeFile(dir, h.Name, h.FileInfo().Mode().Perm(), h.Size, tr); err != nil {
			return err
		}
	}
}

func extractZip(r io.ReaderAt, size int64, dir string) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		if !f.Mode().IsRegular() {
			return fmt.Errorf("archive entry %q is not a regular file", f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		err = writeFile(dir, f.Name, f.Mode().Perm(), int64(f.UncompressedSize64), rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func writeFile(dir, name string, perm os.FileMode, size int64, r io.Reader) error {
	if size < 0 || size > maxArchiveFile {
		return fmt.Errorf("archive entry %q: size %d over the %d limit", name, size, maxArchiveFile)
	}
	p, err := safeJoin(dir, name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(r, size))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("archive entry %q: %d of %d bytes", name, n, size)
	}
	return err
}

// safeJoin joins an archive path to dir, refusing absolute and escaping ones.
func safeJoin(dir, name string) (string, error) {
	clean := path.Clean("/" + strings.ReplaceAll(name, "\\", "/"))
	if name == "" || path.IsAbs(name) || strings.Contains("/"+name+"/", "/../") {
		return "", fmt.Errorf("archive entry %q leaves the archive", name)
	}
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

// ArchiveFiles lists the regular files of a .tar.gz or .zip archive, with
// their permission bits.
func ArchiveFiles(archive string) (map[string]os.FileMode, error) {
	dir, err := os.MkdirTemp("", "krew-list-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := Extract(archive, dir); err != nil {
		return nil, err
	}
	files := map[string]os.FileMode{}
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = info.Mode().Perm()
		return err
	})
	return files, err
}
