package worker

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const uid = "8f6c2a57-3c1e-4a3b-9d2e-0123456789ab"

var uidUnderscore = strings.ReplaceAll(uid, "-", "_")

func TestPodUIDFromCgroup(t *testing.T) {
	tests := []struct {
		name, cgroup, want string
	}{
		{"v1 cgroupfs besteffort containerd",
			"12:pids:/kubepods/besteffort/pod" + uid + "/4e1f8a\n11:memory:/kubepods/besteffort/pod" + uid + "/4e1f8a\n", uid},
		{"v1 cgroupfs guaranteed",
			"3:cpu,cpuacct:/kubepods/pod" + uid + "/abcdef0123\n", uid},
		{"v2 systemd containerd",
			"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidUnderscore + ".slice/cri-containerd-4e1f8a.scope\n", uid},
		{"v2 systemd cri-o",
			"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidUnderscore + ".slice/crio-77aa.scope", uid},
		{"v2 systemd docker guaranteed",
			"0::/kubepods.slice/kubepods-pod" + uidUnderscore + ".slice/docker-99.scope\n", uid},
		{"v1 systemd hybrid",
			"1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidUnderscore + ".slice/crio-conmon-1.scope\n0::/\n", uid},
		{"kind nested systemd",
			"0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidUnderscore + ".slice/cri-containerd-1.scope", uid},
		{"kind nested cgroupfs",
			"0::/kubelet/kubepods/burstable/pod" + uid + "/c0ffee", uid},
		{"pod cgroup itself (pause)", "0::/kubepods/besteffort/pod" + uid, uid},
		{"upper case", "0::/kubepods/pod" + strings.ToUpper(uid) + "/x", uid},
		{"static pod hash uid", "0::/kubepods/burstable/pod0123456789abcdef0123456789abcdef/x", "0123456789abcdef0123456789abcdef"},
		{"static pod systemd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0123456789abcdef0123456789abcdef.slice/x.scope", "0123456789abcdef0123456789abcdef"},
		{"not a pod", "0::/system.slice/containerd.service\n", ""},
		{"podman is not a pod", "0::/user.slice/podman-1234.scope\n", ""},
		{"short pod id", "0::/kubepods/besteffort/pod1234/x", ""},
		{"bad uid chars", "0::/kubepods/besteffort/pod8f6c2a57-3c1e-4a3b-9d2e-0123456789zz/x", ""},
		{"root", "0::/\n", ""},
		{"garbage", "no colons here\n::\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := podUIDFromCgroup([]byte(tt.cgroup)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzPodUIDFromCgroup(f *testing.F) {
	f.Add([]byte("12:pids:/kubepods/besteffort/pod" + uid + "/4e1f8a\n0::/\n"))
	f.Add([]byte("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidUnderscore + ".slice/cri-containerd-4e1f8a.scope\n"))
	f.Add([]byte("0::/kubepods.slice/kubepods-pod.slice/pod.slice"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := podUIDFromCgroup(b)
		if got != "" && !validUID(got) {
			t.Fatalf("returned invalid uid %q", got)
		}
		if got != "" && !strings.Contains(strings.ToLower(strings.ReplaceAll(string(b), "_", "-")), got) {
			t.Fatalf("uid %q is not in the input", got)
		}
	})
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    Target
		wantErr bool
	}{
		{uid + "=shop/cart-7d9f", Target{UID: uid, Namespace: "shop", Name: "cart-7d9f"}, false},
		{" " + strings.ToUpper(uid) + " = shop/cart ", Target{UID: uid, Namespace: "shop", Name: "cart"}, false},
		{uidUnderscore, Target{UID: uid}, false},
		{uid + "=shop", Target{}, true},
		{uid + "=/cart", Target{}, true},
		{uid + "=a/b/c", Target{}, true},
		{"not-a-uid=shop/cart", Target{}, true},
		{"", Target{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.in, diff)
		}
	}
	ts, err := ParseTargets(strings.NewReader("# pods\n\n" + uid + "=a/b\n  0123456789abcdef0123456789abcdef=kube-system/etcd-node1\n"))
	if err != nil || len(ts) != 2 || ts[1].Name != "etcd-node1" {
		t.Errorf("ParseTargets: %+v %v", ts, err)
	}
	if _, err := ParseTargets(strings.NewReader(uid + "=a/b\nbad\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}

func TestDisplayName(t *testing.T) {
	for _, tt := range []struct {
		t    Target
		want string
	}{
		{Target{UID: uid, Namespace: "shop", Name: "cart"}, "shop/cart"},
		{Target{UID: uid}, uid},
		{Target{Netns: "/run/netns/blue"}, "blue"},
		{Target{Netns: "/run/netns/blue", Interface: "eth0"}, "blue:eth0"},
		{Target{Netns: "/proc/42/ns/net"}, "/proc/42/ns/net"},
		{Target{Netns: "/proc/self/ns/net", Interface: "lo", Name: "host"}, "host"},
	} {
		if got := tt.t.DisplayName(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.t, got, tt.want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	f.Add(uid + "=shop/cart-7d9f")
	f.Add(uidUnderscore)
	f.Add("=/")
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if !validUID(tg.UID) || tg.Validate() != nil {
			t.Fatalf("accepted %q as %+v", s, tg)
		}
		if (tg.Namespace == "") != (tg.Name == "") || strings.Contains(tg.Name, "/") {
			t.Fatalf("bad name in %+v", tg)
		}
	})
}
