package targets

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func runningPod(ns, name, uid, node string, ips ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: map[string]string{"app": "shop"}, ResourceVersion: "1"},
		Spec:       corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	return p
}

func TestFromPod(t *testing.T) {
	pending := runningPod("shop", "cart", "u1", "")
	pending.Status = corev1.PodStatus{Phase: corev1.PodPending}
	terminating := runningPod("shop", "cart", "u1", "n1", "10.0.0.1")
	terminating.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	legacyIP := runningPod("shop", "cart", "u1", "n1")
	legacyIP.Status.PodIP = "10.0.0.9"
	hostNet := runningPod("kube-system", "proxy", "u2", "n1", "192.168.1.5")
	hostNet.Spec.HostNetwork = true
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want Target
	}{
		{"running dual-stack", runningPod("shop", "cart", "u1", "n1", "10.0.0.1", "fd00::1"),
			Target{UID: "u1", Namespace: "shop", Name: "cart", Node: "n1", IPs: []string{"10.0.0.1", "fd00::1"}, Running: true, Ready: true}},
		{"pending", pending, Target{UID: "u1", Namespace: "shop", Name: "cart"}},
		{"terminating", terminating,
			Target{UID: "u1", Namespace: "shop", Name: "cart", Node: "n1", IPs: []string{"10.0.0.1"}, Running: true, Ready: true, Terminating: true}},
		{"podIP only", legacyIP,
			Target{UID: "u1", Namespace: "shop", Name: "cart", Node: "n1", IPs: []string{"10.0.0.9"}, Running: true, Ready: true}},
		{"host network", hostNet,
			Target{UID: "u2", Namespace: "kube-system", Name: "proxy", Node: "n1", IPs: []string{"192.168.1.5"}, Running: true, Ready: true, HostNetwork: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, FromPod(tc.pod)); d != "" {
				t.Errorf("FromPod (-want +got):\n%s", d)
			}
		})
	}
	if d := cmp.Diff([]string{"n1", "n2"}, Nodes([]Target{{Node: "n2"}, {Node: "n1"}, {Node: "n2"}, {}})); d != "" {
		t.Errorf("Nodes (-want +got):\n%s", d)
	}
}

func TestTracker(t *testing.T) {
	s, _ := NewScope(ScopeOptions{Namespaces: []string{"shop", "web"}, PodQuery: "^cart"})
	tr := newTracker(s)
	a := runningPod("shop", "cart-a", "ua", "n1", "10.0.0.1")
	b := runningPod("web", "cart-b", "ub", "n2", "10.0.0.2")
	other := runningPod("shop", "front", "uf", "n1", "10.0.0.3")
	aMoved := a.DeepCopy()
	aMoved.Status.Conditions[0].Status = corev1.ConditionFalse
	aNoise := aMoved.DeepCopy()
	aNoise.Annotations = map[string]string{"x": "y"}
	aNoise.ResourceVersion = "99"
	aRecreated := runningPod("shop", "cart-a", "ua2", "n3", "10.0.0.9")
	relabelled := b.DeepCopy()
	relabelled.Name = "front-b" // out of scope (names do not change, but a resync may bring such a pod)

	type step struct {
		u    update
		want []Event
	}
	ta, tb := FromPod(a), FromPod(b)
	for i, st := range []step{
		{update{resync: true, ns: "shop", pods: []corev1.Pod{*a, *other}}, []Event{{Added, ta}}},
		{update{pod: b}, []Event{{Added, tb}}},
		{update{pod: b}, nil}, // duplicate
		{update{pod: aMoved}, []Event{{Modified, FromPod(aMoved)}}},
		{update{pod: aNoise}, nil}, // nothing a capture cares about changed
		{update{pod: aRecreated}, []Event{{Added, FromPod(aRecreated)}}},
		{update{pod: a, deleted: true}, []Event{{Deleted, FromPod(aMoved)}}},
		{update{pod: a, deleted: true}, nil}, // already gone
		// A relist of "web" that no longer has cart-b removes it, and only it.
		{update{resync: true, ns: "web", pods: nil}, []Event{{Deleted, tb}}},
		{update{resync: true, ns: "shop", pods: []corev1.Pod{*aRecreated, *relabelled}}, nil},
	} {
		got := tr.apply(st.u)
		if d := cmp.Diff(st.want, got); d != "" {
			t.Errorf("step %d (-want +got):\n%s", i, d)
		}
	}
}

// listWithRV makes the fake's pod lists carry a resource version, as an
// API server's do.
func listWithRV(c *fake.Clientset) {
	react := k8stesting.ObjectReaction(c.Tracker())
	c.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		_, obj, err := react(a)
		if err != nil {
			return true, nil, err
		}
		obj.(*corev1.PodList).ResourceVersion = "100"
		return true, obj, nil
	})
}

