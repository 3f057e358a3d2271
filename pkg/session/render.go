package session

import (
	"bytes"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// PlaceholderUID stands for a UID that exists only once an object is
// applied, in rendered (not applied) objects.
const PlaceholderUID types.UID = "set-when-applied"

// Objects builds every object of the session as Start and SyncWorkers
// apply them, for --dry-run and the reference manifests: owner references
// carry PlaceholderUID, and workers dial hubIP.
func (s Spec) Objects(p *PKI, hubIP string, nodes []string) []runtime.Object {
	hub := s.HubPod()
	owned := hub.DeepCopy()
	owned.UID = PlaceholderUID
	hubOwner := ptr.To(PodOwner(owned))
	var objs []runtime.Object
	if s.Shared {
		objs = append(objs, s.Secret(p, hubOwner), s.ServiceAccount(hubOwner), s.Role(hubOwner), s.RoleBinding(hubOwner))
	} else {
		ns := s.NamespaceObject()
		owner := ns.DeepCopy()
		owner.UID = PlaceholderUID
		nsOwner := ptr.To(NamespaceOwner(owner))
		objs = append(objs, ns, s.Secret(p, hubOwner), s.ServiceAccount(nil), s.ClusterRole(nsOwner), s.ClusterRoleBinding(nsOwner))
	}
	objs = append(objs, hub)
	for _, n := range nodes {
		objs = append(objs, s.WorkerPod(n, hubIP, hubOwner))
	}
	return objs
}

// RenderYAML writes objects as one multi-document YAML stream, without
// the empty fields (creationTimestamp, spec and status) that typed objects
// carry.
func RenderYAML(objs []runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := toYAML(o)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

func toYAML(o runtime.Object) ([]byte, error) {
	j, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	for _, k := range []string{"spec", "status"} {
		if v, ok := m[k].(map[string]any); ok && len(v) == 0 {
			delete(m, k)
		}
	}
	if spec, ok := m["spec"].(map[string]any); ok {
		stripEmptyResources(spec)
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", o.GetObjectKind().GroupVersionKind().Kind, err)
	}
	return b, nil
}

// stripEmptyResources drops "resources: {}" of containers with none.
func stripEmptyResources(spec map[string]any) {
	cs, _ := spec["containers"].([]any)
	for _, c := range cs {
		cm, _ := c.(map[string]any)
		if r, ok := cm["resources"].(map[string]any); ok && len(r) == 0 {
			delete(cm, "resources")
		}
	}
}

// PlaceholderPKI fills the Secret of rendered objects (--dry-run, the
// reference manifests), which must never show real keys.
func PlaceholderPKI() *PKI {
	return &PKI{
		CACert:  []byte("PLACEHOLDER: the session CA certificate (PEM), generated per session in memory\n"),
		HubCert: []byte("PLACEHOLDER: the hub certificate (PEM) for shark-hub and shark-hub.<namespace>.svc\n"),
		HubKey:  []byte("PLACEHOLDER: the hub private key (PEM, ECDSA P-256)\n"),
		Token:   "PLACEHOLDER: 64 hex digits (32 random bytes)",
	}
}
