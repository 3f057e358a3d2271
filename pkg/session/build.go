package session

import (
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Pod Security Admission labels of the session namespace.
const (
	psaEnforce = "pod-security.kubernetes.io/enforce"
	psaAudit   = "pod-security.kubernetes.io/audit"
	psaWarn    = "pod-security.kubernetes.io/warn"
)

// Spec is the identity and the options of one session: all the pure
// builders below need. It holds no client and touches nothing.
type Spec struct {
	ID        string
	Namespace string
	// Shared is --shark-namespace mode: the namespace exists and is not
	// ours, so everything is owned by the hub pod, which deletes itself.
	Shared  bool
	Options Options

	names names
}

// NewSpec validates opts and fixes the session's id and namespace.
func NewSpec(opts Options) (Spec, error) {
	if err := opts.Validate(); err != nil {
		return Spec{}, err
	}
	id := opts.ID
	if id == "" {
		id = newID()
	}
	s := Spec{ID: id, Namespace: SessionNamespace(id), Options: opts}
	if opts.SharkNamespace != "" {
		s.Namespace = opts.SharkNamespace
		s.Shared = true
	}
	s.names = namesFor(id, s.Shared)
	return s, nil
}

// HubPodName is the name of the hub pod.
func (s Spec) HubPodName() string { return s.names.hub }

// SecretName is the name of the TLS Secret.
func (s Spec) SecretName() string { return s.names.secret }

// WorkerPodName is the name of the worker pod on node.
func (s Spec) WorkerPodName(node string) string { return s.names.worker + NodeHash(node) }

func (s Spec) meta(name, component string, owner *metav1.OwnerReference) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: name, Namespace: s.Namespace, Labels: Labels(s.ID, component)}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return m
}

// PodOwner is the owner reference of objects that go with the hub pod. It
// is not a controller reference: nothing reconciles them.
func PodOwner(pod *corev1.Pod) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         "v1",
		Kind:               "Pod",
		Name:               pod.Name,
		UID:                pod.UID,
		Controller:         ptr.To(false),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// NamespaceOwner is the owner reference of cluster-scoped objects, which
// go with the session namespace.
func NamespaceOwner(ns *corev1.Namespace) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: "v1",
		Kind:       "Namespace",
		Name:       ns.Name,
		UID:        ns.UID,
		Controller: ptr.To(false),
	}
}

// NamespaceObject is the session namespace. Pod Security "privileged"
// admits the capture pods; audit and warn follow, so no warning is printed
// for what the user asked for.
func (s Spec) NamespaceObject() *corev1.Namespace {
	labels := Labels(s.ID, "")
	labels[psaEnforce] = "privileged"
	labels[psaAudit] = "privileged"
	labels[psaWarn] = "privileged"
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Namespace, Labels: labels},
	}
}

// Secret holds the hub's certificate and key, the CA and the token.
func (s Spec) Secret(p *PKI, owner *metav1.OwnerReference) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: s.meta(s.names.secret, ComponentHub, owner),
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			SecretCACert:  p.CACert,
			SecretHubCert: p.HubCert,
			SecretHubKey:  p.HubKey,
			SecretToken:   []byte(p.Token),
		},
	}
}

// ServiceAccount is the hub's identity, for its self-cleanup only.
func (s Spec) ServiceAccount(owner *metav1.OwnerReference) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: s.meta(s.names.serviceAccount, ComponentHub, owner),
	}
}

// ClusterRole lets the hub delete its own session namespace and nothing
// else: it names the namespace.
func (s Spec) ClusterRole(nsOwner *metav1.OwnerReference) *rbacv1.ClusterRole {
	m := s.meta(s.names.rbac, ComponentHub, nsOwner)
	m.Namespace = ""
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: m,
		Rules: []rbacv1.PolicyRule{{
			APIGroups:     []string{""},
			Resources:     []string{"namespaces"},
			ResourceNames: []string{s.Namespace},
			Verbs:         []string{"delete"},
		}},
	}
}

// ClusterRoleBinding grants ClusterRole to the hub's ServiceAccount.
func (s Spec) ClusterRoleBinding(nsOwner *metav1.OwnerReference) *rbacv1.ClusterRoleBinding {
	m := s.meta(s.names.rbac, ComponentHub, nsOwner)
	m.Namespace = ""
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: m,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: s.names.rbac},
		Subjects:   []rbacv1.Subject{s.hubSubject()},
	}
}

// Role (--shark-namespace mode) lets the hub delete its own pod, which
// takes everything else of the session with it through owner references.
func (s Spec) Role(owner *metav1.OwnerReference) *rbacv1.Role {
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: s.meta(s.names.rbac, ComponentHub, owner),
		Rules: []rbacv1.PolicyRule{{
			APIGroups:     []string{""},
			Resources:     []string{"pods"},
			ResourceNames: []string{s.names.hub},
			Verbs:         []string{"delete"},
		}},
	}
}

// RoleBinding grants Role to the hub's ServiceAccount.
func (s Spec) RoleBinding(owner *metav1.OwnerReference) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: s.meta(s.names.rbac, ComponentHub, owner),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: s.names.rbac},
		Subjects:   []rbacv1.Subject{s.hubSubject()},
	}
}

func (s Spec) hubSubject() rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: s.names.serviceAccount, Namespace: s.Namespace}
}

const (
	tlsVolume     = "tls"
	storageVolume = "storage"
)

