package targets

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Target is one pod to capture, as the hub and the workers need it. The
// JSON form is the wire form of the hub's targets message.
type Target struct {
	UID       types.UID `json:"uid"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Node      string    `json:"node,omitempty"`
	IPs       []string  `json:"ips,omitempty"`
	// Running: at least one container runs, so the pod's netns exists.
	Running bool `json:"running"`
	Ready   bool `json:"ready"`
	// Terminating: deleted, its containers still stopping.
	Terminating bool `json:"terminating,omitempty"`
	// HostNetwork pods share the node's netns: capturing them captures
	// the whole node.
	HostNetwork bool `json:"hostNetwork,omitempty"`
}

// Key is "namespace/name".
func (t Target) Key() string { return t.Namespace + "/" + t.Name }

// FromPod reads a Target from a pod.
func FromPod(p *corev1.Pod) Target {
	t := Target{
		UID:         p.UID,
		Namespace:   p.Namespace,
		Name:        p.Name,
		Node:        p.Spec.NodeName,
		IPs:         podIPs(p),
		Terminating: p.DeletionTimestamp != nil,
		HostNetwork: p.Spec.HostNetwork,
	}
	if p.Status.Phase == corev1.PodRunning {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil {
				t.Running = true
				break
			}
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			t.Ready = c.Status == corev1.ConditionTrue
		}
	}
	return t
}

func podIPs(p *corev1.Pod) []string {
	var ips []string
	for _, ip := range p.Status.PodIPs {
		if ip.IP != "" {
			ips = append(ips, ip.IP)
		}
	}
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = []string{p.Status.PodIP}
	}
	return ips
}

// Equal compares every field.
func (t Target) Equal(o Target) bool {
	return t.UID == o.UID && t.Namespace == o.Namespace && t.Name == o.Name && t.Node == o.Node &&
		slices.Equal(t.IPs, o.IPs) && t.Running == o.Running && t.Ready == o.Ready &&
		t.Terminating == o.Terminating && t.HostNetwork == o.HostNetwork
}

// Nodes lists the distinct nodes of targets, sorted: where workers go.
func Nodes(ts []Target) []string {
	var nodes []string
	for _, t := range ts {
		if t.Node != "" {
			nodes = append(nodes, t.Node)
		}
	}
	slices.Sort(nodes)
	return slices.Compact(nodes)
}
