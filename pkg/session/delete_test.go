package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

func sessionNS(id string, created time.Time) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "shark-" + id, Labels: Labels(id, ""), CreationTimestamp: metav1.NewTime(created),
	}}
}

func labelled(id, component string) map[string]string { return Labels(id, component) }

func pod(ns, name string, l map[string]string, st corev1.PodStatus, created time.Time) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l, CreationTimestamp: metav1.NewTime(created)}, Status: st}
}

func secret(ns, name string, l map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}}
}

// names lists what exists of a kind, as "namespace/name" or "name".
func existing(t *testing.T, c *fakeCluster) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	nss, _ := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	for _, o := range nss.Items {
		out = append(out, "namespace/"+o.Name)
	}
	pods, _ := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	for _, o := range pods.Items {
		out = append(out, "pod/"+o.Namespace+"/"+o.Name)
	}
	secs, _ := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	for _, o := range secs.Items {
		out = append(out, "secret/"+o.Namespace+"/"+o.Name)
	}
	roles, _ := c.RbacV1().Roles("").List(ctx, metav1.ListOptions{})
	for _, o := range roles.Items {
		out = append(out, "role/"+o.Namespace+"/"+o.Name)
	}
	crs, _ := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	for _, o := range crs.Items {
		out = append(out, "clusterrole/"+o.Name)
	}
	slices.Sort(out)
	return out
}

func TestDeleteOwnNamespace(t *testing.T) {
	fastClock(t)
	old := time.Now().Add(-time.Hour)
	c := newFakeCluster(t,
		sessionNS("abc123", old),
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "shark-abc123-hub", Labels: labelled("abc123", "hub")}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "shark-abc123-hub", Labels: labelled("abc123", "hub")}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "shark-zzz999-hub", Labels: labelled("zzz999", "hub")}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "admin"}},
	)
	m := &Manager{Client: c}
	if err := m.Delete(context.Background(), Ref{ID: "abc123"}, true); err != nil {
		t.Fatal(err)
	}
	want := []string{"clusterrole/admin", "clusterrole/shark-zzz999-hub"}
	if d := cmp.Diff(want, existing(t, c)); d != "" {
		t.Errorf("left (-want +got):\n%s", d)
	}
}

func TestDeleteSharedNamespaceByLabel(t *testing.T) {
	fastClock(t)
	l := labelled("abc123", "hub")
	other := labelled("zzz999", "hub")
	c := newFakeCluster(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		pod("team-a", "shark-hub-abc123", l, corev1.PodStatus{}, time.Time{}),
		pod("team-a", "shark-worker-abc123-1", labelled("abc123", "worker"), corev1.PodStatus{}, time.Time{}),
		pod("team-a", "shark-hub-zzz999", other, corev1.PodStatus{}, time.Time{}),
		pod("team-a", "app", map[string]string{"app": "web"}, corev1.PodStatus{}, time.Time{}),
		secret("team-a", "shark-tls-abc123", l),
		secret("team-a", "db-password", nil),
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "shark-hub-abc123", Labels: l}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "shark-hub-abc123", Labels: l}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "shark-hub-abc123", Labels: l}},
	)
	// The user of a shared namespace may not list cluster roles.
	c.PrependReactor("list", "clusterroles", forbidden)
	c.PrependReactor("list", "clusterrolebindings", forbidden)
	m := &Manager{Client: c}
	removed, err := m.deleteSession(context.Background(), Ref{ID: "abc123", Namespace: "team-a"}, true)
	if err != nil {
		t.Fatal(err)
	}
	wantRemoved := []string{
		"pod/team-a/shark-hub-abc123", "pod/team-a/shark-worker-abc123-1",
		"secret/team-a/shark-tls-abc123", "rolebinding/team-a/shark-hub-abc123",
		"role/team-a/shark-hub-abc123", "serviceaccount/team-a/shark-hub-abc123",
	}
	if d := cmp.Diff(wantRemoved, removed); d != "" {
		t.Errorf("removed (-want +got):\n%s", d)
	}
	wantLeft := []string{"namespace/team-a", "pod/team-a/app", "pod/team-a/shark-hub-zzz999", "secret/team-a/db-password"}
	if d := cmp.Diff(wantLeft, existing(t, c)); d != "" {
		t.Errorf("left (-want +got):\n%s", d)
	}
}

