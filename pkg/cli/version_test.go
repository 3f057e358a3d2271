package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/session"
	"github.com/kubectl-shark/kubectl-shark/pkg/version"
)

func withVersion(t *testing.T, v string) {
	t.Helper()
	old := version.Version
	version.Version = v
	t.Cleanup(func() { version.Version = old })
}

func TestVersionReport(t *testing.T) {
	withVersion(t, "v0.2.0")
	clientLine := fmt.Sprintf("kubectl-shark v0.2.0 (%s/%s, %s)\n", runtime.GOOS, runtime.GOARCH, runtime.Version())
	finished := hubPod("shark-old", "old111", session.ImageRepository+":v0.0.1")
	finished.Status.Phase = corev1.PodFailed
	tests := []struct {
		name       string
		objs       []k8sruntime.Object
		forbidAll  bool
		wantOut    string
		wantErrOut string
	}{
		{
			name:    "no session",
			objs:    []k8sruntime.Object{pod("shop", "front", nil)},
			wantOut: "agent: no session running (new sessions use " + session.ImageRepository + ":v0.2.0)\n",
		},
		{
			name: "matching and skewed sessions",
			objs: []k8sruntime.Object{
				hubPod("shark-bbb222", "bbb222", session.ImageRepository+":v0.1.0"),
				hubPod("shark-aaa111", "aaa111", session.ImageRepository+":v0.2.0"),
				finished,
				pod("shark-aaa111", "shark-worker-node-1", session.Labels("aaa111", session.ComponentWorker)),
			},
			wantOut: "agent v0.2.0: session aaa111 (pod shark-aaa111/shark-hub, image ghcr.io/kubectl-shark/shark-agent:v0.2.0)\n" +
				"agent v0.1.0: session bbb222 (pod shark-bbb222/shark-hub, image ghcr.io/kubectl-shark/shark-agent:v0.1.0)\n",
			wantErrOut: "warning: session bbb222 runs agent v0.1.0 but this plugin is v0.2.0: end it with `kubectl shark clean` and start a new one\n",
		},
		{
			name:      "cluster-wide listing forbidden: the context's namespace",
			objs:      []k8sruntime.Object{hubPod("shop", "ccc333", "registry.local/agent:v0.2.0@sha256:abcd"), hubPod("other", "ddd444", "x:v9")},
			forbidAll: true,
			wantOut:   "agent v0.2.0: session ccc333 (pod shop/shark-hub, image registry.local/agent:v0.2.0@sha256:abcd)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(tt.objs...)
			if tt.forbidAll {
				cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
					if a.GetNamespace() == metav1.NamespaceAll {
						return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no"))
					}
					return false, nil, nil
				})
			}
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			o := NewVersionOptions(genericclioptions.NewConfigFlags(false), streams)
			o.client, o.namespace = cs, "shop"
			if err := o.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(clientLine+tt.wantOut, out.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErrOut, errOut.String()); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVersionWithoutCluster(t *testing.T) {
	withVersion(t, "v0.2.0")
	tests := []struct {
		name       string
		client     bool
		kubeconfig string
		wantNote   string
	}{
		{name: "--client", client: true},
		{name: "no kubeconfig", kubeconfig: "/nonexistent/kubeconfig", wantNote: "note: no cluster to ask for sessions ("},
		{name: "unreachable", kubeconfig: writeKubeconfig(t), wantNote: "note: could not look for running sessions: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags := genericclioptions.NewConfigFlags(false)
			flags.KubeConfig = &tt.kubeconfig
			streams, _, out, errOut := genericiooptions.NewTestIOStreams()
			o := NewVersionOptions(flags, streams)
			o.Client = tt.client
			o.Complete()
			if err := o.Run(context.Background()); err != nil {
				t.Fatalf("Run = %v, want no error without a cluster", err)
			}
			if !strings.HasPrefix(out.String(), "kubectl-shark v0.2.0 (") || strings.Count(out.String(), "\n") != 1 {
				t.Errorf("stdout = %q, want the plugin's version line only", out.String())
			}
			note := errOut.String()
			if tt.wantNote == "" && note != "" || !strings.HasPrefix(note, tt.wantNote) || strings.Count(note, "\n") > 1 {
				t.Errorf("stderr = %q, want one line starting %q", note, tt.wantNote)
			}
		})
	}
}

func TestImageTag(t *testing.T) {
	for ref, want := range map[string]string{
		"ghcr.io/kubectl-shark/shark-agent:v0.1.0":             "v0.1.0",
		"localhost:5000/shark/agent:dev":                       "dev",
		"localhost:5000/shark/agent":                           "latest",
		"agent@sha256:0123":                                    "sha256:0123",
		"ghcr.io/kubectl-shark/shark-agent:v0.1.0@sha256:0123": "v0.1.0",
	} {
		if got := imageTag(ref); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", ref, got, want)
		}
	}
}

// A session's agent image follows the plugin's version, and --image of
// tap, pcap and ui overrides it.
func TestAgentImage(t *testing.T) {
	withVersion(t, "v1.2.3")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "ghcr.io/kubectl-shark/shark-agent:v1.2.3"},
		{[]string{"--image", "localhost/shark/agent:dev"}, "localhost/shark/agent:dev"},
	} {
		f := newSessionFlags()
		fs := pflag.NewFlagSet("tap", pflag.ContinueOnError)
		f.add(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		o, err := f.options()
		if err != nil {
			t.Fatal(err)
		}
		if o.Image != tt.want {
			t.Errorf("%q: image %q, want %q", tt.args, o.Image, tt.want)
		}
	}
}
