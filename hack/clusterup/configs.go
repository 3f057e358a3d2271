package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// cniBinDir is where Debian's containernetworking-plugins installs the plugins.
const cniBinDir = "/usr/lib/cni"

// daemon is one long-running process of the cluster.
type daemon struct {
	name  string   // pid file and log name
	args  []string // argv; args[0] is an absolute path
	netns string   // network namespace file to run in; empty for the host's
}

func (l layout) apiAddr() string { return nthAddr(nodeNet, 1).String() }

func etcdDaemon(l layout, a artifacts) daemon {
	ip := l.apiAddr()
	return daemon{name: "etcd", args: []string{
		a.bin("etcd"),
		"--name=" + clusterName,
		"--data-dir=" + filepath.Join(l.state, "etcd"),
		"--listen-client-urls=https://" + ip + ":2379",
		"--advertise-client-urls=https://" + ip + ":2379",
		"--listen-peer-urls=https://" + ip + ":2380",
		"--initial-advertise-peer-urls=https://" + ip + ":2380",
		"--initial-cluster=" + clusterName + "=https://" + ip + ":2380",
		"--initial-cluster-state=new",
		"--client-cert-auth", "--trusted-ca-file=" + l.pki("etcd-ca.crt"),
		"--cert-file=" + l.pki("etcd-server.crt"), "--key-file=" + l.pki("etcd-server.key"),
		"--peer-client-cert-auth", "--peer-trusted-ca-file=" + l.pki("etcd-ca.crt"),
		"--peer-cert-file=" + l.pki("etcd-peer.crt"), "--peer-key-file=" + l.pki("etcd-peer.key"),
		"--snapshot-count=10000",
		// A throwaway single-member cluster: skipping fsync makes every API write
		// cheaper on a shared two-core machine, and down deletes the data anyway.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}}
}

func apiserverDaemon(l layout, a artifacts) daemon {
	ip := l.apiAddr()
	return daemon{name: "kube-apiserver", args: []string{
		a.bin("kube-apiserver"),
		"--advertise-address=" + ip,
		"--bind-address=" + ip,
		"--secure-port=6443",
		"--etcd-servers=https://" + ip + ":2379",
		"--etcd-cafile=" + l.pki("etcd-ca.crt"),
		"--etcd-certfile=" + l.pki("apiserver-etcd-client.crt"),
		"--etcd-keyfile=" + l.pki("apiserver-etcd-client.key"),
		"--client-ca-file=" + l.pki("ca.crt"),
		"--tls-cert-file=" + l.pki("apiserver.crt"),
		"--tls-private-key-file=" + l.pki("apiserver.key"),
		"--kubelet-client-certificate=" + l.pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + l.pki("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=" + l.pki("ca.crt"),
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc." + clusterDomain,
		"--service-account-key-file=" + l.pki("sa.pub"),
		"--service-account-signing-key-file=" + l.pki("sa.key"),
		"--service-cluster-ip-range=" + serviceNet.String(),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
	}}
}

func controllerManagerDaemon(l layout, a artifacts) daemon {
	kc := l.config("controller-manager.kubeconfig")
	return daemon{name: "kube-controller-manager", args: []string{
		a.bin("kube-controller-manager"),
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=" + l.apiAddr(),
		"--leader-elect=false",
		"--cluster-name=" + clusterName,
		"--root-ca-file=" + l.pki("ca.crt"),
		"--service-account-private-key-file=" + l.pki("sa.key"),
		"--cluster-signing-cert-file=" + l.pki("ca.crt"),
		"--cluster-signing-key-file=" + l.pki("ca.key"),
		"--use-service-account-credentials=true",
		"--service-cluster-ip-range=" + serviceNet.String(),
		"--cluster-cidr=" + podNet.String(),
		// up assigns every node its pod CIDR when it registers the Node, so that
		// the CIDR in the node's CNI config is known before its kubelet starts.
		"--allocate-node-cidrs=false",
		"--flex-volume-plugin-dir=" + filepath.Join(l.state, "flexvolume"),
		"--profiling=false",
	}}
}

func schedulerDaemon(l layout, a artifacts) daemon {
	kc := l.config("scheduler.kubeconfig")
	return daemon{name: "kube-scheduler", args: []string{
		a.bin("kube-scheduler"),
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=" + l.apiAddr(),
		"--leader-elect=false",
		"--profiling=false",
	}}
}

func containerdDaemon(n node) daemon {
	return daemon{name: "containerd-" + n.name, netns: n.netns, args: []string{
		"/usr/bin/containerd", "--config", filepath.Join(n.dir, "containerd.toml"),
	}}
}

func kubeletDaemon(l layout, a artifacts, n node) daemon {
	return daemon{name: "kubelet-" + n.name, netns: n.netns, args: []string{
		a.bin("kubelet"),
		"--config=" + filepath.Join(n.dir, "kubelet.yaml"),
		"--kubeconfig=" + l.config(n.name+"-client.kubeconfig"),
		"--hostname-override=" + n.name,
		"--node-ip=" + n.ip.String(),
		"--root-dir=" + n.kubeletDir(),
	}}
}

func kubeProxyDaemon(a artifacts, n node) daemon {
	return daemon{name: "kube-proxy-" + n.name, netns: n.netns, args: []string{
		a.bin("kube-proxy"), "--config=" + filepath.Join(n.dir, "kube-proxy.yaml"),
	}}
}

// containerdConfig keeps each node's containerd to its own socket, directories
// and runc root, so that two of them share the machine without meeting.
func containerdConfig(n node) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  # This machine lacks CAP_SYS_RESOURCE: without these two, runc fails every pod
  # with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # Pod network namespaces under the node's state, not /var/run/netns.
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[6]q

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
`, n.containerdRoot(), n.containerdState(), n.sock(), filepath.Join(n.containerdRoot(), "opt"),
		pauseImage, filepath.Join(n.runDir, "runc"), cniBinDir, n.cniConfDir())
}

// cniConfig is the node's pod network: a bridge with the node's pod CIDR and
// routes to the cluster's ranges only. Pods get no default route, so nothing they
// send can leave the machine; no masquerading either, pod IPs stay visible.
func cniConfig(n node) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %[1]q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %[2]q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %[3]q, "gateway": %[4]q}]],
        "routes": [{"dst": %[5]q}, {"dst": %[6]q}, {"dst": %[7]q}],
        "dataDir": %[8]q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.name, n.cniBridge, n.podCIDR.String(), n.podGateway.String(),
		nodeSupernet.String(), podNet.String(), serviceNet.String(), filepath.Join(n.dir, "cni", "ipam"))
}

// kubeletConfig keeps the kubelet off the host's defaults: its own cgroup root,
// log and plugin directories, no image garbage collection (images cannot be
// pulled back), no host resolv.conf (nothing resolves off the machine), and
// oomScoreAdj 0 since the machine lacks CAP_SYS_RESOURCE.
func kubeletConfig(l layout, n node) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: %[1]s
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[2]s
authorization:
  mode: Webhook
tlsCertFile: %[3]s
tlsPrivateKeyFile: %[4]s
rotateCertificates: false
serverTLSBootstrap: false
cgroupDriver: cgroupfs
cgroupRoot: %[5]s
cgroupsPerQOS: true
containerRuntimeEndpoint: %[6]s
clusterDNS:
- %[7]s
clusterDomain: %[8]s
resolvConf: ""
oomScoreAdj: 0
failSwapOn: false
podLogsDir: %[9]s
volumePluginDir: %[10]s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
serializeImagePulls: false
shutdownGracePeriod: 0s
`, n.ip, l.pki("ca.crt"), l.pki(n.name+"-serving.crt"), l.pki(n.name+"-serving.key"),
		n.cgroupRoot, n.endpoint(), dnsServiceIP, clusterDomain,
		filepath.Join(n.dir, "pod-logs"), filepath.Join(n.kubeletDir(), "volume-plugins"))
}

// kubeProxyConfig serves node ports on the node's own address only, and leaves the
// host's conntrack and route_localnet sysctls alone.
func kubeProxyConfig(l layout, n node) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %[1]s
hostnameOverride: %[2]s
bindAddress: %[3]s
healthzBindAddress: %[3]s:10256
metricsBindAddress: %[3]s:10249
mode: iptables
clusterCIDR: %[4]s
detectLocalMode: ClusterCIDR
nodePortAddresses:
- %[3]s/32
oomScoreAdj: 0
iptables:
  localhostNodePorts: false
  masqueradeAll: false
  minSyncPeriod: 1s
  syncPeriod: 30s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, l.config("kube-proxy.kubeconfig"), n.name, n.ip, podNet)
}

