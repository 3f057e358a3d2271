package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testLayout is a layout with fixed paths, so that rendered configs are stable.
func testLayout(t *testing.T) layout {
	t.Helper()
	return layout{
		repo:       "/src/kubectl-shark",
		cache:      "/src/kubectl-shark/.cache",
		logs:       "/src/kubectl-shark/.cache/cluster/logs",
		kubeconfig: "/src/kubectl-shark/.cache/cluster/kubeconfig",
		state:      "/var/lib/shark-cluster",
		run:        "/run/shark-cluster",
	}
}

func TestNodes(t *testing.T) {
	l := testLayout(t)
	got := nodes(l, 2)
	want := []node{{
		index: 1, name: "shark-node-1",
		ip:         netip.MustParseAddr("10.88.0.1"),
		podCIDR:    netip.MustParsePrefix("10.89.1.0/24"),
		podGateway: netip.MustParseAddr("10.89.1.1"),
		cniBridge:  "shark-cni1", cgroupRoot: "/shark/node-1",
		dir: "/var/lib/shark-cluster/node-1", runDir: "/run/shark-cluster/node-1",
	}, {
		index: 2, name: "shark-node-2",
		ip:         netip.MustParseAddr("10.88.0.2"),
		podCIDR:    netip.MustParsePrefix("10.89.2.0/24"),
		podGateway: netip.MustParseAddr("10.89.2.1"),
		cniBridge:  "shark-cni2", cgroupRoot: "/shark/node-2",
		netns: "/run/shark-cluster/netns/shark-node-2", hostVeth: "shark-n2",
		dir: "/var/lib/shark-cluster/node-2", runDir: "/run/shark-cluster/node-2",
	}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(node{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("nodes() mismatch (-want +got):\n%s", diff)
	}
	for _, n := range nodes(l, maxNodes) {
		if len(n.cniBridge) > 15 || len(n.hostVeth) > 15 {
			t.Errorf("%s: interface names %q, %q exceed IFNAMSIZ", n.name, n.cniBridge, n.hostVeth)
		}
		if !nodeNet.Contains(n.ip) || !podNet.Contains(n.podGateway) || !n.podCIDR.Contains(n.podGateway) {
			t.Errorf("%s: addresses %s %s %s outside the plan", n.name, n.ip, n.podCIDR, n.podGateway)
		}
	}
}

// TestGoldenConfigs compares every rendered config with testdata; run with
// -update after an intended change and review the diff.
func TestGoldenConfigs(t *testing.T) {
	l := testLayout(t)
	a := artifacts{binDir: "/src/kubectl-shark/.cache/k8s/v1.33.13-hash"}
	ns := nodes(l, 2)
	n2 := ns[1]
	daemons := []daemon{etcdDaemon(l, a), apiserverDaemon(l, a), controllerManagerDaemon(l, a), schedulerDaemon(l, a),
		containerdDaemon(n2), kubeletDaemon(l, a, n2), kubeProxyDaemon(a, n2)}
	var argv strings.Builder
	for _, d := range daemons {
		argv.WriteString("# " + d.name + " netns=" + d.netns + "\n" + strings.Join(d.args, "\n  ") + "\n")
	}
	files := map[string]string{
		"daemons.txt":             argv.String(),
		"containerd-node-2.toml":  containerdConfig(n2),
		"cni-node-2.conflist":     cniConfig(n2),
		"kubelet-node-2.yaml":     kubeletConfig(l, n2),
		"kube-proxy-node-2.yaml":  kubeProxyConfig(l, n2),
		"nodes.yaml":              nodeManifest(ns),
		"coredns.yaml":            corednsManifest(),
		"admin.kubeconfig":        renderKubeconfig(apiServerURL(), "kubernetes-admin", []byte("CA"), []byte("CERT"), []byte("KEY")),
		"daemons-expected-2.json": mustJSON(t, expectedDaemons(2)),
	}
	for name, got := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestCNIConfigIsValidJSON(t *testing.T) {
	var conf struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPMasq bool   `json:"ipMasq"`
			IPAM   struct {
				Ranges [][]struct{ Subnet, Gateway string } `json:"ranges"`
				Routes []struct{ Dst string }               `json:"routes"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	n := newNode(testLayout(t), 3)
	if err := json.Unmarshal([]byte(cniConfig(n)), &conf); err != nil {
		t.Fatal(err)
	}
	br := conf.Plugins[0]
	if br.Type != "bridge" || br.Bridge != "shark-cni3" || br.IPMasq {
		t.Errorf("bridge plugin = %+v", br)
	}
	if got := br.IPAM.Ranges[0][0]; got.Subnet != "10.89.3.0/24" || got.Gateway != "10.89.3.1" {
		t.Errorf("range = %+v, want 10.89.3.0/24 via 10.89.3.1", got)
	}
	// No default route: pod traffic can only reach cluster addresses.
	for _, r := range br.IPAM.Routes {
		if r.Dst == "0.0.0.0/0" {
			t.Error("pods get a default route")
		}
	}
}

func TestCleanupScript(t *testing.T) {
	save := `# Generated by iptables-nft-save v1.8.9 on Fri Nov 21 13:00:00 2025
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE
-A KUBE-POSTROUTING -j MASQUERADE --random-fully
-A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-NPX46M4PTMTKRN6Y
COMMIT
# Completed on Fri Nov 21 13:00:00 2025
`
	want := `*nat
-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-D OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-D POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-F KUBE-POSTROUTING
-F KUBE-SERVICES
-F CNI-HOSTPORT-DNAT
-X KUBE-POSTROUTING
-X KUBE-SERVICES
-X CNI-HOSTPORT-DNAT
COMMIT
`
	if diff := cmp.Diff(want, cleanupScript(save)); diff != "" {
		t.Errorf("cleanupScript() mismatch (-want +got):\n%s", diff)
	}
	clean := "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j DROP\nCOMMIT\n"
	if got := cleanupScript(clean); got != "" {
		t.Errorf("cleanupScript(no cluster chains) = %q, want empty", got)
	}
}

func TestParseMountInfo(t *testing.T) {
	info := `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 22 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
40 22 0:4 net:[4026532177] /run/shark-cluster/netns/shark-node-2 rw - nsfs nsfs rw
41 22 0:50 / /var/lib/shark-cluster/node-1/kubelet/pods/uid/volumes/kubernetes.io~projected/kube\040api rw - tmpfs tmpfs rw
42 22 0:51 / /run/shark-cluster/node-1/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw - overlay overlay rw
43 22 0:52 / /var/lib/shark-clusterX rw - tmpfs tmpfs rw
`
	ms := parseMountInfo([]byte(info))
	if got := ms[4].mountPoint; got != "/var/lib/shark-cluster/node-1/kubelet/pods/uid/volumes/kubernetes.io~projected/kube api" {
		t.Errorf("escaped mount point = %q", got)
	}
	got := mountsUnder(ms, "/var/lib/shark-cluster", "/run/shark-cluster")
	want := []string{
		"/var/lib/shark-cluster/node-1/kubelet/pods/uid/volumes/kubernetes.io~projected/kube api",
		"/run/shark-cluster/node-1/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs",
		"/run/shark-cluster/netns/shark-node-2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mountsUnder() mismatch (-want +got):\n%s", diff)
	}
	var cgroups []string
	for _, m := range ms {
		if m.fsType == "cgroup" || m.fsType == "cgroup2" {
			cgroups = append(cgroups, m.mountPoint)
		}
	}
	if diff := cmp.Diff([]string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"}, cgroups); diff != "" {
		t.Errorf("cgroup mounts mismatch (-want +got):\n%s", diff)
	}
}

func TestIsShimOf(t *testing.T) {
	sock := "/run/shark-cluster/node-1/containerd.sock"
	tests := []struct {
		argv []string
		want bool
	}{
		{[]string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", sock}, true},
		{[]string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock"}, false},
		{[]string{"/usr/bin/containerd", "--address", sock}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := isShimOf(tt.argv, sock); got != tt.want {
			t.Errorf("isShimOf(%q) = %v, want %v", tt.argv, got, tt.want)
		}
	}
}

func TestPKI(t *testing.T) {
	l := testLayout(t)
	l.state = t.TempDir()
	ns := nodes(l, 2)
	if err := writePKI(l, ns); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, l.pki("ca.crt"))
	etcdCA := readCert(t, l.pki("etcd-ca.crt"))
	tests := []struct {
		file    string
		ca      *x509.Certificate
		cn      string
		orgs    []string
		usage   x509.ExtKeyUsage
		dnsName string // verified as a server name when set
		ip      string
	}{
		{"apiserver", ca, "kube-apiserver", nil, x509.ExtKeyUsageServerAuth, "kubernetes.default.svc.cluster.local", ""},
		{"apiserver", ca, "kube-apiserver", nil, x509.ExtKeyUsageServerAuth, "", "10.96.0.1"},
		{"apiserver", ca, "kube-apiserver", nil, x509.ExtKeyUsageServerAuth, "", "10.88.0.1"},
		{"admin", ca, "kubernetes-admin", []string{"system:masters"}, x509.ExtKeyUsageClientAuth, "", ""},
		{"kube-proxy", ca, "system:kube-proxy", nil, x509.ExtKeyUsageClientAuth, "", ""},
		{"shark-node-2-client", ca, "system:node:shark-node-2", []string{"system:nodes"}, x509.ExtKeyUsageClientAuth, "", ""},
		{"shark-node-2-serving", ca, "shark-node-2", nil, x509.ExtKeyUsageServerAuth, "", "10.88.0.2"},
		{"etcd-server", etcdCA, "shark-etcd", nil, x509.ExtKeyUsageServerAuth, "", "10.88.0.1"},
		{"apiserver-etcd-client", etcdCA, "kube-apiserver-etcd-client", nil, x509.ExtKeyUsageClientAuth, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file+tt.dnsName+tt.ip, func(t *testing.T) {
			c := readCert(t, l.pki(tt.file+".crt"))
			if c.Subject.CommonName != tt.cn || !cmp.Equal(c.Subject.Organization, tt.orgs, cmp.Comparer(func(a, b []string) bool {
				return strings.Join(a, ",") == strings.Join(b, ",")
			})) {
				t.Errorf("subject = %v, want CN=%s O=%v", c.Subject, tt.cn, tt.orgs)
			}
			pool := x509.NewCertPool()
			pool.AddCert(tt.ca)
			opts := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{tt.usage}, DNSName: tt.dnsName}
			if tt.ip != "" {
				opts.DNSName = tt.ip
			}
			if _, err := c.Verify(opts); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
	// The cluster CA must not vouch for etcd clients, nor the etcd CA for API users.
	pool := x509.NewCertPool()
	pool.AddCert(etcdCA)
	if _, err := readCert(t, l.pki("admin.crt")).Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the etcd CA verifies the admin certificate")
	}
	if st, err := os.Stat(l.pki("ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key mode = %v, %v; want 0600", st.Mode(), err)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHashSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("kube/main.go", "package main\n")
	write("coredns/main.go", "package main\n")
	write("README.md", "docs\n")
	h1, err := hashSources(dir, "coredns")
	if err != nil {
		t.Fatal(err)
	}
	write("coredns/main.go", "package main // changed\n")
	write("README.md", "more docs\n")
	if h2, _ := hashSources(dir, "coredns"); h2 != h1 {
		t.Errorf("hash changed with a skipped or non-Go file: %s -> %s", h1, h2)
	}
	write("kube/main.go", "package main // changed\n")
	if h3, _ := hashSources(dir, "coredns"); h3 == h1 {
		t.Error("hash did not change with a Go source")
	}
}

func TestNodesFromEnv(t *testing.T) {
	tests := []struct {
		env     string
		want    int
		wantErr bool
	}{{"", 1, false}, {"2", 2, false}, {"4", 4, false}, {"0", 0, true}, {"5", 0, true}, {"two", 0, true}}
	for _, tt := range tests {
		t.Setenv("NODES", tt.env)
		got, err := nodesFromEnv()
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("NODES=%q: got %d, %v; want %d, error %v", tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzHostParsers feeds arbitrary text to the parsers of host command output:
// they must never panic, and the cleanup script must only ever delete.
func FuzzHostParsers(f *testing.F) {
	f.Add("*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n")
	f.Add("40 22 0:4 net:[1] /run/shark-cluster/netns/x rw - nsfs nsfs rw\n41 22 0:5 / /a\\040b rw - tmpfs t rw\n")
	f.Add("-A X -j\n:\n*\n\\04")
	f.Fuzz(func(t *testing.T, in string) {
		script := cleanupScript(in)
		for _, line := range strings.Split(script, "\n") {
			if line != "" && !strings.HasPrefix(line, "*") && line != "COMMIT" &&
				!strings.HasPrefix(line, "-D ") && !strings.HasPrefix(line, "-F ") && !strings.HasPrefix(line, "-X ") {
				t.Fatalf("cleanup script line %q does not delete", line)
			}
		}
		for _, m := range parseMountInfo([]byte(in)) {
			if len(m.mountPoint) > len(in) {
				t.Fatalf("mount point %q longer than the input", m.mountPoint)
			}
		}
	})
}
