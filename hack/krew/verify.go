package krew

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
)

// ArchiveResolver finds the local copy of a platform's archive.
type ArchiveResolver func(Platform) (string, error)

// InDir resolves a platform's archive to the file in dir named like the last
// element of its uri, so a release manifest can be checked against the
// archives of `make dist` before they are uploaded.
func InDir(dir string) ArchiveResolver {
	return func(p Platform) (string, error) {
		u, err := url.Parse(p.URI)
		if err != nil {
			return "", fmt.Errorf("uri %q: %w", p.URI, err)
		}
		name := path.Base(u.Path)
		if name == "." || name == "/" {
			return "", fmt.Errorf("uri %q names no file", p.URI)
		}
		return filepath.Join(dir, name), nil
	}
}

// VerifyArchives checks every platform against its archive: the sha256
// matches, LICENSE is at the top of the archive, and an install for each
// os/arch the platform selects succeeds and leaves an executable bin.
func VerifyArchives(p *Plugin, resolve ArchiveResolver) error {
	var errs []error
	for i, pl := range p.Spec.Platforms {
		if err := verifyPlatform(p, pl, resolve); err != nil {
			errs = append(errs, fmt.Errorf("spec.platforms[%d] (%s): %w", i, pl.URI, err))
		}
	}
	return errors.Join(errs...)
}

func verifyPlatform(p *Plugin, pl Platform, resolve ArchiveResolver) error {
	archive, err := resolve(pl)
	if err != nil {
		return err
	}
	files, err := ArchiveFiles(archive)
	if err != nil {
		return err
	}
	if _, ok := files["LICENSE"]; !ok {
		return fmt.Errorf("%s has no LICENSE at its top", filepath.Base(archive))
	}
	pairs := pl.Pairs()
	if len(pairs) == 0 {
		return errors.New("selects no supported os/arch")
	}
	for _, pair := range pairs {
		root, err := os.MkdirTemp("", "krew-root-")
		if err != nil {
			return err
		}
		_, err = Install(p, archive, root, pair)
		os.RemoveAll(root)
		if err != nil {
			return fmt.Errorf("install for %s: %w", pair, err)
		}
	}
	return nil
}
