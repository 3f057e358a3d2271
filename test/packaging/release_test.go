package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	yaml "sigs.k8s.io/yaml/goyaml.v3"

	"github.com/kubectl-shark/kubectl-shark/pkg/session"
)

// workflow is the part of a GitHub Actions workflow the test reads. It is
// read as YAML 1.2 (goyaml.v3), where the key "on" is a string, as GitHub
// reads it, not the boolean of YAML 1.1.
type workflow struct {
	On struct {
		Push struct {
			Tags []string `yaml:"tags"`
		} `yaml:"push"`
	} `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]struct {
		Steps []struct {
			Name string `yaml:"name"`
			Uses string `yaml:"uses"`
			Run  string `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestReleaseWorkflow: the release workflow runs on version tags, tests and
// builds through the Makefile targets that exist, pushes the agent image the
// plugin of that tag defaults to (with the crane of go.mod's
// go-containerregistry) before it publishes anything, and hands over to
// krew-release-bot.
func TestReleaseWorkflow(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repo, ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	if len(w.On.Push.Tags) != 1 || w.On.Push.Tags[0] != "v*.*.*" {
		t.Errorf("runs on tags %q, want v*.*.*", w.On.Push.Tags)
	}
	if w.Permissions["contents"] != "write" || w.Permissions["packages"] != "write" {
		t.Errorf("permissions %v: releases and packages need write", w.Permissions)
	}
	if want := session.ImageRepository + ":${{ github.ref_name }}"; w.Env["AGENT_IMAGE"] != want {
		t.Errorf("AGENT_IMAGE = %q, want %q: the plugin of a tag defaults to that image", w.Env["AGENT_IMAGE"], want)
	}
	if want := "github.com/google/go-containerregistry/cmd/crane@" + goModVersion(t, "github.com/google/go-containerregistry"); !strings.Contains(w.Env["CRANE"], want) {
		t.Errorf("CRANE = %q, want %s (go.mod's version)", w.Env["CRANE"], want)
	}
	job, ok := w.Jobs["release"]
	if !ok {
		t.Fatal("no release job")
	}
	var order []string
	for _, s := range job.Steps {
		for _, target := range regexp.MustCompile(`\bmake ([a-z-]+)`).FindAllStringSubmatch(s.Run, -1) {
			if !makeTargets(t)[target[1]] {
				t.Errorf("step %q runs make %s, which the Makefile lacks", s.Name, target[1])
			}
		}
		switch {
		case strings.Contains(s.Run, "make test-packaging"):
			order = append(order, "test")
		case strings.Contains(s.Run, "make image IMAGE=${{ env.AGENT_IMAGE }}"):
			order = append(order, "image")
		case strings.Contains(s.Run, `$CRANE push dist/agent-layout "$AGENT_IMAGE"`):
			order = append(order, "push")
		case strings.Contains(s.Run, "gh release create"):
			order = append(order, "release")
		case strings.HasPrefix(s.Uses, "rajatjindal/krew-release-bot@"):
			order = append(order, "krew")
		}
	}
	if got, want := strings.Join(order, ","), "test,image,push,release,krew"; got != want {
		t.Errorf("steps in order %s, want %s", got, want)
	}
}

func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):`).FindAllStringSubmatch(string(data), -1) {
		targets[m[1]] = true
	}
	return targets
}

func goModVersion(t *testing.T, module string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + ` (v\S+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("go.mod does not require %s", module)
	}
	return m[1]
}
