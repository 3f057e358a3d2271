package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// epoch is the modification time of everything written: fixed, so that the same
// inputs always give the same layer digest.
var epoch = time.Unix(0, 0).UTC()

// tarLayer writes the entries as an uncompressed layer tarball, sorted by path, with
// every parent directory before its children and root as the owner.
func tarLayer(entries []entry) ([]byte, error) {
	all := withParents(entries)
	sort.Slice(all, func(i, j int) bool { return all[i].dst < all[j].dst })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range all {
		if err := writeEntry(tw, e); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.dst, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// withParents adds a 0755 directory entry for every parent that has none.
func withParents(entries []entry) []entry {
	have := make(map[string]bool, len(entries))
	for _, e := range entries {
		have[e.dst] = true
	}
	out := append([]entry(nil), entries...)
	for _, e := range entries {
		for dir := path.Dir(e.dst); dir != "/" && !have[dir]; dir = path.Dir(dir) {
			have[dir] = true
			out = append(out, entry{dst: dir, mode: 0o755, dir: true})
		}
	}
	return out
}

func writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{
		Name:    strings.TrimPrefix(e.dst, "/"),
		Mode:    tarMode(e.mode),
		ModTime: epoch,
		Uname:   "root",
		Gname:   "root",
		Format:  tar.FormatPAX,
	}
	if e.dir {
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag = tar.TypeReg
	if e.src == "" {
		hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = st.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	// CopyN: a file that grows while we read it must not overflow its header.
	_, err = io.CopyN(tw, f, hdr.Size)
	return err
}

// tarMode is the permission bits plus setuid, setgid and sticky in tar's encoding.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// writeOCIArchive writes img as an OCI image layout in a tarball, annotated with the
// names that `ctr images import` and other OCI tools read.
func writeOCIArchive(out string, tag name.Tag, img v1.Image) error {
	dir, err := os.MkdirTemp("", "hack-image-oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	err = lp.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          tag.Name(),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	}))
	if err != nil {
		return err
	}
	return tarDir(dir, out)
}

// writeIndexArchive writes a multi-platform index as an OCI image layout in a
// tarball (through a temporary file, as writeArchive does), annotated with
// the image's name like a single image.
func writeIndexArchive(out string, tag name.Tag, idx v1.ImageIndex) error {
	dir, err := os.MkdirTemp("", "hack-image-oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	err = lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          tag.Name(),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	}))
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarDir(dir, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", out, err)
	}
	return os.Rename(tmp, out)
}

// tarDir writes the regular files and directories below dir to a tarball at out,
// in a stable order and with fixed times.
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{dst: "/" + filepath.ToSlash(rel), mode: info.Mode().Perm(), dir: d.IsDir()}
		if !d.IsDir() {
			e.src = p
		}
		return writeEntry(tw, e)
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
