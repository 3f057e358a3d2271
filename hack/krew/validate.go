package krew

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

var (
	safeName = regexp.MustCompile(`^[\w-]+$`)
	sha256Re = regexp.MustCompile(`^[a-f0-9]{64}$`)
	// semverRe is semver.org's grammar with krew's required "v" prefix:
	// numeric identifiers without leading zeros, dot-separated pre-release
	// and build identifiers of [0-9A-Za-z-].
	semverRe = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

	// windowsReserved names cannot be files on Windows, so krew refuses them.
	windowsReserved = []string{"CON", "PRN", "AUX", "NUL",
		"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
		"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9"}
)

// OSArch is one platform krew installs on.
type OSArch struct{ OS, Arch string }

func (p OSArch) String() string { return p.OS + "/" + p.Arch }

// SupportedPlatforms are the os/arch pairs krew runs on (krew's releases).
var SupportedPlatforms = []OSArch{
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"linux", "386"}, {"linux", "amd64"}, {"linux", "arm"}, {"linux", "arm64"},
	{"linux", "ppc64le"}, {"linux", "s390x"},
	{"windows", "386"}, {"windows", "amd64"}, {"windows", "arm64"},
}

// Line-length limits of cmd/validate-krew-manifest (krew only warns).
const (
	maxShortDescription = 70
	maxLine             = 80
)

// IsSafeName reports whether name may name a plugin.
func IsSafeName(name string) bool {
	if !safeName.MatchString(name) {
		return false
	}
	for _, r := range windowsReserved {
		if strings.EqualFold(r, name) {
			return false
		}
	}
	return true
}

// IsSemver reports whether v is a semantic version with the "v" prefix.
func IsSemver(v string) bool { return semverRe.MatchString(v) }

// ValidateFile reads the manifest at path and validates it under the name
// its file gives (krew's index wants shark.yaml for the plugin shark).
func ValidateFile(path string) (*Plugin, error) {
	base := filepath.Base(path)
	if filepath.Ext(base) != ".yaml" {
		return nil, fmt.Errorf("%s: manifest file must end in .yaml", path)
	}
	p, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := Validate(strings.TrimSuffix(base, ".yaml"), p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Validate checks p against every structural rule of krew's validator,
// expecting the plugin to be called name. It reports every problem, not
// only the first.
func Validate(name string, p *Plugin) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.APIVersion != APIVersion {
		add("apiVersion %q, want %q", p.APIVersion, APIVersion)
	}
	if p.Kind != Kind {
		add("kind %q, want %q", p.Kind, Kind)
	}
	if !IsSafeName(name) {
		add("plugin name %q must match %s and not be a reserved Windows name", name, safeName)
	}
	if p.Metadata.Name != name {
		add("metadata.name %q, want %q (the file name)", p.Metadata.Name, name)
	}
	s := p.Spec
	switch {
	case s.ShortDescription == "":
		add("spec.shortDescription is empty")
	case strings.ContainsAny(s.ShortDescription, "\r\n"):
		add("spec.shortDescription has a line break")
	}
	if !IsSemver(s.Version) {
		add("spec.version %q is not a semantic version with a v prefix", s.Version)
	}
	if len(s.Platforms) == 0 {
		add("spec.platforms is empty")
	}
	for i, pl := range s.Platforms {
		if err := validatePlatform(pl); err != nil {
			add("spec.platforms[%d]: %w", i, err)
		}
	}
	if err := checkCoverage(s.Platforms); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Warnings lists what cmd/validate-krew-manifest warns about: long lines.
func Warnings(p *Plugin) []string {
	var w []string
	for _, f := range []struct {
		field, text string
		max         int
	}{
		{"shortDescription", p.Spec.ShortDescription, maxShortDescription},
		{"description", p.Spec.Description, maxLine},
		{"caveats", p.Spec.Caveats, maxLine},
	} {
		for _, line := range strings.Split(f.text, "\n") {
			// A single long word (a URL) is allowed, as in krew.
			if len(line) > f.max && strings.Contains(strings.TrimSpace(line), " ") {
				w = append(w, fmt.Sprintf("spec.%s: line longer than %d characters: %q", f.field, f.max, line))
			}
		}
	}
	return w
}

func validatePlatform(p Platform) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.URI == "" {
		add("uri is empty")
	}
	if !sha256Re.MatchString(p.Sha256) {
		add("sha256 %q is not 64 lowercase hex digits", p.Sha256)
	}
	if p.Bin == "" {
		add("bin is empty")
	}
	if p.Files != nil && len(p.Files) == 0 {
		add("files must be left out or be non-empty")
	}
	for j, f := range p.Files {
		if f.From == "" || f.To == "" {
			add("files[%d]: from and to must both be set", j)
		}
	}
	if err := validateSelector(p.Selector); err != nil {
		add("selector: %w", err)
	}
	return errors.Join(errs...)
}

func validateSelector(sel *metav1.LabelSelector) error {
	if sel == nil {
		return errors.New("missing")
	}
	if sel.MatchLabels != nil && len(sel.MatchLabels) == 0 {
		return errors.New("matchLabels is given but empty")
	}
	if sel.MatchExpressions != nil && len(sel.MatchExpressions) == 0 {
		return errors.New("matchExpressions is given but empty")
	}
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return errors.New("empty")
	}
	for k := range sel.MatchLabels {
		if k != "os" && k != "arch" {
			return fmt.Errorf("key %q: only os and arch are supported", k)
		}
	}
	for _, e := range sel.MatchExpressions {
		if e.Key != "os" && e.Key != "arch" {
			return fmt.Errorf("key %q: only os and arch are supported", e.Key)
		}
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		return err
	}
	return nil
}

// Matches reports whether the platform's selector selects os/arch.
func (p Platform) Matches(pair OSArch) bool {
	if p.Selector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(p.Selector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set{"os": pair.OS, "arch": pair.Arch})
}

// Pairs returns the supported os/arch pairs the platform selects.
func (p Platform) Pairs() []OSArch {
	var out []OSArch
	for _, pair := range SupportedPlatforms {
		if p.Matches(pair) {
			out = append(out, pair)
		}
	}
	return out
}

// checkCoverage: every platform selects at least one real os/arch pair, and
// no pair is selected by two platforms.
func checkCoverage(platforms []Platform) error {
	var errs []error
	for i, p := range platforms {
		if p.Selector != nil && len(p.Pairs()) == 0 {
			errs = append(errs, fmt.Errorf("spec.platforms[%d]: selector matches no supported os/arch", i))
		}
	}
	for _, pair := range SupportedPlatforms {
		var idx []int
		for i, p := range platforms {
			if p.Matches(pair) {
				idx = append(idx, i)
			}
		}
		if len(idx) > 1 {
			errs = append(errs, fmt.Errorf("spec.platforms %v overlap: all select %s", idx, pair))
		}
	}
	return errors.Join(errs...)
}

// Select returns the platform that serves os/arch, as krew picks it.
func (p *Plugin) Select(pair OSArch) (Platform, bool) {
	for _, pl := range p.Spec.Platforms {
		if pl.Matches(pair) {
			return pl, true
		}
	}
	return Platform{}, false
}
