package main

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/kubectl-shark/kubectl-shark/hack/krew"
)

// renderManifest renders the .krew.yaml template the way krew-release-bot
// does, with the hashes of the archives just built, and writes shark.yaml.
func renderManifest(c *config, arts []artifact) (string, error) {
	src, err := os.ReadFile(c.template)
	if err != nil {
		return "", err
	}
	out, err := render(string(src), c.version, c.baseURL, arts)
	if err != nil && c.partial() {
		// A subset of the platforms (tests): the manifest lists those.
		out, err = renderPartial(string(src), c.version, c.baseURL, arts)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.template, err)
	}
	dst := filepath.Join(c.out, "shark.yaml")
	return dst, writeFileAtomic(dst, out)
}

// render executes a krew-release-bot template: {{ .TagName }} is the version,
// and addURIAndSha URL TAG renders URL (itself a template) and becomes the
// uri and sha256 lines of the archive the URL names. Every built archive must
// be named by the template, and every name must have been built.
func render(tmpl, version, baseURL string, arts []artifact) ([]byte, error) {
	byName := map[string]artifact{}
	for _, a := range arts {
		byName[a.name] = a
	}
	used := map[string]bool{}
	funcs := template.FuncMap{
		"addURIAndSha": func(url, tag string) (string, error) {
			u, err := execute("uri", url, tag, nil)
			if err != nil {
				return "", err
			}
			uri := string(u)
			name := path.Base(uri)
			a, ok := byName[name]
			if !ok {
				return "", fmt.Errorf("%s: no such archive was built", name)
			}
			used[name] = true
			if baseURL != "" {
				uri = baseURL + "/" + name
			}
			// The indent matches the template's: the call sits at the
			// platform item's key level. The quotes keep a hash of digits
			// (and at most one "e") a string in YAML.
			return fmt.Sprintf("uri: %s\n    sha256: %q", uri, a.sha256), nil
		},
	}
	out, err := execute("manifest", tmpl, version, funcs)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, a := range arts {
		if !used[a.name] {
			missing = append(missing, a.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("archives the template does not name: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// skipped marks the uri of a platform whose archive was not built.
const skipped = "not-built:"

// renderPartial renders the template like render, then leaves out the
// platform items whose archive was not built.
func renderPartial(tmpl, version, baseURL string, arts []artifact) ([]byte, error) {
	byName := map[string]artifact{}
	for _, a := range arts {
		byName[a.name] = a
	}
	funcs := template.FuncMap{
		"addURIAndSha": func(url, tag string) (string, error) {
			u, err := execute("uri", url, tag, nil)
			if err != nil {
				return "", err
			}
			name := path.Base(string(u))
			a, ok := byName[name]
			if !ok {
				return "uri: " + skipped + name, nil
			}
			uri := string(u)
			if baseURL != "" {
				uri = baseURL + "/" + name
			}
			return fmt.Sprintf("uri: %s\n    sha256: %q", uri, a.sha256), nil
		},
	}
	out, err := execute("manifest", tmpl, version, funcs)
	if err != nil {
		return nil, err
	}
	return dropSkippedPlatforms(out), nil
}

// dropSkippedPlatforms removes the items of spec.platforms ("  - " at the
// template's indent, and the deeper lines under them) that hold a skipped
// uri.
func dropSkippedPlatforms(out []byte) []byte {
	var b, item strings.Builder
	inItem := false
	flush := func() {
		if !strings.Contains(item.String(), skipped) {
			b.WriteString(item.String())
		}
		item.Reset()
	}
	for _, l := range strings.SplitAfter(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "  - "):
			flush()
			inItem = true
			item.WriteString(l)
		case inItem && strings.HasPrefix(l, "    "):
			item.WriteString(l)
		default:
			flush()
			inItem = false
			b.WriteString(l)
		}
	}
	flush()
	return []byte(b.String())
}

func execute(name, text, tag string, funcs template.FuncMap) ([]byte, error) {
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ TagName string }{tag}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// checkManifest holds the rendered manifest to krew's rules and installs
// every platform from the archives next to it, so that `make dist` never
// leaves a manifest krew would refuse.
func checkManifest(manifest, dir string) error {
	p, err := krew.ValidateFile(manifest)
	if err != nil {
		return err
	}
	return krew.VerifyArchives(p, krew.InDir(dir))
}
