package session

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// fixedID swaps the random session id for "abc123" for the test's span.
func fixedID(t *testing.T) {
	t.Helper()
	old := newID
	newID = func() string { return "abc123" }
	t.Cleanup(func() { newID = old })
}

func testOptions() Options {
	o := DefaultOptions()
	o.Image = "registry.example/shark-agent:v1.2.3"
	return o
}

func mustSpec(t *testing.T, o Options) Spec {
	t.Helper()
	s, err := NewSpec(o)
	if err != nil {
		t.Fatalf("NewSpec: %v", err)
	}
	return s
}

func labels(component string) map[string]string {
	l := map[string]string{
		"app.kubernetes.io/managed-by": "kubectl-shark",
		"shark.io/session":             "abc123",
	}
	if component != "" {
		l["app.kubernetes.io/component"] = component
	}
	return l
}

var hubOwnerRef = metav1.OwnerReference{
	APIVersion: "v1", Kind: "Pod", Name: "shark-hub", UID: "hub-uid",
	Controller: ptr.To(false), BlockOwnerDeletion: ptr.To(true),
}

func downward() []corev1.EnvVar {
	f := func(n, p string) corev1.EnvVar {
		return corev1.EnvVar{Name: n, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: p}}}
	}
	return []corev1.EnvVar{f("POD_NAME", "metadata.name"), f("POD_NAMESPACE", "metadata.namespace"), f("NODE_NAME", "spec.nodeName")}
}

func wantHubPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "shark-hub", Namespace: "shark-abc123", Labels: labels("hub")},
		Spec: corev1.PodSpec{
			ServiceAccountName:            "shark-hub",
			AutomountServiceAccountToken:  ptr.To(true),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			ActiveDeadlineSeconds:         ptr.To[int64](4 * 3600),
			TerminationGracePeriodSeconds: ptr.To[int64](10),
			EnableServiceLinks:            ptr.To(false),
			NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				RunAsGroup:     ptr.To[int64](65532),
				FSGroup:        ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "hub",
				Image:           "registry.example/shark-agent:v1.2.3",
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"hub", "--listen-worker=:8443", "--listen-api=:8899",
					"--session=abc123", "--namespace=shark-abc123", "--idle-timeout=1m0s"},
				Env: downward(),
				Ports: []corev1.ContainerPort{
					{Name: "worker", ContainerPort: 8443, Protocol: corev1.ProtocolTCP},
					{Name: "api", ContainerPort: 8899, Protocol: corev1.ProtocolTCP},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("api")}},
					PeriodSeconds:    2,
					FailureThreshold: 3,
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/shark/tls", ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					ReadOnlyRootFilesystem:   ptr.To(true),
				},
			}},
			Volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "shark-tls", DefaultMode: ptr.To[int32](0o440),
			}}}},
		},
	}
}

func wantWorkerPod() *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "shark-worker-" + NodeHash("node-a"), Namespace: "shark-abc123",
			Labels: labels("worker"), OwnerReferences: []metav1.OwnerReference{hubOwnerRef},
		},
		Spec: corev1.PodSpec{
			NodeName:                      "node-a",
			HostNetwork:                   true,
			DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
			HostPID:                       true,
			AutomountServiceAccountToken:  ptr.To(false),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			ActiveDeadlineSeconds:         ptr.To[int64](4 * 3600),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			EnableServiceLinks:            ptr.To(false),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser:      ptr.To[int64](0),
				RunAsNonRoot:   ptr.To(false),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"},
			},
			Containers: []corev1.Container{{
				Name:            "worker",
				Image:           "registry.example/shark-agent:v1.2.3",
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args: []string{"worker", "--hub=$(HUB_ADDR)", "--node=$(NODE_NAME)", "--storage-dir=/var/lib/shark",
					// 90% of 500Mi, 80% of 512Mi
					"--storage-limit=471859200", "--max-memory=429496720"},
				Env: append([]corev1.EnvVar{{Name: "HUB_ADDR", Value: "10.1.2.3:8443"}}, downward()...),
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "tls", MountPath: "/etc/shark/tls", ReadOnly: true},
					{Name: "storage", MountPath: "/var/lib/shark"},
				},
				SecurityContext: &corev1.SecurityContext{
					Capabilities: &corev1.Capabilities{
						Drop: []corev1.Capability{"ALL"},
						Add:  []corev1.Capability{"NET_RAW", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "BPF", "PERFMON"},
					},
					AppArmorProfile:        &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined},
					ReadOnlyRootFilesystem: ptr.To(true),
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName:  "shark-tls",
					Items:       []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}, {Key: "token", Path: "token"}},
					DefaultMode: ptr.To[int32](0o400),
				}}},
				{Name: "storage", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					SizeLimit: ptr.To(resource.MustParse("500Mi")),
				}}},
			},
		},
	}
}

