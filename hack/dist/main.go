// Command dist builds the release archives of the plugin: one .tar.gz per
// platform holding kubectl-shark (kubectl-shark.exe on Windows), LICENSE and
// kubectl_complete-shark, a sha256sums.txt, and shark.yaml, the krew manifest
// rendered from .krew.yaml with the archives' real hashes. The same source,
// Go toolchain, version and -mtime give byte-identical archives.
//
//	go run ./hack/dist -version v0.1.0 -o dist
//	go run ./hack/dist -version v0.1.0 -base-url file://$PWD/dist
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

const module = "github.com/kubectl-shark/kubectl-shark"

// partial reports whether c builds fewer platforms than a release.
func (c *config) partial() bool { return len(c.platforms) < len(defaultPlatforms) }

// defaultPlatforms are the platforms of the krew manifest.
var defaultPlatforms = []string{
	"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

// config is everything one dist run needs, straight from the flags.
type config struct {
	version   string // krew-valid semantic version, v-prefixed
	out       string
	template  string
	baseURL   string // when set, uris are BASE/ARCHIVE instead of the template's
	license   string
	complete  string
	pkg       string
	platforms []platform
	mtime     time.Time
}

type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "/" + p.arch }

// exe is the plugin's file name on the platform.
func (p platform) exe() string {
	if p.os == "windows" {
		return "kubectl-shark.exe"
	}
	return "kubectl-shark"
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	arts, err := buildAll(ctx, c, stdout)
	if err != nil {
		return err
	}
	if err := writeSums(c.out, arts); err != nil {
		return err
	}
	manifest, err := renderManifest(c, arts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s/shark.yaml: krew manifest %s, %d platforms\n", c.out, c.version, len(arts))
	return checkManifest(manifest, c.out)
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	var version, plats, mtime string
	fs := flag.NewFlagSet("dist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&version, "version", "dev", "release version; anything but vX.Y.Z[-pre] becomes v0.0.0-dev-<it>")
	fs.StringVar(&c.out, "o", "dist", "output directory")
	fs.StringVar(&c.template, "template", ".krew.yaml", "krew manifest template (krew-release-bot's .krew.yaml)")
	fs.StringVar(&c.baseURL, "base-url", "", "URL the archives are served from (e.g. file:///abs/dist); default: the template's release URLs")
	fs.StringVar(&c.license, "license", "LICENSE", "license file shipped in every archive")
	fs.StringVar(&c.complete, "complete", "hack/dist/kubectl_complete-shark", "kubectl plugin completion script shipped in every archive")
	fs.StringVar(&c.pkg, "pkg", "./cmd/kubectl-shark", "Go package of the plugin")
	fs.StringVar(&plats, "platforms", strings.Join(defaultPlatforms, ","), "comma-separated GOOS/GOARCH list")
	fs.StringVar(&mtime, "mtime", os.Getenv("SOURCE_DATE_EPOCH"), "Unix time of every archived file (default $SOURCE_DATE_EPOCH, else 0)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.version = releaseVersion(version)
	var errs []error
	for _, p := range strings.Split(plats, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || goos == "" || goarch == "" {
			errs = append(errs, fmt.Errorf("-platforms: %q is not GOOS/GOARCH", p))
			continue
		}
		c.platforms = append(c.platforms, platform{goos, goarch})
	}
	secs := int64(0)
	if mtime != "" {
		n, err := strconv.ParseInt(mtime, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("-mtime %q: want Unix seconds", mtime))
		}
		secs = n
	}
	c.mtime = time.Unix(secs, 0).UTC()
	c.baseURL = strings.TrimRight(c.baseURL, "/")
	return c, errors.Join(errs...)
}