// watching signals each watch the fake starts. The fake, unlike an API
// server, does not replay from a resource version, so tests wait for the
// watch before they change anything.
func watching(c *fake.Clientset) <-chan struct{} {
	ch := make(chan struct{}, 16)
	c.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := c.Tracker().Watch(a.GetResource(), a.GetNamespace(), a.(k8stesting.WatchActionImpl).ListOptions)
		ch <- struct{}{}
		return true, w, err
	})
	return ch
}

func next(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("events closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Event{}
}

func noEvent(t *testing.T, ch <-chan Event) {
	t.Helper()
	select {
	case e := <-ch:
		t.Fatalf("unexpected event %+v", e)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := fake.NewClientset(runningPod("shop", "cart-1", "u1", "n1", "10.0.0.1"), runningPod("shop", "front-1", "u2", "n1", "10.0.0.2"))
	listWithRV(c)
	started := watching(c)
	s, _ := NewScope(ScopeOptions{Namespaces: []string{"shop"}, PodQuery: "^cart"})
	evs, err := Watch(ctx, c, s)
	if err != nil {
		t.Fatal(err)
	}
	if e := next(t, evs); e.Type != Added || e.Target.Name != "cart-1" {
		t.Fatalf("first event %+v", e)
	}
	<-started
	pods := c.CoreV1().Pods("shop")
	if _, err := pods.Create(ctx, runningPod("shop", "cart-2", "u3", "n2", "10.0.0.3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, evs); e.Type != Added || e.Target.Name != "cart-2" || e.Target.Node != "n2" {
		t.Fatalf("event %+v", e)
	}
	if _, err := pods.Create(ctx, runningPod("shop", "front-2", "u4", "n2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	noEvent(t, evs)
	p := runningPod("shop", "cart-2", "u3", "n2", "10.0.0.3")
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, evs); e.Type != Modified || e.Target.Ready {
		t.Fatalf("event %+v", e)
	}
	if err := pods.Delete(ctx, "cart-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, evs); e.Type != Deleted || e.Target.Name != "cart-1" {
		t.Fatalf("event %+v", e)
	}
	if n := len(started); n != 0 {
		t.Errorf("%d more watches started: the first one should have lasted", n)
	}
	cancel()
	for range evs { // closes once ctx ends
	}
}

func TestWatchRelistsWhenTheWatchExpires(t *testing.T) {
	old := relistBackoff
	relistBackoff = time.Millisecond
	t.Cleanup(func() { relistBackoff = old })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := fake.NewClientset(runningPod("shop", "cart-1", "u1", "n1", "10.0.0.1"), runningPod("shop", "cart-2", "u2", "n1", "10.0.0.2"))
	listWithRV(c)
	fw := watch.NewFake()
	watches := 0
	c.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		watches++
		if watches == 1 {
			return true, fw, nil
		}
		return true, watch.NewFake(), nil // later watches stay quiet
	})
	s, _ := NewScope(ScopeOptions{Namespaces: []string{"shop"}})
	evs, err := Watch(ctx, c, s)
	if err != nil {
		t.Fatal(err)
	}
	next(t, evs)
	next(t, evs)
	// While the watch is down, cart-1 goes and cart-3 comes.
	if err := c.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), "shop", "cart-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Tracker().Add(runningPod("shop", "cart-3", "u3", "n2", "10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	gone := apierrors.NewResourceExpired("too old resource version: 100 (200)")
	gone.ErrStatus.Code = http.StatusGone
	fw.Error(&gone.ErrStatus)
	got := map[string]EventType{}
	for range 2 {
		e := next(t, evs)
		got[e.Target.Name] = e.Type
	}
	if d := cmp.Diff(map[string]EventType{"cart-1": Deleted, "cart-3": Added}, got); d != "" {
		t.Errorf("events after relist (-want +got):\n%s", d)
	}
	noEvent(t, evs)
}

func TestWatchFirstListError(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "", nil)
	})
	s, _ := NewScope(ScopeOptions{Namespaces: []string{"shop"}})
	_, err := Watch(context.Background(), c, s)
	if !apierrors.IsForbidden(err) || err.Error() != `list pods in namespace shop: pods is forbidden: <nil>` {
		t.Fatalf("Watch error = %v", err)
	}
}

func TestList(t *testing.T) {
	c := fake.NewClientset(
		runningPod("web", "cart-b", "u2", "n2"),
		runningPod("shop", "cart-a", "u1", "n1"),
		runningPod("shop", "front", "u3", "n1"),
	)
	s, _ := NewScope(ScopeOptions{AllNamespaces: true, PodQuery: "cart"})
	got, err := List(context.Background(), c, s)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, t := range got {
		keys = append(keys, t.Key())
	}
	if d := cmp.Diff([]string{"shop/cart-a", "web/cart-b"}, keys); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
}