func TestHubPod(t *testing.T) {
	fixedID(t)
	for _, tc := range []struct {
		name string
		opts func(*Options)
		want func(*corev1.Pod)
	}{
		{name: "defaults"},
		{
			name: "shared namespace, custom image, resources and durations",
			opts: func(o *Options) {
				o.SharkNamespace = "team-a"
				o.Image = "localhost/shark/shark-agent:dev"
				o.ImagePullPolicy = corev1.PullNever
				o.MaxDuration = 30 * time.Minute
				o.IdleTimeout = 90 * time.Second
				o.Hub.CPULimit = resource.MustParse("20m") // below the request: the request follows
				o.Hub.MemoryLimit = resource.Quantity{}    // no limit
			},
			want: func(p *corev1.Pod) {
				p.Name, p.Namespace = "shark-hub-abc123", "team-a"
				p.Spec.ServiceAccountName = "shark-hub-abc123"
				p.Spec.ActiveDeadlineSeconds = ptr.To[int64](1800)
				c := &p.Spec.Containers[0]
				c.Image, c.ImagePullPolicy = "localhost/shark/shark-agent:dev", corev1.PullNever
				c.Args = []string{"hub", "--listen-worker=:8443", "--listen-api=:8899",
					"--session=abc123", "--namespace=team-a", "--idle-timeout=1m30s"}
				c.Resources = corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m")},
				}
				p.Spec.Volumes[0].Secret.SecretName = "shark-tls-abc123"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			want := wantHubPod()
			if tc.want != nil {
				tc.want(want)
			}
			got := mustSpec(t, o).HubPod()
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("HubPod (-want +got):\n%s", d)
			}
		})
	}
}

func TestWorkerPod(t *testing.T) {
	fixedID(t)
	for _, tc := range []struct {
		name  string
		opts  func(*Options)
		node  string
		hubIP string
		want  func(*corev1.Pod)
	}{
		{name: "capture profile", node: "node-a", hubIP: "10.1.2.3"},
		{
			name: "privileged profile", node: "node-a", hubIP: "10.1.2.3",
			opts: func(o *Options) { o.WorkerProfile = ProfilePrivileged },
			want: func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(false)}
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true), ReadOnlyRootFilesystem: ptr.To(true)}
			},
		},
		{
			name: "IPv6 hub, resources, storage, budget follows the memory limit", node: "node-a", hubIP: "fd00::7",
			opts: func(o *Options) {
				o.Worker.CPULimit = resource.MustParse("2")
				o.Worker.MemoryLimit = resource.MustParse("2Gi")
				o.StorageLimit = resource.MustParse("1Gi")
				o.MemoryBudgetPercent = 75
			},
			want: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.Env[0].Value = "[fd00::7]:8443"
				c.Args[4] = "--storage-limit=966367620" // 90% of 1Gi
				c.Args[5] = "--max-memory=1610612700"   // 75% of 2Gi
				c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi")}
				p.Spec.Volumes[1].EmptyDir.SizeLimit = ptr.To(resource.MustParse("1Gi"))
			},
		},
		{
			name: "no memory limit: no budget flag", node: "node-a", hubIP: "10.1.2.3",
			opts: func(o *Options) { o.Worker.MemoryLimit = resource.Quantity{} },
			want: func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.Args = c.Args[:5]
				delete(c.Resources.Limits, corev1.ResourceMemory)
			},
		},
		{
			name: "shared namespace, long node name", node: strings.Repeat("n", 253), hubIP: "10.1.2.3",
			opts: func(o *Options) { o.SharkNamespace = "team-a" },
			want: func(p *corev1.Pod) {
				p.Name = "shark-worker-abc123-" + NodeHash(strings.Repeat("n", 253))
				p.Namespace = "team-a"
				p.Spec.NodeName = strings.Repeat("n", 253)
				p.Spec.Volumes[0].Secret.SecretName = "shark-tls-abc123"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			want := wantWorkerPod()
			if tc.want != nil {
				tc.want(want)
			}
			got := mustSpec(t, o).WorkerPod(tc.node, tc.hubIP, &hubOwnerRef)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("WorkerPod (-want +got):\n%s", d)
			}
			if len(got.Name) > 63 {
				t.Errorf("pod name %q is longer than 63 characters", got.Name)
			}
		})
	}
}

