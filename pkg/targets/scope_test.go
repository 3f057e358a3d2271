package targets

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNewScope(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      ScopeOptions
		wantNS    []string
		wantRe    string
		wantSel   string
		wantErrIs error
		wantErr   string
	}{
		{name: "context namespace", opts: ScopeOptions{CurrentNamespace: "shop"}, wantNS: []string{"shop"}},
		{name: "no context namespace", opts: ScopeOptions{}, wantNS: []string{"default"}},
		{name: "-n wins over the context", opts: ScopeOptions{Namespaces: []string{"web", "shop", "web"}, CurrentNamespace: "x"}, wantNS: []string{"shop", "web"}},
		{name: "-A", opts: ScopeOptions{AllNamespaces: true, CurrentNamespace: "x"}, wantNS: nil},
		{name: "regex and selector", opts: ScopeOptions{PodQuery: "(front|cart).*", Selector: "app=shop,tier!=db"},
			wantNS: []string{"default"}, wantRe: "(front|cart).*", wantSel: "app=shop,tier!=db"},
		{name: "-A with -n", opts: ScopeOptions{AllNamespaces: true, Namespaces: []string{"a"}},
			wantErrIs: ErrConflictingScope, wantErr: "conflicting scope flags: --all-namespaces and --namespace cannot be used together"},
		{name: "invalid regex", opts: ScopeOptions{PodQuery: "(cart"},
			wantErrIs: ErrInvalidRegex, wantErr: "invalid pod query \"(cart\": error parsing regexp: missing closing ): `(cart`"},
		{name: "invalid selector", opts: ScopeOptions{Selector: "app in (a"},
			wantErrIs: ErrInvalidSelector},
		{name: "invalid namespace", opts: ScopeOptions{Namespaces: []string{"Shop"}},
			wantErrIs: ErrInvalidNamespace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScope(tc.opts)
			if tc.wantErrIs != nil {
				if !errors.Is(err, tc.wantErrIs) {
					t.Fatalf("NewScope error = %v, want %v", err, tc.wantErrIs)
				}
				if tc.wantErr != "" && err.Error() != tc.wantErr {
					t.Errorf("error:\n got %s\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantNS, s.Namespaces); d != "" {
				t.Errorf("namespaces (-want +got):\n%s", d)
			}
			gotRe := ""
			if s.Pods != nil {
				gotRe = s.Pods.String()
			}
			if gotRe != tc.wantRe || s.Selector.String() != tc.wantSel {
				t.Errorf("regex %q selector %q, want %q %q", gotRe, s.Selector.String(), tc.wantRe, tc.wantSel)
			}
		})
	}
}

func mkPod(ns, name string, l map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}}
}

func TestScopeMatches(t *testing.T) {
	s, err := NewScope(ScopeOptions{Namespaces: []string{"shop"}, PodQuery: "^(front|cart)-", Selector: "app=shop"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := NewScope(ScopeOptions{AllNamespaces: true})
	if err != nil {
		t.Fatal(err)
	}
	shop := map[string]string{"app": "shop"}
	for _, tc := range []struct {
		scope Scope
		pod   *corev1.Pod
		want  bool
	}{
		{s, mkPod("shop", "cart-7d9f-x2", shop), true},
		{s, mkPod("shop", "front-1", shop), true},
		{s, mkPod("shop", "mycart-1", shop), false}, // anchored by the user's ^
		{s, mkPod("web", "cart-1", shop), false},
		{s, mkPod("shop", "cart-1", map[string]string{"app": "other"}), false},
		{s, mkPod("shop", "cart-1", nil), false},
		{all, mkPod("anything", "x", nil), true},
		{Scope{}, mkPod("ns", "x", nil), true}, // the zero Scope matches everything
	} {
		if got := tc.scope.Matches(tc.pod); got != tc.want {
			t.Errorf("%s matches %s/%s = %v, want %v", tc.scope, tc.pod.Namespace, tc.pod.Name, got, tc.want)
		}
	}
}

func TestScopeString(t *testing.T) {
	for _, tc := range []struct {
		opts ScopeOptions
		want string
	}{
		{ScopeOptions{CurrentNamespace: "shop"}, "all pods in namespace shop"},
		{ScopeOptions{AllNamespaces: true, PodQuery: "cart"}, `pods matching "cart" in all namespaces`},
		{ScopeOptions{Namespaces: []string{"b", "a"}, Selector: "app=x"}, "all pods with labels app=x in namespaces a, b"},
	} {
		s, err := NewScope(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.String(); got != tc.want {
			t.Errorf("String = %q, want %q", got, tc.want)
		}
	}
}
