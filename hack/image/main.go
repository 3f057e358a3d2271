// Command image builds a container image as a docker-archive or OCI-archive tarball,
// without Docker or a registry: one layer made of files from this machine (static Go
// binaries it builds itself, Debian binaries with the shared libraries ldd lists,
// plain files) plus an image config. `ctr images import` (hack/cluster load) reads
// the result. Builds are reproducible: the same inputs give the same digest.
//
//	go run ./hack/image -t localhost/shark/toolbox:dev -o toolbox.tar \
//	    --go ./hack/image/toolbox --entrypoint /toolbox
//	go run ./hack/image -t localhost/shark/redis:dev -o redis.tar \
//	    --add-binary /usr/bin/redis-server --entrypoint /usr/bin/redis-server
//	go run ./hack/image --pause -o pause.tar
//	go run ./hack/image -t ghcr.io/kubectl-shark/shark-agent:v0.1.0 --format oci \
//	    --platform linux/amd64,linux/arm64 -o agent.oci.tar --go ./cmd/shark-agent
//
// Several platforms make one OCI image index with an image per platform.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
)

// Defaults of --pause: the sandbox image that hack/cluster configures in containerd.
const (
	pausePkg = "github.com/kubectl-shark/kubectl-shark/hack/image/pause"
	pauseRef = "localhost/shark/pause:3.10"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	res, err := build(ctx, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s %s %s (%d files, %d bytes)\n",
		s.out, s.ref, platformList(s.platforms), res.digest, res.files, res.size)
	return nil
}

// spec is everything one image build needs, straight from the flags.
type spec struct {
	ref        string
	out        string
	format     string     // "docker" or "oci"
	platform   platform   // the one being built
	platforms  []platform // every one asked for; more than one makes an index
	goPkgs     []mapping  // Go packages to build static, to a path in the image
	files      []mapping  // host files or directories, copied as they are
	binaries   []mapping  // dynamically linked host binaries, with their libraries
	entrypoint []string
	cmd        []string
	env        []string
	labels     map[string]string
	workdir    string
	user       string
	baseFiles  bool // /etc/passwd, /etc/group, /etc/nsswitch.conf and /tmp
}

// mapping is one SRC[:DEST] argument: a host source and its absolute path in the image.
type mapping struct {
	src, dst string
}

func parseFlags(args []string, stderr io.Writer) (*spec, error) {
	s := &spec{labels: map[string]string{}}
	var plat string
	var pause bool
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.ref, "t", "", "image name:tag, e.g. localhost/shark/agent:dev (required unless --pause)")
	fs.StringVar(&s.out, "o", "", "output tarball (required)")
	fs.StringVar(&s.format, "format", "docker", "archive format: docker (docker save) or oci (OCI image layout)")
	fs.StringVar(&plat, "platform", "linux/"+runtime.GOARCH, "target platform: linux/amd64 or linux/arm64; a comma-separated list makes a multi-platform OCI index")
	fs.Func("go", "Go package to build static for the platform, as PKG[:/DEST] (default DEST /NAME); repeatable",
		appendMapping(&s.goPkgs, goDest))
	fs.Func("file", "host file or directory to copy, as SRC[:/DEST] (default DEST SRC); repeatable",
		appendMapping(&s.files, sameDest))
	fs.Func("add-binary", "dynamic host binary to copy with the libraries ldd lists, as SRC[:/DEST]; repeatable",
		appendMapping(&s.binaries, sameDest))
	fs.Func("entrypoint", "one argument of the entrypoint; repeat for more", appendString(&s.entrypoint))
	fs.Func("cmd", "one argument of the default command; repeat for more", appendString(&s.cmd))
	fs.Func("env", "KEY=VALUE of the environment; repeatable", appendString(&s.env))
	fs.Func("label", "KEY=VALUE image label; repeatable", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("label %q is not KEY=VALUE", v)
		}
		s.labels[k] = val
		return nil
	})
	fs.StringVar(&s.workdir, "workdir", "", "working directory")
	fs.StringVar(&s.user, "user", "", "user to run as, UID[:GID]")
	fs.BoolVar(&s.baseFiles, "base-files", true, "add /etc/passwd, /etc/group, /etc/nsswitch.conf and /tmp")
	fs.BoolVar(&pause, "pause", false, "build the pod sandbox (pause) image; -t defaults to "+pauseRef)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if pause {
		applyPause(s)
	}
	ps, err := parsePlatforms(plat)
	if err != nil {
		return nil, err
	}
	s.platforms, s.platform = ps, ps[0]
	return s, s.validate()
}