// HubPod is the session's hub. It has no owner: in its own namespace the
// namespace's deletion removes it; in a shared one it deletes itself.
func (s Spec) HubPod() *corev1.Pod {
	o := s.Options
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: s.meta(s.names.hub, ComponentHub, nil),
		Spec: corev1.PodSpec{
			ServiceAccountName: s.names.serviceAccount,
			// The hub's token is what lets it delete its session.
			AutomountServiceAccountToken:  ptr.To(true),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			ActiveDeadlineSeconds:         ptr.To(seconds(o.MaxDuration)),
			TerminationGracePeriodSeconds: ptr.To[int64](10),
			EnableServiceLinks:            ptr.To(false),
			NodeSelector:                  map[string]string{corev1.LabelOSStable: "linux"},
			Containers: []corev1.Container{{
				Name:            "hub",
				Image:           o.Image,
				ImagePullPolicy: o.ImagePullPolicy,
				Args:            s.hubArgs(),
				Env:             downwardEnv(),
				Ports: []corev1.ContainerPort{
					{Name: "worker", ContainerPort: HubWorkerPort, Protocol: corev1.ProtocolTCP},
					{Name: "api", ContainerPort: HubAPIPort, Protocol: corev1.ProtocolTCP},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Path: "/healthz", Port: intstr.FromString("api"),
					}},
					PeriodSeconds:    2,
					FailureThreshold: 3,
				},
				Resources:    o.Hub.requirements(),
				VolumeMounts: []corev1.VolumeMount{{Name: tlsVolume, MountPath: TLSMountPath, ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{
				Name: tlsVolume,
				VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: s.names.secret,
					// Group-readable for the hub's non-root user (fsGroup).
					DefaultMode: ptr.To[int32](0o440),
				}},
			}},
		},
	}
	restrictedProfile(pod)
	return pod
}

// hubArgs: --session and --namespace tell the hub what to delete when it
// goes idle: the namespace shark-<session> when it is its own, else its own
// pod ($POD_NAME).
func (s Spec) hubArgs() []string {
	return []string{
		"hub",
		fmt.Sprintf("--listen-worker=:%d", HubWorkerPort),
		fmt.Sprintf("--listen-api=:%d", HubAPIPort),
		"--session=" + s.ID,
		"--namespace=" + s.Namespace,
		"--idle-timeout=" + s.Options.IdleTimeout.String(),
	}
}

// WorkerPod is the capture pod of one node. It dials the hub at hubIP and
// goes when the hub pod goes (owner).
func (s Spec) WorkerPod(node, hubIP string, owner *metav1.OwnerReference) *corev1.Pod {
	o := s.Options
	m := s.meta(s.WorkerPodName(node), ComponentWorker, owner)
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: m,
		Spec: corev1.PodSpec{
			// Pinned: the worker must run where its targets run.
			NodeName: node,
			// The worker's own network is the node's: it needs no pod IP,
			// dials out to the hub, and opens no port.
			HostNetwork: true,
			DNSPolicy:   corev1.DNSClusterFirstWithHostNet,
			// Every process of the node is visible, so that the worker
			// finds each target pod's netns through /proc.
			HostPID: true,
			// The worker never talks to the API server.
			AutomountServiceAccountToken:  ptr.To(false),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			ActiveDeadlineSeconds:         ptr.To(seconds(o.MaxDuration)),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			EnableServiceLinks:            ptr.To(false),
			// Targets may run on tainted nodes; so must their worker.
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:            "worker",
				Image:           o.Image,
				ImagePullPolicy: o.ImagePullPolicy,
				Args:            s.workerArgs(),
				Env: append([]corev1.EnvVar{
					{Name: "HUB_ADDR", Value: net.JoinHostPort(hubIP, strconv.Itoa(HubWorkerPort))},
				}, downwardEnv()...),
				Resources: o.Worker.requirements(),
				VolumeMounts: []corev1.VolumeMount{
					{Name: tlsVolume, MountPath: TLSMountPath, ReadOnly: true},
					{Name: storageVolume, MountPath: StorageMountPath},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: tlsVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: s.names.secret,
					// Only what a worker needs: never the hub's key.
					Items: []corev1.KeyToPath{
						{Key: SecretCACert, Path: SecretCACert},
						{Key: SecretToken, Path: SecretToken},
					},
					DefaultMode: ptr.To[int32](0o400),
				}}},
				{Name: storageVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					SizeLimit: ptr.To(o.StorageLimit.DeepCopy()),
				}}},
			},
		},
	}
	profiles[o.WorkerProfile](pod)
	return pod
}

// workerArgs: the ring fills StoragePercent of its volume, and dissection
// sheds load at MemoryBudgetPercent of the memory limit, so neither the
// kubelet (eviction) nor the kernel (OOM kill) has to step in.
func (s Spec) workerArgs() []string {
	o := s.Options
	args := []string{
		"worker",
		"--hub=$(HUB_ADDR)",
		"--node=$(NODE_NAME)",
		"--storage-dir=" + StorageMountPath,
		"--storage-limit=" + strconv.FormatInt(percentOf(o.StorageLimit, o.StoragePercent), 10),
	}
	if o.Worker.MemoryLimit.Sign() > 0 {
		args = append(args, "--max-memory="+strconv.FormatInt(percentOf(o.Worker.MemoryLimit, o.MemoryBudgetPercent), 10))
	}
	return args
}

// downwardEnv tells the agent its pod and node names.
func downwardEnv() []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
		}}
	}
	return []corev1.EnvVar{
		field("POD_NAME", "metadata.name"),
		field("POD_NAMESPACE", "metadata.namespace"),
		field("NODE_NAME", "spec.nodeName"),
	}
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }
