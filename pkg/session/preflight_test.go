package session

import (
	"context"
	"errors"
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

func readyNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

// denySSAR answers access reviews: allowed unless the permission (as
// Permission.String prints it) is in denied.
func denySSAR(denied ...string) k8stesting.ReactionFunc {
	deny := map[string]bool{}
	for _, d := range denied {
		deny[d] = true
	}
	return func(a k8stesting.Action) (bool, runtime.Object, error) {
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		ra := r.Spec.ResourceAttributes
		p := Permission{Verb: ra.Verb, Group: ra.Group, Resource: ra.Resource, Subresource: ra.Subresource, Namespace: ra.Namespace}
		r.Status.Allowed = !deny[p.String()]
		return true, r, nil
	}
}

func TestPreflight(t *testing.T) {
	shop := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
	teamA := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	baseline := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}}}
	restricted := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-c", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	privileged := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-d", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}
	cordoned := readyNode("cordoned")
	cordoned.Spec.Unschedulable = true
	tainted := readyNode("control-plane")
	tainted.Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
	notReady := readyNode("down")
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	preferNo := readyNode("prefer")
	preferNo.Spec.Taints = []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectPreferNoSchedule}}

	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		shared  string
		targets []string
		react   func(*fakeCluster)
		wantIs  error
		wantMsg string
	}{
		{name: "all good", objs: []runtime.Object{shop, readyNode("n1")}, targets: []string{"shop"}},
		{name: "all namespaces", objs: []runtime.Object{readyNode("n1")}, targets: []string{""}},
		{
			name: "cluster unreachable", targets: []string{"shop"},
			wantIs:  ErrClusterUnreachable,
			wantMsg: `cannot reach the cluster at https://10.0.0.1:6443: Get "https://10.0.0.1:6443/version": dial tcp 10.0.0.1:6443: connect: connection refused`,
		},
		{
			name: "bad credentials", targets: []string{"shop"},
			wantIs:  ErrUnauthorized,
			wantMsg: "the cluster rejected the credentials at https://10.0.0.1:6443: check your kubeconfig (Unauthorized)",
		},
		{
			name: "target namespace missing", objs: []runtime.Object{shop, readyNode("n1")}, targets: []string{"shop", "shpo"},
			wantIs: ErrNamespaceNotFound, wantMsg: `namespace "shpo" not found`,
		},
		{
			name: "shark namespace missing", objs: []runtime.Object{shop, readyNode("n1")}, shared: "team-x", targets: []string{"shop"},
			wantIs: ErrNamespaceNotFound, wantMsg: `namespace "team-x" not found`,
		},
		{
			name: "cannot read namespaces: existence is not checked", objs: []runtime.Object{readyNode("n1")}, targets: []string{"shop"},
			react: func(c *fakeCluster) { c.PrependReactor("get", "namespaces", forbidden) },
		},
		{
			name: "cannot create pods in the session namespace", objs: []runtime.Object{shop, readyNode("n1")}, targets: []string{"shop"},
			react: func(c *fakeCluster) {
				c.PrependReactor("create", "selfsubjectaccessreviews", denySSAR("create pods in namespace shark-abc123"))
			},
			wantIs:  ErrMissingPermission,
			wantMsg: "missing permission: create pods in namespace shark-abc123 (or use --shark-namespace)",
		},
		{
			name: "cannot create namespaces or cluster roles", objs: []runtime.Object{shop, readyNode("n1")}, targets: []string{"shop"},
			react: func(c *fakeCluster) {
				c.PrependReactor("create", "selfsubjectaccessreviews", denySSAR("create namespaces", "create clusterroles.rbac.authorization.k8s.io"))
			},
			wantIs:  ErrMissingPermission,
			wantMsg: "missing permission: create namespaces, create clusterroles.rbac.authorization.k8s.io (or use --shark-namespace)",
		},
		{
			name: "cannot watch the targets: no hint", objs: []runtime.Object{shop, readyNode("n1")}, targets: []string{"shop"},
			react: func(c *fakeCluster) {
				c.PrependReactor("create", "selfsubjectaccessreviews", denySSAR("watch pods in namespace shop"))
			},
			wantIs:  ErrMissingPermission,
			wantMsg: "missing permission: watch pods in namespace shop",
		},
		{
			name: "shared: cannot port-forward", objs: []runtime.Object{shop, teamA, readyNode("n1")}, shared: "team-a", targets: []string{"shop"},
			react: func(c *fakeCluster) {
				c.PrependReactor("create", "selfsubjectaccessreviews", denySSAR("create pods/portforward in namespace team-a"))
			},
			wantIs:  ErrMissingPermission,
			wantMsg: "missing permission: create pods/portforward in namespace team-a",
		},
		{
			name: "shared: baseline namespace", objs: []runtime.Object{shop, baseline, readyNode("n1")}, shared: "team-b", targets: []string{"shop"},
			wantIs:  ErrPodSecurity,
			wantMsg: `pod security admission would reject the capture pods: namespace "team-b" enforces Pod Security "baseline", and the workers need "privileged" (host network, host PID, capabilities); label it pod-security.kubernetes.io/enforce=privileged or choose another --shark-namespace`,
		},
		{
			name: "shared: restricted namespace", objs: []runtime.Object{shop, restricted, readyNode("n1")}, shared: "team-c", targets: []string{"shop"},
			wantIs: ErrPodSecurity,
		},
		{name: "shared: privileged namespace", objs: []runtime.Object{shop, privileged, readyNode("n1")}, shared: "team-d", targets: []string{"shop"}},
		{
			name: "no schedulable node", objs: []runtime.Object{shop, cordoned, tainted, notReady}, targets: []string{"shop"},
			wantIs:  ErrNoSchedulableNodes,
			wantMsg: "no schedulable nodes: none of the 3 nodes is Ready, uncordoned and free of NoSchedule/NoExecute taints",
		},
		{name: "a PreferNoSchedule taint is fine", objs: []runtime.Object{shop, cordoned, preferNo}, targets: []string{"shop"}},
		{
			name: "cannot list nodes: not checked", objs: []runtime.Object{shop}, targets: []string{"shop"},
			react: func(c *fakeCluster) { c.PrependReactor("list", "nodes", forbidden) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCluster(t, tc.objs...)
			switch tc.wantIs {
			case ErrClusterUnreachable:
				c.PrependReactor("get", "version", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, fmt.Errorf(`Get "https://10.0.0.1:6443/version": dial tcp 10.0.0.1:6443: connect: connection refused`)
				})
			case ErrUnauthorized:
				c.PrependReactor("get", "version", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewUnauthorized("Unauthorized")
				})
			}
			if tc.react != nil {
				tc.react(c)
			}
			o := startOptions(tc.shared)
			m := &Manager{Client: c, Host: "https://10.0.0.1:6443"}
			err := m.Preflight(context.Background(), mustSpec(t, o), tc.targets)
			switch {
			case tc.wantIs == nil && err != nil:
				t.Fatalf("Preflight: %v", err)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Fatalf("Preflight = %v, want %v", err, tc.wantIs)
			case tc.wantMsg != "" && err.Error() != tc.wantMsg:
				t.Errorf("Preflight error:\n got %s\nwant %s", err, tc.wantMsg)
			}
			for _, a := range c.Actions() {
				if v := a.GetVerb(); v == "patch" || v == "delete" || (v == "create" && a.GetResource().Resource != "selfsubjectaccessreviews") {
					t.Errorf("preflight changed the cluster: %s %s", v, a.GetResource().Resource)
				}
			}
		})
	}
}