func forbidden(a k8stesting.Action) (bool, runtime.Object, error) {
	return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "", errors.New("RBAC: access denied"))
}

func TestDeleteWaitIsBounded(t *testing.T) {
	fastClock(t)
	c := newFakeCluster(t, sessionNS("abc123", time.Now()))
	// A namespace stuck in Terminating: the delete is accepted, nothing goes.
	c.PrependReactor("delete", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, nil })
	m := &Manager{Client: c, WaitTimeout: 50 * time.Millisecond}
	err := m.Delete(context.Background(), Ref{ID: "abc123"}, true)
	if !errors.Is(err, ErrDeleteTimeout) || !strings.Contains(err.Error(), "still there: [namespace/shark-abc123]") {
		t.Fatalf("Delete = %v, want a timeout naming the namespace", err)
	}
	if err := m.Delete(context.Background(), Ref{ID: "abc123"}, false); err != nil {
		t.Fatalf("Delete without wait = %v", err)
	}
}

func TestDeleteNeverTakesAForeignNamespace(t *testing.T) {
	fastClock(t)
	// Named like a session namespace, labelled for another session.
	ns := sessionNS("abc123", time.Time{})
	ns.Labels[LabelSession] = "zzz999"
	c := newFakeCluster(t, ns)
	m := &Manager{Client: c}
	if err := m.Delete(context.Background(), Ref{ID: "abc123"}, false); err != nil {
		t.Fatal(err)
	}
	if got := c.deleted(); len(got) != 0 {
		t.Errorf("deleted %v", got)
	}
}

