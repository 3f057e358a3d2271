package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/session"
)

const testKubeconfig = `apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: kind-dev
  cluster: {server: "https://127.0.0.1:1"}
- name: prod-eu
  cluster: {server: "https://127.0.0.1:2"}
users:
- name: alice
  user: {token: "t1"}
- name: bob
  user: {token: "t2"}
contexts:
- name: dev
  context: {cluster: kind-dev, user: alice, namespace: shop}
- name: prod
  context: {cluster: prod-eu, user: bob}
- name: prod-admin
  context: {cluster: prod-eu, user: alice}
`

func writeKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func hubPod(ns, id, image string) *corev1.Pod {
	p := pod(ns, "shark-hub", session.Labels(id, session.ComponentHub))
	p.Spec.Containers = []corev1.Container{{Name: "hub", Image: image}}
	p.Status.Phase = corev1.PodRunning
	return p
}

func clusterObjects() []runtime.Object {
	return []runtime.Object{
		namespace("shop"), namespace("shark-abc123"), namespace("kube-system"), namespace("payments"),
		pod("shop", "front-7d9f", map[string]string{"app": "front"}),
		pod("shop", "front-8e0a", map[string]string{"app": "front"}),
		pod("shop", "cart-1b2c", map[string]string{"app": "cart"}),
		pod("payments", "ledger-0", map[string]string{"app": "ledger"}),
		pod("payments", "front-pay", map[string]string{"app": "front"}),
		pod("kube-system", "coredns-x", nil),
		hubPod("shark-abc123", "abc123", session.ImageRepository+":v0.1.0"),
	}
}

// completionRoot is the command tree of the plugin with a completer that
// talks to client instead of a cluster.
func completionRoot(t *testing.T, client kubernetes.Interface, clientErr error) *cobra.Command {
	t.Helper()
	kubeconfig := writeKubeconfig(t)
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig = &kubeconfig
	root := &cobra.Command{Use: "kubectl-shark", SilenceErrors: true, SilenceUsage: true}
	flags.AddFlags(root.PersistentFlags())
	for _, name := range []string{"tap", "pcap", "ui", "clean"} {
		sub := &cobra.Command{Use: name, Run: func(*cobra.Command, []string) {}}
		if name != "clean" {
			(&sessionFlags{}).add(sub.Flags())
		}
		root.AddCommand(sub)
	}
	c := newCompleter(flags)
	c.client = func() (kubernetes.Interface, error) { return client, clientErr }
	c.register(root)
	return root
}

// complete runs `kubectl-shark __complete ARGS...` and returns the
// suggestions and the directive line.
func complete(t *testing.T, root *cobra.Command, args ...string) ([]string, string) {
	t.Helper()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{cobra.ShellCompRequestCmd}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("__complete %q: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	directive := lines[len(lines)-1]
	var got []string
	for _, l := range lines[:len(lines)-1] {
		if l != "" && !strings.HasPrefix(l, "Completion ended") {
			got = append(got, l)
		}
	}
	return got, directive
}

const noFile = ":4" // cobra.ShellCompDirectiveNoFileComp

func TestCompletions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"pods of the context's namespace", []string{"tap", ""}, []string{"cart-1b2c", "front-7d9f", "front-8e0a"}},
		{"pods by prefix", []string{"tap", "fr"}, []string{"front-7d9f", "front-8e0a"}},
		{"pods of -n", []string{"pcap", "-n", "payments", ""}, []string{"front-pay", "ledger-0"}},
		{"pods of a namespace list", []string{"ui", "-n", "shop,payments", "front"},
			[]string{"front-7d9f\tnamespace shop", "front-8e0a\tnamespace shop", "front-pay\tnamespace payments"}},
		{"pods of every namespace, not ours", []string{"tap", "-A", "c"},
			[]string{"cart-1b2c\tnamespace shop", "coredns-x\tnamespace kube-system"}},
		{"pods with -l", []string{"tap", "-A", "-l", "app=front", ""},
			[]string{"front-7d9f\tnamespace shop", "front-8e0a\tnamespace shop", "front-pay\tnamespace payments"}},
		{"one regex only", []string{"tap", "front", ""}, nil},
		{"namespaces", []string{"tap", "-n", ""}, []string{"kube-system", "payments", "shark-abc123", "shop"}},
		{"namespaces by prefix", []string{"tap", "--namespace", "sh"}, []string{"shark-abc123", "shop"}},
		{"last namespace of a list", []string{"pcap", "-n", "shop,pa"}, []string{"shop,payments"}},
		{"shark namespace", []string{"tap", "--shark-namespace", "p"}, []string{"payments"}},
		{"contexts", []string{"tap", "--context", ""}, []string{"dev", "prod", "prod-admin"}},
		{"contexts by prefix", []string{"clean", "--context", "pr"}, []string{"prod", "prod-admin"}},
		{"clusters", []string{"tap", "--cluster", ""}, []string{"kind-dev", "prod-eu"}},
		{"users", []string{"tap", "--user", "b"}, []string{"bob"}},
		{"sessions", []string{"pcap", "--session", ""}, []string{"abc123\tagent v0.1.0 in shark-abc123"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := completionRoot(t, fake.NewClientset(clusterObjects()...), nil)
			got, directive := complete(t, root, tt.args...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("__complete %q (-want +got):\n%s", tt.args, diff)
			}
			if directive != noFile {
				t.Errorf("directive %q, want %q (no file names)", directive, noFile)
			}
		})
	}
}

