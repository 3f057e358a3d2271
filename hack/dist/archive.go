package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// archiveFile is one file of a release archive.
type archiveFile struct {
	name string // path inside the archive
	src  string // file on disk
	mode int64
}

// writeTarGz writes a reproducible .tar.gz: entries sorted by name, owned by
// 0:0 with no user names, every time set to mtime, and a gzip header with
// neither a name nor a time.
func writeTarGz(path string, files []archiveFile, mtime time.Time) error {
	sorted := append([]archiveFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, f := range sorted {
		if err := addFile(tw, f, mtime); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes())
}

func addFile(tw *tar.Writer, f archiveFile, mtime time.Time) error {
	data, err := os.ReadFile(f.src)
	if err != nil {
		return err
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     f.name,
		Mode:     f.mode,
		Size:     int64(len(data)),
		ModTime:  mtime,
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, bytes.NewReader(data))
	return err
}