func TestClean(t *testing.T) {
	fastClock(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	oldNow := now
	now = func() time.Time { return t0 }
	t.Cleanup(func() { now = oldNow })
	long := t0.Add(-time.Hour)
	recent := t0.Add(-10 * time.Second)

	foreign := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: Labels("abc123", "")}}
	noSession := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shark-tools", Labels: map[string]string{LabelManagedBy: ManagedByValue}}}
	objs := []runtime.Object{
		foreign, noSession,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		// stale: its hub is gone
		sessionNS("stale1", long),
		// active: its hub is ready
		sessionNS("live01", long),
		pod("shark-live01", "shark-hub", labelled("live01", "hub"), readyStatus("10.0.0.9"), long),
		// starting: created seconds ago, no hub yet
		sessionNS("new001", recent),
		// failed: its hub crashed
		sessionNS("dead01", long),
		pod("shark-dead01", "shark-hub", labelled("dead01", "hub"), corev1.PodStatus{Phase: corev1.PodFailed, Reason: "DeadlineExceeded"}, long),
		// a shared-namespace leftover: a Secret whose hub is gone
		secret("team-a", "shark-tls-sh4red", labelled("sh4red", "hub")),
		secret("team-a", "app-secret", nil),
		// cluster RBAC of a session with nothing else left
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "shark-orph4n-hub", Labels: labelled("orph4n", "hub"), CreationTimestamp: metav1.NewTime(long)}},
	}

	t.Run("leftovers only", func(t *testing.T) {
		c := newFakeCluster(t, objs...)
		m := &Manager{Client: c}
		rep, err := m.Clean(context.Background(), false, true)
		if err != nil {
			t.Fatal(err)
		}
		want := CleanReport{
			Removed: []string{
				"namespace/shark-dead01",
				"namespace/shark-orph4n", // not there; its cluster role is
				"clusterrole/shark-orph4n-hub",
				"namespace/shark-stale1",
				"secret/team-a/shark-tls-sh4red",
			},
			Skipped: []string{
				"namespace prod: carries kubectl-shark labels but kubectl-shark did not create it",
				"session live01 in namespace shark-live01: its hub is ready (--all removes it)",
				"session new001 in namespace shark-new001: it is starting (--all removes it)",
			},
		}
		// A missing namespace is not reported as removed.
		want.Removed = slices.DeleteFunc(want.Removed, func(s string) bool { return s == "namespace/shark-orph4n" })
		if d := cmp.Diff(want, rep); d != "" {
			t.Errorf("report (-want +got):\n%s", d)
		}
		left := existing(t, c)
		for _, keep := range []string{"namespace/prod", "namespace/shark-tools", "namespace/kube-system", "namespace/team-a", "namespace/shark-live01", "namespace/shark-new001", "secret/team-a/app-secret"} {
			if !slices.Contains(left, keep) {
				t.Errorf("clean removed %s", keep)
			}
		}
	})

	t.Run("all", func(t *testing.T) {
		c := newFakeCluster(t, objs...)
		m := &Manager{Client: c}
		rep, err := m.Clean(context.Background(), true, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"namespace/shark-live01", "namespace/shark-new001"} {
			if !slices.Contains(rep.Removed, want) {
				t.Errorf("--all kept %s: %v", want, rep.Removed)
			}
		}
		for _, d := range c.deleted() {
			if d == "namespace/prod" || d == "namespace/shark-tools" || d == "namespace/team-a" || d == "namespace/kube-system" {
				t.Errorf("--all deleted %s", d)
			}
		}
	})

	t.Run("a failed delete is an error", func(t *testing.T) {
		c := newFakeCluster(t, objs...)
		c.PrependReactor("delete", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.(k8stesting.DeleteAction).GetName() == "shark-stale1" {
				return true, nil, apierrors.NewInternalError(errors.New("etcd is sad"))
			}
			return false, nil, nil
		})
		m := &Manager{Client: c}
		rep, err := m.Clean(context.Background(), false, false)
		if err == nil || !strings.Contains(err.Error(), "delete namespace/shark-stale1") {
			t.Fatalf("Clean error = %v", err)
		}
		if !slices.Contains(rep.Removed, "namespace/shark-dead01") {
			t.Errorf("one failure stopped the rest: %v", rep.Removed)
		}
	})

	t.Run("no cluster-wide list", func(t *testing.T) {
		c := newFakeCluster(t, objs...)
		c.PrependReactor("list", "namespaces", forbidden)
		c.PrependReactor("list", "clusterroles", forbidden)
		c.PrependReactor("list", "clusterrolebindings", forbidden)
		c.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetNamespace() == "" && a.GetResource().Resource != "namespaces" {
				return forbidden(a)
			}
			return false, nil, nil
		})
		m := &Manager{Client: c, Namespace: "team-a"}
		rep, err := m.Clean(context.Background(), false, false)
		if err != nil {
			t.Fatal(err)
		}
		want := CleanReport{
			Removed: []string{"secret/team-a/shark-tls-sh4red"},
			Unsearched: []string{
				"namespaces (cannot list them)",
				"pods and secrets outside namespace team-a (cannot list them in all namespaces)",
				"clusterrolebindings (cannot list them)",
				"clusterroles (cannot list them)",
			},
		}
		if d := cmp.Diff(want, rep); d != "" {
			t.Errorf("report (-want +got):\n%s", d)
		}
	})
}

func TestInUseReason(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		hub     *corev1.Pod
		created time.Time
		want    string
	}{
		{"ready hub", pod("ns", "h", nil, readyStatus("10.0.0.1"), t0.Add(-time.Hour)), t0.Add(-time.Hour), "its hub is ready"},
		{"young pending hub", pod("ns", "h", nil, waitingStatus("ContainerCreating", ""), t0.Add(-time.Minute)), t0.Add(-time.Minute), "its hub is starting"},
		{"old pending hub", pod("ns", "h", nil, waitingStatus("ImagePullBackOff", ""), t0.Add(-time.Hour)), t0.Add(-time.Hour), ""},
		{"young crashed hub", pod("ns", "h", nil, corev1.PodStatus{Phase: corev1.PodFailed}, t0.Add(-time.Minute)), t0, ""},
		{"no hub, young", nil, t0.Add(-time.Minute), "it is starting"},
		{"no hub, old", nil, t0.Add(-time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inUseReason(tc.hub, tc.created, t0); got != tc.want {
				t.Errorf("inUseReason = %q, want %q", got, tc.want)
			}
		})
	}
}