// nodeManifest registers the nodes before their kubelets start, each with the pod
// CIDR its CNI config already uses. A kubelet adopts the Node that has its name.
func nodeManifest(ns []node) string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Node
metadata:
  name: %[1]s
  labels:
    kubernetes.io/hostname: %[1]s
    kubernetes.io/os: linux
    shark.io/local-cluster: "true"
spec:
  podCIDR: %[2]s
  podCIDRs:
  - %[2]s
`, n.name, n.podCIDR)
	}
	return b.String()
}

// corefile serves the cluster zone from the API and answers NXDOMAIN for every other
// name: the cluster has no upstream resolver, since nothing may leave the machine.
func corefile() string {
	return fmt.Sprintf(`%[1]s:53 in-addr.arpa:53 ip6.arpa:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes %[1]s in-addr.arpa ip6.arpa {
        pods insecure
        ttl 30
    }
    prometheus :9153
    cache 30
    loop
    reload
    loadbalance
}
.:53 {
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`, clusterDomain)
}

// corednsManifest is cluster DNS as kubeadm deploys it, with the locally built image.
func corednsManifest() string {
	indented := "    " + strings.ReplaceAll(strings.TrimRight(corefile(), "\n"), "\n", "\n    ")
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- kind: ServiceAccount
  name: coredns
  namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: |
%[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  replicas: 1
  selector:
    matchLabels:
      k8s-app: kube-dns
  template:
    metadata:
      labels:
        k8s-app: kube-dns
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      tolerations:
      - key: CriticalAddonsOnly
        operator: Exists
      containers:
      - name: coredns
        image: %[2]s
        imagePullPolicy: Never
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        - {name: metrics, containerPort: 9153, protocol: TCP}
        resources:
          requests: {cpu: 50m, memory: 40Mi}
          limits: {memory: 170Mi}
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities:
            add: [NET_BIND_SERVICE]
            drop: [ALL]
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          initialDelaySeconds: 10
          timeoutSeconds: 5
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap:
          name: coredns
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
    kubernetes.io/name: CoreDNS
spec:
  selector:
    k8s-app: kube-dns
  clusterIP: %[3]s
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
`, indented, corednsImage, dnsServiceIP)
}

// writeConfigs writes every node's containerd, CNI, kubelet and kube-proxy config.
func writeConfigs(l layout, ns []node) error {
	for _, n := range ns {
		files := map[string]string{
			filepath.Join(n.dir, "containerd.toml"):            containerdConfig(n),
			filepath.Join(n.cniConfDir(), "10-shark.conflist"): cniConfig(n),
			filepath.Join(n.dir, "kubelet.yaml"):               kubeletConfig(l, n),
			filepath.Join(n.dir, "kube-proxy.yaml"):            kubeProxyConfig(l, n),
		}
		for path, content := range files {
			if err := writeFile(path, []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
