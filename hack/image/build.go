package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// result describes a written image.
type result struct {
	digest string
	files  int
	size   int64
}

// defaultPath is the PATH of an image whose --env sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func build(ctx context.Context, s *spec) (*result, error) {
	tag, err := name.NewTag(s.ref)
	if err != nil {
		return nil, fmt.Errorf("-t %q: %w", s.ref, err)
	}
	tmp, err := os.MkdirTemp("", "hack-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var imgs []v1.Image
	files := 0
	for i, p := range s.platforms {
		one := *s
		one.platform = p
		img, n, err := buildImage(ctx, &one, filepath.Join(tmp, fmt.Sprint(i)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		imgs, files = append(imgs, img), files+n
	}
	if len(imgs) == 1 {
		if err := writeArchive(s.out, s.format, tag, imgs[0]); err != nil {
			return nil, err
		}
		return describe(s.out, imgs[0], files)
	}
	idx, err := index(s.platforms, imgs)
	if err != nil {
		return nil, err
	}
	if err := writeIndexArchive(s.out, tag, idx); err != nil {
		return nil, err
	}
	return describe(s.out, idx, files)
}

// buildImage builds the image of s.platform; Go binaries are built in tmp.
func buildImage(ctx context.Context, s *spec, tmp string) (v1.Image, int, error) {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, 0, err
	}
	entries, err := collect(ctx, s, tmp)
	if err != nil {
		return nil, 0, err
	}
	layerTar, err := tarLayer(entries)
	if err != nil {
		return nil, 0, err
	}
	img, err := assemble(s, layerTar)
	return img, len(entries), err
}

// index makes an OCI image index of one image per platform.
func index(ps []platform, imgs []v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range imgs {
		p := &v1.Platform{OS: ps[i].os, Architecture: ps[i].arch}
		if ps[i].arch == "arm64" {
			p.Variant = "v8"
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: p},
		})
	}
	return idx, nil
}

// assemble makes a one-layer image with the spec's config.
func assemble(s *spec, layerTar []byte) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(base, configFile(s))
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{CreatedBy: "kubectl-shark hack/image", Comment: "files from the build machine"},
	})
}

// configFile is the image config. Its times stay zero so that builds are reproducible.
func configFile(s *spec) *v1.ConfigFile {
	env := s.env
	if !hasKey(env, "PATH") {
		env = append([]string{defaultPath}, env...)
	}
	var labels map[string]string
	if len(s.labels) > 0 {
		labels = s.labels
	}
	cf := &v1.ConfigFile{
		Architecture: s.platform.arch,
		OS:           s.platform.os,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: s.entrypoint,
			Cmd:        s.cmd,
			Env:        env,
			WorkingDir: s.workdir,
			User:       s.user,
			Labels:     labels,
		},
	}
	if s.platform.arch == "arm64" {
		cf.Variant = "v8"
	}
	return cf
}

func hasKey(env []string, key string) bool {
	for _, e := range env {
		if len(e) > len(key) && e[:len(key)] == key && e[len(key)] == '=' {
			return true
		}
	}
	return false
}

// writeArchive writes img to path through a temporary file, so that a failed build
// never leaves a truncated tarball where hack/cluster load would pick it up.
func writeArchive(path, format string, tag name.Tag, img v1.Image) error {
	tmp := path + ".tmp"
	var err error
	switch format {
	case "oci":
		err = writeOCIArchive(tmp, tag, img)
	default:
		err = tarball.WriteToFile(tmp, tag, img)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// digester is an image or an index.
type digester interface{ Digest() (v1.Hash, error) }

func describe(path string, img digester, files int) (*result, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &result{digest: digest.String(), files: files, size: st.Size()}, nil
}
