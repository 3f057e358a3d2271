// Package krew reads krew plugin manifests, checks them against the rules of
// krew's validator (internal/index/validation and cmd/validate-krew-manifest),
// and installs a plugin the way `kubectl krew install --manifest --archive`
// does. The krew module cannot be fetched here, so these are our own
// implementations of its documented behaviour.
package krew

import (
	"errors"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind are the only ones krew accepts.
const (
	APIVersion = "krew.googlecontainertools.github.com/v1alpha2"
	Kind       = "Plugin"
)

// Plugin is a krew plugin manifest.
type Plugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec PluginSpec `json:"spec"`
}

// PluginSpec is the body of a manifest.
type PluginSpec struct {
	Version          string     `json:"version"`
	ShortDescription string     `json:"shortDescription"`
	Description      string     `json:"description,omitempty"`
	Caveats          string     `json:"caveats,omitempty"`
	Homepage         string     `json:"homepage,omitempty"`
	Platforms        []Platform `json:"platforms"`
}

// Platform is one installable archive and the os/arch pairs it serves.
type Platform struct {
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	URI      string                `json:"uri"`
	Sha256   string                `json:"sha256"`
	Files    []FileOperation       `json:"files"`
	Bin      string                `json:"bin"`
}

// FileOperation moves what matches the glob From (inside the archive) to the
// directory To (inside the install directory).
type FileOperation struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Parse decodes a manifest strictly: an unknown field is an error, as in krew.
func Parse(data []byte) (*Plugin, error) {
	if len(data) == 0 {
		return nil, errors.New("empty manifest")
	}
	var p Plugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	return &p, nil
}

// ReadFile reads and decodes the manifest at path.
func ReadFile(path string) (*Plugin, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
