package targets

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Workload names what stands behind an IP. The JSON form is the wire form
// of the hub's ipmap and matches entry.Endpoint's fields.
type Workload struct {
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Node      string `json:"node,omitempty"`
	Service   string `json:"service,omitempty"`
	// Workload is "kind/name" of the pod's top owner, e.g.
	// "deployment/cart", "statefulset/db", "cronjob/backup".
	Workload string `json:"workload,omitempty"`
}

// IPMap maps an IP (as netip.Addr.String prints it) to its names.
type IPMap map[string]Workload

// OwnerLookup returns the controller owner of a ReplicaSet or a Job (the
// object itself when it has none), and false when that is unknown (not
// permitted, not found).
type OwnerLookup func(namespace, kind, name string) (metav1.OwnerReference, bool)

// Label that the Deployment controller puts on ReplicaSets and their pods.
const podTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey

// WorkloadOf names a pod's top owner by its owner chain: a ReplicaSet's
// Deployment, a Job's CronJob. Where lookup cannot tell, a ReplicaSet
// whose name ends with the pod's pod-template-hash is taken for its
// Deployment's. A pod without a controller has no workload ("").
func WorkloadOf(p *corev1.Pod, lookup OwnerLookup) string {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return ""
	}
	switch ref.Kind {
	case "ReplicaSet", "Job":
		if lookup != nil {
			if up, ok := lookup(p.Namespace, ref.Kind, ref.Name); ok {
				return kindName(up.Kind, up.Name)
			}
		}
		if ref.Kind == "ReplicaSet" {
			if h := p.Labels[podTemplateHashLabel]; h != "" && strings.HasSuffix(ref.Name, "-"+h) {
				return kindName("Deployment", strings.TrimSuffix(ref.Name, "-"+h))
			}
		}
	}
	return kindName(ref.Kind, ref.Name)
}

func kindName(kind, name string) string { return strings.ToLower(kind) + "/" + name }

// BuildIPMap names every IP it can: each pod's IPs (pod, namespace, node,
// the first Service selecting it, workload), each Service's cluster IPs,
// and each node's addresses. Pods on the host network are left out (their
// IP is the node's, shared by many), and so are finished pods (their IPs
// are handed out again).
func BuildIPMap(pods []corev1.Pod, services []corev1.Service, nodes []corev1.Node, lookup OwnerLookup) IPMap {
	m := IPMap{}
	for i := range nodes {
		for _, a := range nodes[i].Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				m[a.Address] = Workload{Node: nodes[i].Name}
			}
		}
	}
	byNS := servicesByNamespace(services)
	for i := range pods {
		p := &pods[i]
		if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		w := Workload{
			Pod: p.Name, Namespace: p.Namespace, Node: p.Spec.NodeName,
			Service: serviceOf(p, byNS[p.Namespace]), Workload: WorkloadOf(p, lookup),
		}
		for _, ip := range podIPs(p) {
			m[ip] = w
		}
	}
	for i := range services {
		s := &services[i]
		for _, ip := range clusterIPs(s) {
			m[ip] = Workload{Namespace: s.Namespace, Service: s.Name}
		}
	}
	return m
}

// selectingService is a Service with a selector, parsed once.
type selectingService struct {
	name string
	sel  labels.Selector
}

func servicesByNamespace(services []corev1.Service) map[string][]selectingService {
	out := map[string][]selectingService{}
	for i := range services {
		s := &services[i]
		if len(s.Spec.Selector) == 0 {
			continue // selects nothing by itself (endpoints managed by hand)
		}
		out[s.Namespace] = append(out[s.Namespace], selectingService{name: s.Name, sel: labels.SelectorFromSet(s.Spec.Selector)})
	}
	for _, ss := range out {
		slices.SortFunc(ss, func(a, b selectingService) int { return strings.Compare(a.name, b.name) })
	}
	return out
}

func serviceOf(p *corev1.Pod, ss []selectingService) string {
	for _, s := range ss {
		if s.sel.Matches(labels.Set(p.Labels)) {
			return s.name
		}
	}
	return ""
}

func clusterIPs(s *corev1.Service) []string {
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	}
	return slices.DeleteFunc(slices.Clone(ips), func(ip string) bool { return ip == "" || ip == corev1.ClusterIPNone })
}

