// Package version holds the build's version, set by the Makefile through
// -ldflags "-X github.com/kubectl-shark/kubectl-shark/pkg/version.Version=v1.2.3".
package version

import "runtime/debug"

// Version is the release tag of this build ("dev" for local builds).
var Version = "dev"

// Commit returns the VCS revision the binary was built from, if recorded.
func Commit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
