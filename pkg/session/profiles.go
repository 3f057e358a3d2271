package session

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// ProfileName names a security profile: the security context of a pod and
// its container, chosen as a whole rather than field by field.
type ProfileName string

const (
	// ProfileRestricted is the hub's: it passes Pod Security "restricted".
	ProfileRestricted ProfileName = "restricted"
	// ProfileCapture is the workers' default: root with ALL capabilities
	// dropped and only those that capture needs added back.
	ProfileCapture ProfileName = "capture"
	// ProfilePrivileged is the workers' fallback for nodes where explicit
	// capabilities are not enough (old kernels without CAP_BPF/CAP_PERFMON,
	// a hardened runtime profile that the capture profile cannot lift).
	ProfilePrivileged ProfileName = "privileged"
)

// profile sets the security context of pod and of its first container.
type profile func(pod *corev1.Pod)

// profiles are the worker profiles a user may choose (--worker-profile).
var profiles = map[ProfileName]profile{
	ProfileCapture:    captureProfile,
	ProfilePrivileged: privilegedProfile,
}

// ProfileNames lists the worker profiles, sorted.
func ProfileNames() []ProfileName {
	names := make([]ProfileName, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// nonRootUID is the conventional "nonroot" user of distroless images.
const nonRootUID = 65532

// restrictedProfile: the hub only serves sockets and reads its Secret, so
// it gets nothing: non-root, no capabilities, read-only root, seccomp.
func restrictedProfile(pod *corev1.Pod) {
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](nonRootUID),
		RunAsGroup:     ptr.To[int64](nonRootUID),
		FSGroup:        ptr.To[int64](nonRootUID), // reads the Secret volume
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	c := &pod.Spec.Containers[0]
	c.SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr.To(true),
	}
}

// captureCapabilities are the only capabilities a worker keeps.
var captureCapabilities = []corev1.Capability{
	// AF_PACKET sockets: the capture itself.
	"NET_RAW",
	// Promiscuous mode and link queries (netlink) inside each pod's netns.
	"NET_ADMIN",
	// setns(2) into a pod's network namespace; also bpf(2) and
	// perf_event_open(2) on kernels older than 5.8.
	"SYS_ADMIN",
	// Open /proc/<pid>/ns/net and /proc/<pid>/root of other users'
	// processes (a ptrace access check), to find each pod's netns and the
	// TLS libraries the eBPF tracer attaches to.
	"SYS_PTRACE",
	// Load the eBPF programs and maps of the TLS tracer (kernel >= 5.8).
	"BPF",
	// Attach those programs as uprobes (kernel >= 5.8).
	"PERFMON",
}

// captureProfile: the worker runs as root, because a container's added
// capabilities are effective only for uid 0 (runtimes set no ambient ones).
func captureProfile(pod *corev1.Pod) {
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsUser:    ptr.To[int64](0),
		RunAsNonRoot: ptr.To(false),
		// The runtime's default seccomp profile allows setns, bpf and
		// perf_event_open exactly when the capabilities above are held, so
		// it stays on and still blocks everything else.
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		// On SELinux nodes, container_t may not enter other containers'
		// namespaces; spc_t ("super privileged container") may.
		SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"},
	}
	c := &pod.Spec.Containers[0]
	c.SecurityContext = &corev1.SecurityContext{
		Capabilities: &corev1.Capabilities{
			Drop: []corev1.Capability{"ALL"},
			Add:  slices.Clone(captureCapabilities),
		},
		// The runtime's default AppArmor profile denies ptrace reads of
		// processes confined by other profiles, which opening their
		// /proc/<pid>/ns/net needs.
		AppArmorProfile:        &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined},
		ReadOnlyRootFilesystem: ptr.To(true),
		// allowPrivilegeEscalation stays unset: the API rejects false
		// together with CAP_SYS_ADMIN.
	}
}

// privilegedProfile: everything the node allows. Used only when chosen.
func privilegedProfile(pod *corev1.Pod) {
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsUser:    ptr.To[int64](0),
		RunAsNonRoot: ptr.To(false),
	}
	c := &pod.Spec.Containers[0]
	c.SecurityContext = &corev1.SecurityContext{
		Privileged:             ptr.To(true),
		ReadOnlyRootFilesystem: ptr.To(true),
	}
}