// Resolver loads IP maps from the cluster with the user's credentials. It
// lists cluster-wide when permitted, else the namespaces it is given, and
// remembers owners across loads (a ReplicaSet's Deployment never changes).
// Optional reads that are forbidden (services, nodes, ReplicaSets, Jobs)
// leave names out rather than fail.
type Resolver struct {
	Client kubernetes.Interface
	// Namespaces to list when cluster-wide listing is forbidden.
	Namespaces []string

	mu        sync.Mutex
	owners    map[string]metav1.OwnerReference // by ownerKey
	forbidden map[string]bool                  // kinds whose Get is forbidden
}

// Load lists pods, services and nodes, and builds the IP map.
func (r *Resolver) Load(ctx context.Context) (IPMap, error) {
	r.mu.Lock()
	if r.owners == nil {
		r.owners = map[string]metav1.OwnerReference{}
		r.forbidden = map[string]bool{}
	}
	r.mu.Unlock()
	nss := []string{metav1.NamespaceAll}
	pods, err := r.listPods(ctx, metav1.NamespaceAll)
	if apierrors.IsForbidden(err) && len(r.Namespaces) > 0 {
		nss, pods, err = r.Namespaces, nil, nil
		for _, ns := range r.Namespaces {
			p, lerr := r.listPods(ctx, ns)
			if lerr != nil {
				return nil, lerr
			}
			pods = append(pods, p...)
		}
	}
	if err != nil {
		return nil, err
	}
	var services []corev1.Service
	for _, ns := range nss {
		l, err := r.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			if apierrors.IsForbidden(err) {
				continue
			}
			return nil, fmt.Errorf("list services in %s: %w", where(ns), err)
		}
		services = append(services, l.Items...)
	}
	var nodes []corev1.Node
	if l, err := r.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		nodes = l.Items
	} else if !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	r.resolveOwners(ctx, pods)
	return BuildIPMap(pods, services, nodes, r.cached), nil
}

func (r *Resolver) listPods(ctx context.Context, ns string) ([]corev1.Pod, error) {
	pods, _, err := listPods(ctx, r.Client, Scope{}, ns)
	return pods, err
}

// resolveOwners reads the owner of each ReplicaSet and Job that owns a
// pod and is not known yet. A kind whose reads are forbidden is not asked
// again: WorkloadOf falls back on names.
func (r *Resolver) resolveOwners(ctx context.Context, pods []corev1.Pod) {
	for i := range pods {
		ref := metav1.GetControllerOf(&pods[i])
		if ref == nil || (ref.Kind != "ReplicaSet" && ref.Kind != "Job") {
			continue
		}
		key := ownerKey(pods[i].Namespace, ref.Kind, ref.Name)
		r.mu.Lock()
		_, known := r.owners[key]
		skip := known || r.forbidden[ref.Kind]
		r.mu.Unlock()
		if skip {
			continue
		}
		up, err := r.getOwner(ctx, pods[i].Namespace, ref.Kind, ref.Name)
		r.mu.Lock()
		switch {
		case err == nil:
			r.owners[key] = up
		case apierrors.IsForbidden(err):
			r.forbidden[ref.Kind] = true
		}
		r.mu.Unlock()
	}
}

func ownerKey(ns, kind, name string) string { return ns + "/" + kind + "/" + name }

// getOwner reads a ReplicaSet or Job and returns its controller, or a
// reference to itself when it has none.
func (r *Resolver) getOwner(ctx context.Context, ns, kind, name string) (metav1.OwnerReference, error) {
	var obj metav1.Object
	var err error
	switch kind {
	case "ReplicaSet":
		obj, err = r.Client.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
	case "Job":
		obj, err = r.Client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	default:
		return metav1.OwnerReference{}, fmt.Errorf("no owner lookup for %s", kind)
	}
	if err != nil {
		return metav1.OwnerReference{}, err
	}
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		return *ref, nil
	}
	return metav1.OwnerReference{Kind: kind, Name: name}, nil
}

// cached is the OwnerLookup over what resolveOwners found.
func (r *Resolver) cached(ns, kind, name string) (metav1.OwnerReference, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, ok := r.owners[ownerKey(ns, kind, name)]
	return ref, ok
}
