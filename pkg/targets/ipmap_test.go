package targets

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

func owned(p *corev1.Pod, kind, name string) *corev1.Pod {
	p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr.To(true)}}
	return p
}

func withHash(p *corev1.Pod, h string) *corev1.Pod {
	p.Labels = map[string]string{"app": "shop", "pod-template-hash": h}
	return p
}

func TestWorkloadOf(t *testing.T) {
	lookup := func(ns, kind, name string) (metav1.OwnerReference, bool) {
		switch kind + "/" + name {
		case "ReplicaSet/cart-7d9f8b6c5d":
			return metav1.OwnerReference{Kind: "Deployment", Name: "cart"}, true
		case "ReplicaSet/standalone-abc12":
			return metav1.OwnerReference{Kind: "ReplicaSet", Name: "standalone-abc12"}, true
		case "ReplicaSet/roll-6f7c9":
			return metav1.OwnerReference{Kind: "Rollout", Name: "roll"}, true
		case "Job/backup-28391234":
			return metav1.OwnerReference{Kind: "CronJob", Name: "backup"}, true
		}
		return metav1.OwnerReference{}, false
	}
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		lookup OwnerLookup
		want   string
	}{
		{"deployment by owner chain", owned(runningPod("s", "p", "u", ""), "ReplicaSet", "cart-7d9f8b6c5d"), lookup, "deployment/cart"},
		{"deployment by hash when the chain is unknown", withHash(owned(runningPod("s", "p", "u", ""), "ReplicaSet", "front-5c8d7f9b4"), "5c8d7f9b4"), lookup, "deployment/front"},
		{"deployment by hash without lookup", withHash(owned(runningPod("s", "p", "u", ""), "ReplicaSet", "front-5c8d7f9b4"), "5c8d7f9b4"), nil, "deployment/front"},
		{"replicaset whose name lacks the hash", withHash(owned(runningPod("s", "p", "u", ""), "ReplicaSet", "odd"), "5c8d7f9b4"), nil, "replicaset/odd"},
		{"replicaset known to have no owner", withHash(owned(runningPod("s", "p", "u", ""), "ReplicaSet", "standalone-abc12"), "abc12"), lookup, "replicaset/standalone-abc12"},
		{"custom owner of a replicaset", owned(runningPod("s", "p", "u", ""), "ReplicaSet", "roll-6f7c9"), lookup, "rollout/roll"},
		{"cronjob", owned(runningPod("s", "p", "u", ""), "Job", "backup-28391234"), lookup, "cronjob/backup"},
		{"job, chain unknown", owned(runningPod("s", "p", "u", ""), "Job", "migrate"), lookup, "job/migrate"},
		{"statefulset", owned(runningPod("s", "p", "u", ""), "StatefulSet", "db"), lookup, "statefulset/db"},
		{"daemonset", owned(runningPod("s", "p", "u", ""), "DaemonSet", "agent"), lookup, "daemonset/agent"},
		{"bare pod", runningPod("s", "p", "u", ""), lookup, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := WorkloadOf(tc.pod, tc.lookup); got != tc.want {
				t.Errorf("WorkloadOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuildIPMap(t *testing.T) {
	cart := withHash(owned(runningPod("shop", "cart-7d9f8b6c5d-x1", "u1", "n1", "10.0.0.1", "fd00::1"), "ReplicaSet", "cart-7d9f8b6c5d"), "7d9f8b6c5d")
	cart.Labels["app"] = "cart"
	db := owned(runningPod("shop", "db-0", "u2", "n2", "10.0.0.2"), "StatefulSet", "db")
	db.Labels = map[string]string{"app": "db"}
	hostNet := runningPod("kube-system", "kube-proxy-x", "u3", "n1", "192.168.1.10")
	hostNet.Spec.HostNetwork = true
	done := runningPod("shop", "job-x", "u4", "n1", "10.0.0.1")
	done.Status.Phase = corev1.PodSucceeded
	pods := []corev1.Pod{*done, *cart, *db, *hostNet}
	services := []corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "cart"}, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10", "fd00:96::10"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "a-cart-too"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "cart"}, ClusterIP: "10.96.0.11"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "db"}, ClusterIP: corev1.ClusterIPNone}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "cart"}, Spec: corev1.ServiceSpec{ // other namespace
			Selector: map[string]string{"app": "cart"}, ClusterIP: "10.96.0.12"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "external"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.13"}},
	}
	nodes := []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}, {Type: corev1.NodeHostName, Address: "n1.local"},
	}}}}
	cartW := Workload{Pod: "cart-7d9f8b6c5d-x1", Namespace: "shop", Node: "n1", Service: "a-cart-too", Workload: "deployment/cart"}
	want := IPMap{
		"10.0.0.1":     cartW, // the finished pod's stale IP does not win
		"fd00::1":      cartW,
		"10.0.0.2":     {Pod: "db-0", Namespace: "shop", Node: "n2", Service: "db", Workload: "statefulset/db"},
		"10.96.0.10":   {Namespace: "shop", Service: "cart"},
		"fd00:96::10":  {Namespace: "shop", Service: "cart"},
		"10.96.0.11":   {Namespace: "shop", Service: "a-cart-too"},
		"10.96.0.12":   {Namespace: "web", Service: "cart"},
		"10.96.0.13":   {Namespace: "shop", Service: "external"},
		"192.168.1.10": {Node: "n1"}, // the node, not its host-network pod
	}
	if d := cmp.Diff(want, BuildIPMap(pods, services, nodes, nil)); d != "" {
		t.Errorf("BuildIPMap (-want +got):\n%s", d)
	}
}