func TestCompletionWithoutCluster(t *testing.T) {
	root := completionRoot(t, nil, errors.New("no route to host"))
	for _, args := range [][]string{{"tap", ""}, {"tap", "--session", ""}} {
		if got, directive := complete(t, root, args...); len(got) != 0 || directive != noFile {
			t.Errorf("__complete %q = %q %s, want nothing and no file names", args, got, directive)
		}
	}
	// Contexts need no cluster; namespaces fall back to the context's.
	if got, _ := complete(t, root, "tap", "--context", "d"); !cmp.Equal(got, []string{"dev"}) {
		t.Errorf("contexts without a cluster = %q", got)
	}
	if got, _ := complete(t, root, "tap", "-n", ""); !cmp.Equal(got, []string{"shop"}) {
		t.Errorf("namespaces without a cluster = %q, want the context's", got)
	}
}

func TestCompletionNamespacesForbidden(t *testing.T) {
	client := fake.NewClientset(clusterObjects()...)
	client.PrependReactor("list", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "", errors.New("no"))
	})
	root := completionRoot(t, client, nil)
	if got, _ := complete(t, root, "tap", "-n", ""); !cmp.Equal(got, []string{"shop"}) {
		t.Errorf("namespaces when listing is forbidden = %q, want the context's", got)
	}
}

// TestPluginRegistersCompletions: the real command tree carries the
// completions, and the flags they read keep their names.
func TestPluginRegistersCompletions(t *testing.T) {
	root := NewCmdShark(genericiooptions.NewTestIOStreamsDiscard())
	for _, flag := range []string{"namespace", "context", "cluster", "user"} {
		if _, ok := root.GetFlagCompletionFunc(flag); !ok {
			t.Errorf("--%s has no completion", flag)
		}
	}
	for _, name := range []string{"tap", "pcap", "ui"} {
		sub, _, err := root.Find([]string{name})
		if err != nil || sub.Name() != name {
			t.Fatalf("no %s command: %v", name, err)
		}
		if sub.ValidArgsFunction == nil {
			t.Errorf("%s: no completion of its pod argument", name)
		}
		for _, flag := range []string{"all-namespaces", "selector", "shark-namespace", "session"} {
			if sub.Flags().Lookup(flag) == nil {
				t.Errorf("%s has no --%s, which completion reads", name, flag)
			}
			if _, ok := sub.GetFlagCompletionFunc(flag); !ok && (flag == "shark-namespace" || flag == "session") {
				t.Errorf("%s --%s has no completion", name, flag)
			}
		}
	}
}
