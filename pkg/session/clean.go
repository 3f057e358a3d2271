package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CleanReport says what Clean removed and what it left, and why.
type CleanReport struct {
	// Removed lists deleted objects: "namespace/shark-abc123",
	// "pod/team-a/shark-hub-abc123", "clusterrole/shark-abc123-hub".
	Removed []string
	// Skipped lists sessions and namespaces left alone, with the reason.
	Skipped []string
	// Unsearched lists where Clean could not look (no permission).
	Unsearched []string
}

// now is Clean's clock; tests pin it.
var now = time.Now

// candidate is a session that Clean found a trace of.
type candidate struct {
	ref     Ref
	created time.Time   // of its namespace, or of its first object found
	hub     *corev1.Pod // nil when not found
}

// podsListed is where findObjects listed pods: NamespaceAll, a namespace,
// or noNamespace.
const noNamespace = "\x00"

// Clean removes the leftovers of sessions: every object labelled by
// kubectl-shark, in every namespace it may list (else in m.Namespace). A
// namespace goes only if kubectl-shark created it (see ownedNamespace).
// Without all, a session whose hub is ready or still starting is in use
// and is skipped; with all, it goes too. Clean returns an error when
// anything it tried failed, together with the report of what it did.
func (m *Manager) Clean(ctx context.Context, all, wait bool) (CleanReport, error) {
	var rep CleanReport
	// One clear error when there is no cluster, rather than one per list.
	if err := m.reach(ctx); err != nil {
		return rep, err
	}
	var errs []error
	found := map[Ref]*candidate{}
	errs = append(errs, m.findNamespaces(ctx, found, &rep))
	podsListed, err := m.findObjects(ctx, found, &rep)
	errs = append(errs, err)
	errs = append(errs, m.findClusterObjects(ctx, found, &rep))

	refs := make([]Ref, 0, len(found))
	for r := range found {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b Ref) int {
		return strings.Compare(a.Namespace+"/"+a.ID, b.Namespace+"/"+b.ID)
	})
	var deleted []Ref
	for _, ref := range refs {
		c := found[ref]
		if !all {
			if why := m.inUse(ctx, c, podsListed); why != "" {
				rep.Skipped = append(rep.Skipped, fmt.Sprintf("session %s in namespace %s: %s (--all removes it)", ref.ID, ref.Namespace, why))
				continue
			}
		}
		removed, err := m.deleteSession(ctx, ref, false)
		rep.Removed = append(rep.Removed, removed...)
		errs = append(errs, err)
		deleted = append(deleted, ref)
	}
	if wait {
		for _, ref := range deleted {
			owned := slices.Contains(rep.Removed, "namespace/"+ref.Namespace)
			errs = append(errs, m.waitGone(ctx, ref, owned))
		}
	}
	return rep, errors.Join(errs...)
}

func (m *Manager) add(found map[Ref]*candidate, ref Ref, created time.Time) *candidate {
	c := found[ref]
	if c == nil {
		c = &candidate{ref: ref, created: created}
		found[ref] = c
	}
	if created.After(c.created) {
		c.created = created
	}
	return c
}

// findNamespaces finds the session namespaces kubectl-shark created, and
// reports the ones that only look like them.
func (m *Manager) findNamespaces(ctx context.Context, found map[Ref]*candidate, rep *CleanReport) error {
	list, err := m.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: anySessionSelector()})
	switch {
	case apierrors.IsForbidden(err):
		rep.Unsearched = append(rep.Unsearched, "namespaces (cannot list them)")
		return nil
	case err != nil:
		return fmt.Errorf("list namespaces: %w", err)
	}
	for i := range list.Items {
		ns := &list.Items[i]
		if !ownedNamespace(ns) {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("namespace %s: carries kubectl-shark labels but kubectl-shark did not create it", ns.Name))
			continue
		}
		m.add(found, Ref{ID: ns.Labels[LabelSession], Namespace: ns.Name}, ns.CreationTimestamp.Time)
	}
	return nil
}

// findObjects finds sessions by their pods and Secrets (every session has
// both), in all namespaces, or in m.Namespace if that is all it may list.
// It returns where it listed pods.
func (m *Manager) findObjects(ctx context.Context, found map[Ref]*candidate, rep *CleanReport) (string, error) {
	ns := metav1.NamespaceAll
	pods, err := m.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: anySessionSelector()})
	if apierrors.IsForbidden(err) && m.Namespace != "" {
		rep.Unsearched = append(rep.Unsearched, "pods and secrets outside namespace "+m.Namespace+" (cannot list them in all namespaces)")
		ns = m.Namespace
		pods, err = m.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: anySessionSelector()})
	}
	if err != nil {
		return noNamespace, fmt.Errorf("list pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		c := m.add(found, Ref{ID: p.Labels[LabelSession], Namespace: p.Namespace}, p.CreationTimestamp.Time)
		if p.Labels[LabelComponent] == ComponentHub {
			c.hub = p
		}
	}
	secrets, err := m.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: anySessionSelector()})
	if err != nil {
		return ns, fmt.Errorf("list secrets: %w", err)
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		m.add(found, Ref{ID: s.Labels[LabelSession], Namespace: s.Namespace}, s.CreationTimestamp.Time)
	}
	for r := range found {
		if !ValidID(r.ID) {
			delete(found, r)
		}
	}
	return ns, nil
}

// findClusterObjects finds cluster-scoped RBAC whose session left nothing
// else behind.
func (m *Manager) findClusterObjects(ctx context.Context, found map[Ref]*candidate, rep *CleanReport) error {
	known := map[string]bool{}
	for r := range found {
		known[r.ID] = true
	}
	var errs []error
	for _, k := range clusterKinds(m, false) {
		objs, err := k.list(ctx, anySessionSelector())
		for _, o := range objs {
			id := o.GetLabels()[LabelSession]
			if ValidID(id) && !known[id] {
				m.add(found, Ref{ID: id, Namespace: SessionNamespace(id)}, o.GetCreationTimestamp().Time)
			}
		}
		errs = append(errs, unsearched(rep, k.name, err))
	}
	return errors.Join(errs...)
}

func unsearched(rep *CleanReport, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsForbidden(err):
		rep.Unsearched = append(rep.Unsearched, what+"s (cannot list them)")
		return nil
	}
	return fmt.Errorf("list %ss: %w", what, err)
}

// inUse says why a session must be left alone, or "" when it is a
// leftover: its hub is Ready (someone is using it, or it will delete
// itself soon after they stop), or it is younger than startGrace.
func (m *Manager) inUse(ctx context.Context, c *candidate, podsListed string) string {
	hub := c.hub
	if hub == nil && podsListed != metav1.NamespaceAll && podsListed != c.ref.Namespace {
		name := namesFor(c.ref.ID, c.ref.Namespace != SessionNamespace(c.ref.ID)).hub
		p, err := m.Client.CoreV1().Pods(c.ref.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			hub = p
		}
	}
	return inUseReason(hub, c.created, now())
}

func inUseReason(hub *corev1.Pod, created, t time.Time) string {
	if hub != nil {
		if hub.DeletionTimestamp != nil {
			return ""
		}
		st := podState(hub)
		switch {
		case st.ready:
			return "its hub is ready"
		case st.kind != stateFatal && t.Sub(hub.CreationTimestamp.Time) < startGrace:
			return "its hub is starting"
		}
		return ""
	}
	if t.Sub(created) < startGrace {
		return "it is starting"
	}
	return ""
}