// applyPause fills in the pause image where the flags left it open.
func applyPause(s *spec) {
	if s.ref == "" {
		s.ref = pauseRef
	}
	s.goPkgs = append(s.goPkgs, mapping{src: pausePkg, dst: "/pause"})
	if len(s.entrypoint) == 0 {
		s.entrypoint = []string{"/pause"}
	}
	if s.user == "" {
		s.user = "65535:65535"
	}
}

func (s *spec) validate() error {
	var errs []error
	if s.ref == "" {
		errs = append(errs, errors.New("-t NAME:TAG is required"))
	}
	if s.out == "" {
		errs = append(errs, errors.New("-o OUTPUT is required"))
	}
	if s.format != "docker" && s.format != "oci" {
		errs = append(errs, fmt.Errorf("--format %q: want docker or oci", s.format))
	}
	if len(s.platforms) > 1 && s.format != "oci" {
		errs = append(errs, errors.New("several platforms make an image index: give --format oci"))
	}
	if len(s.goPkgs)+len(s.files)+len(s.binaries) == 0 {
		errs = append(errs, errors.New("nothing to put in the image: give --go, --file or --add-binary"))
	}
	for _, e := range s.env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("env %q is not KEY=VALUE", e))
		}
	}
	return errors.Join(errs...)
}

func appendString(dst *[]string) func(string) error {
	return func(v string) error {
		*dst = append(*dst, v)
		return nil
	}
}

// appendMapping parses SRC[:DEST]; defaultDest gives DEST when it is left out.
func appendMapping(dst *[]mapping, defaultDest func(string) string) func(string) error {
	return func(v string) error {
		src, dest, ok := strings.Cut(v, ":")
		if !ok {
			dest = defaultDest(src)
		}
		if src == "" {
			return fmt.Errorf("%q: empty source", v)
		}
		if !strings.HasPrefix(dest, "/") {
			return fmt.Errorf("%q: destination %q must be an absolute path", v, dest)
		}
		*dst = append(*dst, mapping{src: src, dst: cleanPath(dest)})
		return nil
	}
}

// sameDest keeps a host file at its own absolute path in the image.
func sameDest(src string) string {
	if abs, err := absPath(src); err == nil {
		return abs
	}
	return src
}

// goDest puts a built Go binary at /NAME, NAME being the package's last element.
func goDest(pkg string) string {
	pkg = strings.TrimRight(pkg, "/")
	return "/" + pkg[strings.LastIndex(pkg, "/")+1:]
}

// platform is an image's OS and architecture.
type platform struct {
	os, arch string
}

func (p platform) String() string { return p.os + "/" + p.arch }

// parsePlatforms reads a comma-separated list of distinct platforms.
func parsePlatforms(s string) ([]platform, error) {
	var out []platform
	for _, item := range strings.Split(s, ",") {
		p, err := parsePlatform(strings.TrimSpace(item))
		if err != nil {
			return nil, err
		}
		for _, q := range out {
			if q == p {
				return nil, fmt.Errorf("--platform %q: %s twice", s, p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func platformList(ps []platform) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.String()
	}
	return strings.Join(names, ",")
}

func parsePlatform(s string) (platform, error) {
	osName, arch, ok := strings.Cut(s, "/")
	if !ok || osName != "linux" || (arch != "amd64" && arch != "arm64") {
		return platform{}, fmt.Errorf("--platform %q: want linux/amd64 or linux/arm64", s)
	}
	return platform{os: osName, arch: arch}, nil
}
