// Package targets resolves which pods a session captures (namespaces, a
// pod-name regex, a label selector), watches them as they come and go, and
// names the IPs of a cluster (pod, service, workload) for the hub. It does
// all of this with the user's own credentials, from the CLI.
package targets

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Sentinel errors of scope resolution, for errors.Is.
var (
	ErrInvalidRegex     = errors.New("invalid pod query")
	ErrInvalidSelector  = errors.New("invalid label selector")
	ErrInvalidNamespace = errors.New("invalid namespace")
	ErrConflictingScope = errors.New("conflicting scope flags")
)

// ScopeOptions are the flags that choose the pods: -n (repeatable), -A,
// the positional pod-name regex and -l.
type ScopeOptions struct {
	Namespaces       []string
	AllNamespaces    bool
	CurrentNamespace string // the kubeconfig context's namespace
	PodQuery         string // a regular expression; "" matches every pod
	Selector         string // a label selector; "" matches every pod
}

// Scope is a resolved, validated choice of pods.
type Scope struct {
	// Namespaces, sorted and unique; nil means all namespaces.
	Namespaces []string
	// Pods matches pod names (unanchored, as in stern); nil matches all.
	Pods *regexp.Regexp
	// Selector filters by labels, server-side in lists and watches.
	Selector labels.Selector
}

// NewScope resolves o into a Scope: -A wins over nothing, -n over the
// context's namespace, which is "default" when the context names none.
func NewScope(o ScopeOptions) (Scope, error) {
	s := Scope{Selector: labels.Everything()}
	switch {
	case o.AllNamespaces && len(o.Namespaces) > 0:
		return Scope{}, fmt.Errorf("%w: --all-namespaces and --namespace cannot be used together", ErrConflictingScope)
	case o.AllNamespaces:
	case len(o.Namespaces) > 0:
		for _, ns := range o.Namespaces {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return Scope{}, fmt.Errorf("%w %q: %s", ErrInvalidNamespace, ns, errs[0])
			}
		}
		s.Namespaces = slices.Compact(slices.Sorted(slices.Values(o.Namespaces)))
	case o.CurrentNamespace != "":
		s.Namespaces = []string{o.CurrentNamespace}
	default:
		s.Namespaces = []string{metav1.NamespaceDefault}
	}
	if o.PodQuery != "" {
		re, err := regexp.Compile(o.PodQuery)
		if err != nil {
			return Scope{}, fmt.Errorf("%w %q: %w", ErrInvalidRegex, o.PodQuery, err)
		}
		s.Pods = re
	}
	if o.Selector != "" {
		sel, err := labels.Parse(o.Selector)
		if err != nil {
			return Scope{}, fmt.Errorf("%w %q: %w", ErrInvalidSelector, o.Selector, err)
		}
		s.Selector = sel
	}
	return s, nil
}

// AllNamespaces tells whether the scope spans the whole cluster.
func (s Scope) AllNamespaces() bool { return s.Namespaces == nil }

// ListNamespaces are the namespaces to list and watch: metav1.NamespaceAll
// ("") alone when the scope spans the cluster.
func (s Scope) ListNamespaces() []string {
	if s.AllNamespaces() {
		return []string{metav1.NamespaceAll}
	}
	return s.Namespaces
}

// Matches tells whether pod is in the scope.
func (s Scope) Matches(pod *corev1.Pod) bool {
	if !s.AllNamespaces() && !slices.Contains(s.Namespaces, pod.Namespace) {
		return false
	}
	if s.Pods != nil && !s.Pods.MatchString(pod.Name) {
		return false
	}
	return s.selector().Matches(labels.Set(pod.Labels))
}

func (s Scope) selector() labels.Selector {
	if s.Selector == nil {
		return labels.Everything()
	}
	return s.Selector
}

// String describes the scope for messages, e.g. `pods matching "cart"
// with labels app=shop in namespaces shop, web`.
func (s Scope) String() string {
	what := "all pods"
	if s.Pods != nil {
		what = fmt.Sprintf("pods matching %q", s.Pods.String())
	}
	if sel := s.selector(); !sel.Empty() {
		what += " with labels " + sel.String()
	}
	switch {
	case s.AllNamespaces():
		return what + " in all namespaces"
	case len(s.Namespaces) == 1:
		return what + " in namespace " + s.Namespaces[0]
	}
	ns := ""
	for i, n := range s.Namespaces {
		if i > 0 {
			ns += ", "
		}
		ns += n
	}
	return what + " in namespaces " + ns
}
