package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// ownedNamespace tells whether ns is a session namespace that
// kubectl-shark created: both labels, and the name it gives its own. A
// namespace that merely carries our labels (copied by hand, or by a tool)
// is never deleted.
func ownedNamespace(ns *corev1.Namespace) bool {
	id := ns.Labels[LabelSession]
	return ns.Labels[LabelManagedBy] == ManagedByValue && ValidID(id) && ns.Name == SessionNamespace(id)
}

// Delete removes everything of a session: its namespace when the session
// created it, else each of its objects by label; and its cluster-scoped
// RBAC. With wait, it returns only once they are really gone (bounded by
// WaitTimeout).
func (m *Manager) Delete(ctx context.Context, ref Ref, wait bool) error {
	_, err := m.deleteSession(ctx, ref, wait)
	return err
}

// deleteSession returns what it asked the API server to delete, as
// "kind/name" (namespaced: "kind/namespace/name").
func (m *Manager) deleteSession(ctx context.Context, ref Ref, wait bool) ([]string, error) {
	if !ValidID(ref.ID) {
		return nil, fmt.Errorf("session id %q: want 6 lowercase letters or digits", ref.ID)
	}
	if ref.Namespace == "" {
		ref.Namespace = SessionNamespace(ref.ID)
	}
	owned, err := m.ownsNamespace(ctx, ref)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	if owned {
		err := m.Client.CoreV1().Namespaces().Delete(ctx, ref.Namespace, background)
		if ignoreNotFound(err) == nil {
			removed = append(removed, "namespace/"+ref.Namespace)
		} else {
			errs = append(errs, fmt.Errorf("delete namespace/%s: %w", ref.Namespace, err))
		}
	} else {
		r, err := m.deleteByLabel(ctx, namespacedKinds(m, ref.Namespace), ref.ID)
		removed, errs = append(removed, r...), append(errs, err)
	}
	// Owned by the namespace, so the garbage collector would get them too;
	// deleting them here makes clean and --wait exact.
	r, err := m.deleteByLabel(ctx, clusterKinds(m, ref.Namespace != SessionNamespace(ref.ID)), ref.ID)
	removed, errs = append(removed, r...), append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return removed, err
	}
	if wait {
		return removed, m.waitGone(ctx, ref, owned)
	}
	return removed, nil
}

// ownsNamespace reads ref's namespace: true when kubectl-shark created it
// for this very session.
func (m *Manager) ownsNamespace(ctx context.Context, ref Ref) (bool, error) {
	if ref.Namespace != SessionNamespace(ref.ID) {
		return false, nil
	}
	ns, err := m.Client.CoreV1().Namespaces().Get(ctx, ref.Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read namespace/%s: %w", ref.Namespace, err)
	}
	return ownedNamespace(ns) && ns.Labels[LabelSession] == ref.ID, nil
}

var background = metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}

// kind lists and deletes the objects of one resource type.
type kind struct {
	name     string // resource, singular, for messages
	ns       string // "" for cluster-scoped
	optional bool   // a Forbidden list means "none of ours can be there"
	list     func(ctx context.Context, selector string) ([]metav1.Object, error)
	del      func(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

func (k kind) object(name string) string {
	if k.ns == "" {
		return k.name + "/" + name
	}
	return k.name + "/" + k.ns + "/" + name
}

// namespacedKinds are the session's object types inside a namespace. Pods
// go first: the others are what a running hub uses.
func namespacedKinds(m *Manager, ns string) []kind {
	core, rbac := m.Client.CoreV1(), m.Client.RbacV1()
	return []kind{
		{name: "pod", ns: ns, list: lister(core.Pods(ns).List), del: core.Pods(ns).Delete},
		{name: "secret", ns: ns, list: lister(core.Secrets(ns).List), del: core.Secrets(ns).Delete},
		{name: "rolebinding", ns: ns, list: lister(rbac.RoleBindings(ns).List), del: rbac.RoleBindings(ns).Delete},
		{name: "role", ns: ns, list: lister(rbac.Roles(ns).List), del: rbac.Roles(ns).Delete},
		{name: "serviceaccount", ns: ns, list: lister(core.ServiceAccounts(ns).List), del: core.ServiceAccounts(ns).Delete},
	}
}

// clusterKinds are the session's cluster-scoped types. optional: a
// --shark-namespace session creates none, and its user may not list them.
func clusterKinds(m *Manager, optional bool) []kind {
	rbac := m.Client.RbacV1()
	return []kind{
		{name: "clusterrolebinding", optional: optional,
			list: lister(rbac.ClusterRoleBindings().List), del: rbac.ClusterRoleBindings().Delete},
		{name: "clusterrole", optional: optional,
			list: lister(rbac.ClusterRoles().List), del: rbac.ClusterRoles().Delete},
	}
}

// lister turns a typed List into one that returns the objects a label
// selector picks.
func lister[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error)) func(context.Context, string) ([]metav1.Object, error) {
	return func(ctx context.Context, selector string) ([]metav1.Object, error) {
		l, err := list(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return nil, err
		}
		out := make([]metav1.Object, 0, len(items))
		for _, it := range items {
			a, err := meta.Accessor(it)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
		return out, nil
	}
}

// deleteByLabel deletes, kind by kind, the objects labelled with session id.
func (m *Manager) deleteByLabel(ctx context.Context, kinds []kind, id string) ([]string, error) {
	var removed []string
	var errs []error
	for _, k := range kinds {
		found, err := k.list(ctx, SessionSelector(id))
		if err != nil {
			if !(k.optional && apierrors.IsForbidden(err)) {
				errs = append(errs, fmt.Errorf("list %ss: %w", k.name, err))
			}
			continue
		}
		for _, o := range found {
			n := o.GetName()
			if err := ignoreNotFound(k.del(ctx, n, background)); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", k.object(n), err))
				continue
			}
			removed = append(removed, k.object(n))
		}
	}
	return removed, errors.Join(errs...)
}

// waitGone polls until the session's objects no longer exist.
func (m *Manager) waitGone(ctx context.Context, ref Ref, owned bool) error {
	ctx, cancel := context.WithTimeout(ctx, m.waitTimeout())
	defer cancel()
	kinds := clusterKinds(m, true)
	if !owned {
		kinds = append(namespacedKinds(m, ref.Namespace), kinds...)
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		left, err := m.remaining(ctx, ref, owned, kinds)
		if err == nil && len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if context.Cause(ctx) != context.DeadlineExceeded {
				return ctx.Err()
			}
			if err != nil {
				return fmt.Errorf("%w of session %s: %w", ErrDeleteTimeout, ref.ID, err)
			}
			return fmt.Errorf("%w of session %s after %s: still there: %v", ErrDeleteTimeout, ref.ID, m.waitTimeout(), left)
		case <-tick.C:
		}
	}
}

// remaining lists what of the session still exists.
func (m *Manager) remaining(ctx context.Context, ref Ref, owned bool, kinds []kind) ([]string, error) {
	var left []string
	if owned {
		_, err := m.Client.CoreV1().Namespaces().Get(ctx, ref.Namespace, metav1.GetOptions{})
		switch {
		case err == nil:
			left = append(left, "namespace/"+ref.Namespace)
		case !apierrors.IsNotFound(err):
			return nil, err
		}
	}
	for _, k := range kinds {
		found, err := k.list(ctx, SessionSelector(ref.ID))
		if err != nil {
			if k.optional && apierrors.IsForbidden(err) {
				continue
			}
			return nil, err
		}
		for _, o := range found {
			left = append(left, k.object(o.GetName()))
		}
	}
	slices.Sort(left)
	return left, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
