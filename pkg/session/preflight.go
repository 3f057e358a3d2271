package session

import (
	"context"
	"fmt"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Preflight checks, before anything is created, that the session can
// start: the cluster answers, the namespaces exist, the user holds every
// permission the session uses, Pod Security admits the workers, and some
// node can run the hub. targetNamespaces are the namespaces whose pods the
// CLI watches ("" or metav1.NamespaceAll for all of them).
//
// Checks that the user's permissions do not allow (reading a namespace,
// listing nodes) are skipped rather than failed: the user may still be
// able to run the session.
func (m *Manager) Preflight(ctx context.Context, s Spec, targetNamespaces []string) error {
	if err := m.reach(ctx); err != nil {
		return err
	}
	seen := map[string]*corev1.Namespace{}
	check := targetNamespaces
	if s.Shared {
		check = append([]string{s.Namespace}, targetNamespaces...)
	}
	for _, name := range check {
		if _, done := seen[name]; done || name == metav1.NamespaceAll {
			continue
		}
		ns, err := m.namespace(ctx, name)
		if err != nil {
			return err
		}
		seen[name] = ns
	}
	if err := m.checkPermissions(ctx, s, targetNamespaces); err != nil {
		return err
	}
	if s.Shared {
		if err := checkPodSecurity(seen[s.Namespace]); err != nil {
			return err
		}
	}
	return m.checkNodes(ctx)
}

// reach asks the API server for its version: the cheapest request that
// proves it answers and accepts our credentials.
func (m *Manager) reach(ctx context.Context) error {
	_, err := m.Client.Discovery().ServerVersion()
	switch {
	case err == nil:
		return nil
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w at %s: check your kubeconfig (%w)", ErrUnauthorized, m.host(), err)
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return fmt.Errorf("%w at %s: %w", ErrClusterUnreachable, m.host(), err)
	}
}

func (m *Manager) host() string {
	if m.Host == "" {
		return "(unknown host)"
	}
	return m.Host
}

// namespace reads a namespace. It returns nil, nil when the user may not
// read namespaces: existence cannot be told then.
func (m *Manager) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns, err := m.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return ns, nil
	case apierrors.IsNotFound(err):
		return nil, &NamespaceNotFoundError{Name: name}
	case apierrors.IsForbidden(err):
		return nil, nil
	default:
		return nil, fmt.Errorf("read namespace %q: %w", name, err)
	}
}

// RequiredPermissions lists what the session does with the user's
// credentials: apply (create and patch), read and delete its objects,
// port-forward to the hub, and watch the target pods.
func RequiredPermissions(s Spec, targetNamespaces []string) []Permission {
	var ps []Permission
	add := func(group, resource, ns string, verbs ...string) {
		for _, v := range verbs {
			ps = append(ps, Permission{Verb: v, Group: group, Resource: resource, Namespace: ns})
		}
	}
	const rbac = "rbac.authorization.k8s.io"
	ns := s.Namespace
	if s.Shared {
		for _, r := range []string{"secrets", "serviceaccounts"} {
			add("", r, ns, "create", "patch", "list", "delete")
		}
		for _, r := range []string{"roles", "rolebindings"} {
			add(rbac, r, ns, "create", "patch", "list", "delete")
		}
	} else {
		add("", "namespaces", "", "create", "patch", "delete")
		add(rbac, "clusterroles", "", "create", "patch", "delete")
		add(rbac, "clusterrolebindings", "", "create", "patch", "delete")
		add("", "secrets", ns, "create", "patch")
		add("", "serviceaccounts", ns, "create", "patch")
	}
	add("", "pods", ns, "create", "patch", "get", "list", "delete")
	ps = append(ps, Permission{Verb: "create", Resource: "pods", Subresource: "portforward", Namespace: ns})
	seen := map[string]bool{}
	for _, t := range targetNamespaces {
		if !seen[t] {
			seen[t] = true
			add("", "pods", t, "list", "watch")
		}
	}
	return ps
}

// ssarConcurrency bounds the access reviews in flight.
const ssarConcurrency = 8

func (m *Manager) checkPermissions(ctx context.Context, s Spec, targetNamespaces []string) error {
	ps := RequiredPermissions(s, targetNamespaces)
	allowed := make([]bool, len(ps))
	errs := make([]error, len(ps))
	sem := make(chan struct{}, ssarConcurrency)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			allowed[i], errs[i] = m.can(ctx, p)
		}()
	}
	wg.Wait()
	// One failed review is much like the next: report the first.
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("check permissions: %w", err)
		}
	}
	var missing []Permission
	for i, ok := range allowed {
		if !ok {
			missing = append(missing, ps[i])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	e := &MissingPermissionError{Missing: missing}
	if !s.Shared && missesSessionPermission(missing, s.Namespace) {
		e.Hint = "or use --shark-namespace"
	}
	return e
}

// missesSessionPermission tells whether a missing permission is about the
// session's own objects, which --shark-namespace may work around, rather
// than about watching the targets, which nothing does.
func missesSessionPermission(missing []Permission, sessionNS string) bool {
	for _, p := range missing {
		watching := (p.Verb == "list" || p.Verb == "watch") && p.Resource == "pods" && p.Namespace != sessionNS
		if !watching {
			return true
		}
	}
	return false
}

func (m *Manager) can(ctx context.Context, p Permission) (bool, error) {
	review := &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace:   p.Namespace,
				Verb:        p.Verb,
				Group:       p.Group,
				Resource:    p.Resource,
				Subresource: p.Subresource,
			},
		},
	}
	res, err := m.Client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("can I %s: %w", p, err)
	}
	return res.Status.Allowed, nil
}

// checkPodSecurity reads the enforced Pod Security level of the shared
// namespace. ns is nil when the user may not read it.
func checkPodSecurity(ns *corev1.Namespace) error {
	if ns == nil {
		return nil
	}
	level := ns.Labels[psaEnforce]
	switch level {
	case "baseline", "restricted":
		return fmt.Errorf("%w: namespace %q enforces Pod Security %q, and the workers need \"privileged\" (host network, host PID, capabilities); label it %s=privileged or choose another --shark-namespace",
			ErrPodSecurity, ns.Name, level, psaEnforce)
	}
	return nil
}

// checkNodes looks for a node that can run the hub: Ready, not cordoned,
// and without a taint that repels pods without tolerations.
func (m *Manager) checkNodes(ctx context.Context) error {
	nodes, err := m.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return nil
	case err != nil:
		return fmt.Errorf("list nodes: %w", err)
	}
	for i := range nodes.Items {
		if schedulable(&nodes.Items[i]) {
			return nil
		}
	}
	return fmt.Errorf("%w: none of the %d nodes is Ready, uncordoned and free of NoSchedule/NoExecute taints", ErrNoSchedulableNodes, len(nodes.Items))
}

func schedulable(n *corev1.Node) bool {
	if n.Spec.Unschedulable {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
