package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
)

// Versions of what the cluster runs. hack/k8s/go.mod pins the same Kubernetes and,
// through it, etcd; hack/k8s/coredns/go.mod pins CoreDNS.
const (
	k8sVersion     = "v1.33.13"
	corednsVersion = "v1.12.0"
	pauseImage     = "localhost/shark/pause:3.10"
	corednsImage   = "localhost/shark/coredns:" + corednsVersion
	clusterName    = "shark"
	clusterDomain  = "cluster.local"
	maxNodes       = 4
	modulePath     = "github.com/kubectl-shark/kubectl-shark"
)

// The address plan. Every address lives only on interfaces that `up` creates on this
// machine, and no route leads off it: node IPs on the bridge shark0, pod networks on
// one bridge per node, and the service range behind kube-proxy's rules.
var (
	nodeNet      = netip.MustParsePrefix("10.88.0.0/24") // node N is 10.88.0.N
	nodeSupernet = netip.MustParsePrefix("10.88.0.0/16")
	podNet       = netip.MustParsePrefix("10.89.0.0/16") // node N's pods are 10.89.N.0/24
	serviceNet   = netip.MustParsePrefix("10.96.0.0/16")
	apiServiceIP = netip.MustParseAddr("10.96.0.1")
	dnsServiceIP = netip.MustParseAddr("10.96.0.10")
)

// Names of the host objects `up` creates; `down` finds them by these names.
const (
	nodeBridge   = "shark0"
	cgroupParent = "/shark"
)

// layout says where everything lives.
type layout struct {
	repo       string // the checkout
	cache      string // repo/.cache: build outputs, images, logs and the kubeconfig
	logs       string // daemon and build logs; kept after down for post-mortems
	kubeconfig string // the admin kubeconfig that `up` writes
	state      string // the cluster's disk state, removed by down
	run        string // sockets, pid files and containerd's runtime state, removed by down
}

func newLayout() (layout, error) {
	repo, err := findRepo()
	if err != nil {
		return layout{}, err
	}
	cache := filepath.Join(repo, ".cache")
	return layout{
		repo:       repo,
		cache:      cache,
		logs:       filepath.Join(cache, "cluster", "logs"),
		kubeconfig: filepath.Join(cache, "cluster", "kubeconfig"),
		state:      "/var/lib/shark-cluster",
		run:        "/run/shark-cluster",
	}, nil
}

// findRepo is $CLUSTERUP_REPO (set by hack/cluster) or the nearest parent of the
// working directory whose go.mod is this project's.
func findRepo() (string, error) {
	if r := os.Getenv("CLUSTERUP_REPO"); r != "" {
		return filepath.Abs(r)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(mod, []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the kubectl-shark checkout: run hack/cluster from inside it")
		}
		dir = parent
	}
}

func (l layout) pki(name string) string    { return filepath.Join(l.state, "pki", name) }
func (l layout) config(name string) string { return filepath.Join(l.state, "config", name) }
func (l layout) pidFile(name string) string {
	return filepath.Join(l.run, "pids", name+".pid")
}
func (l layout) clusterFile() string { return filepath.Join(l.state, "cluster.json") }

// node is one kubelet with its own containerd, pod network and cgroup root.
type node struct {
	index      int
	name       string
	ip         netip.Addr
	podCIDR    netip.Prefix
	podGateway netip.Addr
	cniBridge  string // the bridge of the node's pods, created before the CNI plugin uses it
	netns      string // persisted network namespace; empty for node 1, which uses the host's
	hostVeth   string // host end of the link to the node's namespace; empty for node 1
	cgroupRoot string
	dir        string // disk state
	runDir     string // sockets and containerd's runtime state
}

func newNode(l layout, i int) node {
	n := node{
		index:      i,
		name:       fmt.Sprintf("shark-node-%d", i),
		ip:         nthAddr(nodeNet, i),
		podCIDR:    netip.PrefixFrom(nthAddr(podNet, i<<8), 24),
		podGateway: nthAddr(podNet, i<<8|1),
		cniBridge:  fmt.Sprintf("shark-cni%d", i),
		cgroupRoot: fmt.Sprintf("%s/node-%d", cgroupParent, i),
		dir:        filepath.Join(l.state, fmt.Sprintf("node-%d", i)),
		runDir:     filepath.Join(l.run, fmt.Sprintf("node-%d", i)),
	}
	if i > 1 {
		n.netns = filepath.Join(l.run, "netns", n.name)
		n.hostVeth = fmt.Sprintf("shark-n%d", i)
	}
	return n
}

func nodes(l layout, count int) []node {
	out := make([]node, 0, count)
	for i := 1; i <= count; i++ {
		out = append(out, newNode(l, i))
	}
	return out
}

// nthAddr is the address n places after the prefix's first one.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (n node) sock() string           { return filepath.Join(n.runDir, "containerd.sock") }
func (n node) endpoint() string       { return "unix://" + n.sock() }
func (n node) cniConfDir() string     { return filepath.Join(n.dir, "cni", "net.d") }
func (n node) kubeletDir() string     { return filepath.Join(n.dir, "kubelet") }
func (n node) containerdRoot() string { return filepath.Join(n.dir, "containerd") }
func (n node) containerdState() string {
	return filepath.Join(n.runDir, "containerd")
}

// clusterInfo is what `up` records for `down`, `status` and `load`.
type clusterInfo struct {
	Nodes   int    `json:"nodes"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

func writeClusterInfo(l layout, nodes int) error {
	b, err := json.MarshalIndent(clusterInfo{Nodes: nodes, Version: k8sVersion, Arch: runtime.GOARCH}, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(l.clusterFile(), append(b, '\n'), 0o644)
}

// readClusterInfo returns the recorded cluster, or nodes=0 when none is recorded.
func readClusterInfo(l layout) (clusterInfo, error) {
	b, err := os.ReadFile(l.clusterFile())
	if errors.Is(err, os.ErrNotExist) {
		return clusterInfo{}, nil
	}
	if err != nil {
		return clusterInfo{}, err
	}
	var ci clusterInfo
	if err := json.Unmarshal(b, &ci); err != nil {
		return clusterInfo{}, fmt.Errorf("%s: %w", l.clusterFile(), err)
	}
	return ci, nil
}

// writeFile writes data to path, creating its directory.
func writeFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, perm)
}