func TestWorkerPodHasNoPortsAndNoToken(t *testing.T) {
	fixedID(t)
	for _, p := range ProfileNames() {
		o := testOptions()
		o.WorkerProfile = p
		pod := mustSpec(t, o).WorkerPod("n1", "10.0.0.1", nil)
		if got := pod.Spec.Containers[0].Ports; len(got) != 0 {
			t.Errorf("%s: worker has ports %v", p, got)
		}
		if got := pod.Spec.AutomountServiceAccountToken; got == nil || *got {
			t.Errorf("%s: automountServiceAccountToken = %v, want false", p, got)
		}
		for _, it := range pod.Spec.Volumes[0].Secret.Items {
			if it.Key == SecretHubKey {
				t.Errorf("%s: worker mounts the hub key", p)
			}
		}
	}
}

func TestNamespaceSecretRBAC(t *testing.T) {
	fixedID(t)
	s := mustSpec(t, testOptions())
	nsOwner := &metav1.OwnerReference{APIVersion: "v1", Kind: "Namespace", Name: "shark-abc123", UID: "ns-uid", Controller: ptr.To(false)}

	wantNS := &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "shark-abc123", Labels: map[string]string{
			"app.kubernetes.io/managed-by":       "kubectl-shark",
			"shark.io/session":                   "abc123",
			"pod-security.kubernetes.io/enforce": "privileged",
			"pod-security.kubernetes.io/audit":   "privileged",
			"pod-security.kubernetes.io/warn":    "privileged",
		}},
	}
	if d := cmp.Diff(wantNS, s.NamespaceObject()); d != "" {
		t.Errorf("NamespaceObject (-want +got):\n%s", d)
	}

	pki := &PKI{CACert: []byte("CA"), HubCert: []byte("CERT"), HubKey: []byte("KEY"), Token: "TOKEN"}
	wantSecret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "shark-tls", Namespace: "shark-abc123", Labels: labels("hub"), OwnerReferences: []metav1.OwnerReference{hubOwnerRef}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"ca.crt": []byte("CA"), "hub.crt": []byte("CERT"), "hub.key": []byte("KEY"), "token": []byte("TOKEN")},
	}
	if d := cmp.Diff(wantSecret, s.Secret(pki, &hubOwnerRef)); d != "" {
		t.Errorf("Secret (-want +got):\n%s", d)
	}

	wantCR := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: "shark-abc123-hub", Labels: labels("hub"), OwnerReferences: []metav1.OwnerReference{*nsOwner}},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"namespaces"},
			ResourceNames: []string{"shark-abc123"}, Verbs: []string{"delete"},
		}},
	}
	if d := cmp.Diff(wantCR, s.ClusterRole(nsOwner)); d != "" {
		t.Errorf("ClusterRole (-want +got):\n%s", d)
	}
	wantCRB := &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "shark-abc123-hub", Labels: labels("hub"), OwnerReferences: []metav1.OwnerReference{*nsOwner}},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "shark-abc123-hub"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "shark-hub", Namespace: "shark-abc123"}},
	}
	if d := cmp.Diff(wantCRB, s.ClusterRoleBinding(nsOwner)); d != "" {
		t.Errorf("ClusterRoleBinding (-want +got):\n%s", d)
	}

	o := testOptions()
	o.SharkNamespace = "team-a"
	shared := mustSpec(t, o)
	owner := hubOwnerRef
	owner.Name = "shark-hub-abc123"
	wantRole := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: "shark-hub-abc123", Namespace: "team-a", Labels: labels("hub"), OwnerReferences: []metav1.OwnerReference{owner}},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"pods"},
			ResourceNames: []string{"shark-hub-abc123"}, Verbs: []string{"delete"},
		}},
	}
	if d := cmp.Diff(wantRole, shared.Role(&owner)); d != "" {
		t.Errorf("Role (-want +got):\n%s", d)
	}
	wantRB := &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "shark-hub-abc123", Namespace: "team-a", Labels: labels("hub"), OwnerReferences: []metav1.OwnerReference{owner}},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "shark-hub-abc123"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "shark-hub-abc123", Namespace: "team-a"}},
	}
	if d := cmp.Diff(wantRB, shared.RoleBinding(&owner)); d != "" {
		t.Errorf("RoleBinding (-want +got):\n%s", d)
	}
	wantSA := &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: "shark-hub-abc123", Namespace: "team-a", Labels: labels("hub"), OwnerReferences: []metav1.OwnerReference{owner}},
	}
	if d := cmp.Diff(wantSA, shared.ServiceAccount(&owner)); d != "" {
		t.Errorf("ServiceAccount (-want +got):\n%s", d)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{name: "defaults"},
		{name: "bad id", mutate: func(o *Options) { o.ID = "ABC" }, wantErr: `session id "ABC"`},
		{name: "no image", mutate: func(o *Options) { o.Image = "" }, wantErr: "--image must not be empty"},
		{name: "pull policy", mutate: func(o *Options) { o.ImagePullPolicy = "Sometimes" }, wantErr: `--image-pull-policy "Sometimes"`},
		{name: "short max duration", mutate: func(o *Options) { o.MaxDuration = time.Second }, wantErr: "--max-duration 1s"},
		{name: "tiny storage", mutate: func(o *Options) { o.StorageLimit = resource.MustParse("1Mi") }, wantErr: "--storage-limit 1Mi"},
		{name: "tiny worker memory", mutate: func(o *Options) { o.Worker.MemoryLimit = resource.MustParse("8Mi") }, wantErr: "--worker-memory 8Mi"},
		{name: "negative cpu", mutate: func(o *Options) { o.Hub.CPULimit = resource.MustParse("-1") }, wantErr: "hub resources must not be negative"},
		{name: "profile", mutate: func(o *Options) { o.WorkerProfile = "restricted" }, wantErr: `--worker-profile "restricted"`},
		{name: "budget", mutate: func(o *Options) { o.MemoryBudgetPercent = 120 }, wantErr: "memory budget percent 120"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			if tc.mutate != nil {
				tc.mutate(&o)
			}
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewSpecIDs(t *testing.T) {
	s1 := mustSpec(t, DefaultOptions())
	if !ValidID(s1.ID) || s1.Namespace != "shark-"+s1.ID || s1.Shared {
		t.Fatalf("spec = %+v", s1)
	}
	o := DefaultOptions()
	o.ID = "zz9zz9"
	if s := mustSpec(t, o); s.ID != "zz9zz9" || s.HubPodName() != "shark-hub" || s.SecretName() != "shark-tls" {
		t.Fatalf("spec = %+v", s)
	}
}

func TestNodeHash(t *testing.T) {
	a, b := NodeHash("node-a"), NodeHash("node-b")
	if a == b || len(a) != 10 || NodeHash("node-a") != a {
		t.Fatalf("NodeHash: %q %q", a, b)
	}
}