func TestRequiredPermissionsCoverTheSession(t *testing.T) {
	fixedID(t)
	s := mustSpec(t, testOptions())
	has := map[string]bool{}
	for _, p := range RequiredPermissions(s, []string{"shop", "shop"}) {
		if has[p.String()] {
			t.Errorf("asked twice: %s", p)
		}
		has[p.String()] = true
	}
	for _, want := range []string{
		"create namespaces", "patch namespaces", "delete namespaces",
		"create clusterroles.rbac.authorization.k8s.io", "create clusterrolebindings.rbac.authorization.k8s.io",
		"create secrets in namespace shark-abc123", "create serviceaccounts in namespace shark-abc123",
		"create pods in namespace shark-abc123", "patch pods in namespace shark-abc123", "delete pods in namespace shark-abc123",
		"create pods/portforward in namespace shark-abc123",
		"list pods in namespace shop", "watch pods in namespace shop",
	} {
		if !has[want] {
			t.Errorf("RequiredPermissions lacks %q", want)
		}
	}
	o := testOptions()
	o.SharkNamespace = "team-a"
	for _, p := range RequiredPermissions(mustSpec(t, o), []string{""}) {
		if p.Namespace == "" && p.Resource != "pods" {
			t.Errorf("shared mode asks for cluster-wide %s", p)
		}
	}
}