func TestResolverLoad(t *testing.T) {
	cart := owned(runningPod("shop", "cart-7d9f8b6c5d-x1", "u1", "n1", "10.0.0.1"), "ReplicaSet", "cart-7d9f8b6c5d")
	cart2 := owned(runningPod("shop", "cart-7d9f8b6c5d-x2", "u2", "n1", "10.0.0.2"), "ReplicaSet", "cart-7d9f8b6c5d")
	job := owned(runningPod("ops", "backup-28391234-q", "u3", "n2", "10.0.0.3"), "Job", "backup-28391234")
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-7d9f8b6c5d",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "cart", Controller: ptr.To(true)}}}}
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "backup-28391234",
		OwnerReferences: []metav1.OwnerReference{{Kind: "CronJob", Name: "backup", Controller: ptr.To(true)}}}}

	t.Run("cluster-wide, owners read once", func(t *testing.T) {
		c := fake.NewClientset(cart, cart2, job, rs, j)
		r := &Resolver{Client: c}
		for range 2 {
			m, err := r.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if m["10.0.0.1"].Workload != "deployment/cart" || m["10.0.0.2"].Workload != "deployment/cart" || m["10.0.0.3"].Workload != "cronjob/backup" {
				t.Fatalf("map = %+v", m)
			}
		}
		gets := 0
		for _, a := range c.Actions() {
			if a.GetVerb() == "get" {
				gets++
			}
		}
		if gets != 2 {
			t.Errorf("%d owner reads over two loads, want 2 (one ReplicaSet, one Job)", gets)
		}
	})

	t.Run("namespaces only, no owner reads", func(t *testing.T) {
		c := fake.NewClientset(withHash(cart.DeepCopy(), "7d9f8b6c5d"), job, rs, j)
		c.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.GetNamespace() == "" {
				return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "", nil)
			}
			return false, nil, nil
		})
		c.PrependReactor("get", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(a.GetResource().GroupResource(), "", nil)
		})
		r := &Resolver{Client: c, Namespaces: []string{"shop"}}
		m, err := r.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := IPMap{"10.0.0.1": {Pod: "cart-7d9f8b6c5d-x1", Namespace: "shop", Node: "n1", Workload: "deployment/cart"}}
		if d := cmp.Diff(want, m); d != "" {
			t.Errorf("map (-want +got):\n%s", d)
		}
		if _, err := r.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		gets := 0
		for _, a := range c.Actions() {
			if a.GetVerb() == "get" {
				gets++
			}
		}
		if gets != 1 {
			t.Errorf("%d forbidden owner reads, want 1 (then none)", gets)
		}
	})
}
