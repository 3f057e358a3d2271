// Package ui embeds the dashboard: a React + TypeScript app (the sources
// are beside this file, under src/) built by Vite into dist/. The hub
// serves it at / (hub.Options.Dashboard).
//
// dist/ is committed, so that `go build` needs no npm; `make ui` rebuilds
// it from the sources and records their hash in dist.sha256, and a test
// fails when the sources changed since.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed all:dist
var dist embed.FS

// FS returns the built dashboard: index.html and assets/.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path, fixed at compile time
	}
	return sub
}

// Files returns the built dashboard for hub.Options.Dashboard.
func Files() http.FileSystem { return http.FS(FS()) }
