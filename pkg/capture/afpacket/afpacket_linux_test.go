//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and AF_PACKET sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netnsPair makes two namespaces joined by a veth pair: a (10.77.0.1/24,
// fd77::1/64) and b (10.77.0.2, fd77::2), both with lo up.
func netnsPair(t *testing.T) (a, b string) {
	t.Helper()
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	a, b = "afpk-a-"+suffix, "afpk-b-"+suffix
	for _, ns := range []string{a, b} {
		exec.Command("ip", "netns", "del", ns).Run()
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b)
	run(t, "ip", "-n", a, "addr", "add", "10.77.0.1/24", "dev", "va")
	run(t, "ip", "-n", b, "addr", "add", "10.77.0.2/24", "dev", "vb")
	run(t, "ip", "-n", a, "addr", "add", "fd77::1/64", "dev", "va", "nodad")
	run(t, "ip", "-n", b, "addr", "add", "fd77::2/64", "dev", "vb", "nodad")
	run(t, "ip", "-n", a, "link", "set", "va", "up")
	run(t, "ip", "-n", b, "link", "set", "vb", "up")
	// Traffic sent before the carrier is up is lost.
	for _, l := range [][2]string{{a, "va"}, {b, "vb"}} {
		for i := 0; ; i++ {
			out, _ := exec.Command("ip", "-n", l[0], "-o", "link", "show", l[1]).Output()
			if strings.Contains(string(out), "state UP") {
				break
			}
			if i == 200 {
				t.Fatalf("%s did not come up: %s", l[1], out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return a, b
}

func openNS(t *testing.T, name string) *Netns {
	t.Helper()
	ns, err := OpenNetns("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// sendUDP sends n datagrams of size bytes from ns to dst.
func sendUDP(t *testing.T, ns *Netns, network, dst string, n, size int) {
	t.Helper()
	err := ns.Do(func() error {
		to, err := net.ResolveUDPAddr(network, dst)
		if err != nil {
			return err
		}
		// Unconnected, so that ICMP port unreachable does not fail writes.
		c, err := net.ListenUDP(network, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, size)
		for i := 0; i < n; i++ {
			if _, err := c.WriteToUDP(buf, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// collect reads packets until idle for 300ms, returning them by UDP
// destination port.
func collect(t *testing.T, h *Handle) map[uint16]int {
	t.Helper()
	got := map[uint16]int{}
	dec := capture.NewDecoder(capture.DecoderOptions{})
	var p capture.Packet
	var f capture.Frame
	deadline := time.Now().Add(5 * time.Second)
	idle := 0
	for time.Now().Before(deadline) && idle < 3 {
		err := h.Next(&p)
		if errors.Is(err, ErrTimeout) {
			idle++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		idle = 0
		if p.LinkType != capture.LinkRaw {
			t.Fatalf("link type %d", p.LinkType)
		}
		if dec.Decode(&p, &f) && f.Proto == capture.IPProtoUDP {
			got[f.DstPort]++
		}
	}
	return got
}

func TestCaptureInNetns(t *testing.T) {
	requireRoot(t)
	a, b := netnsPair(t)
	nsA, nsB := openNS(t, a), openNS(t, b)

	h, err := Open(nsA, Options{PollTimeout: 100 * time.Millisecond, RingSize: 1 << 20, BlockSize: 64 << 10, BlockTimeout: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sendUDP(t, nsA, "udp4", "127.0.0.1:7001", 10, 100)  // lo: once each, not twice
	sendUDP(t, nsB, "udp4", "10.77.0.1:7002", 20, 1200) // into a over the veth
	sendUDP(t, nsA, "udp4", "10.77.0.2:7003", 5, 50)    // out of a over the veth
	sendUDP(t, nsA, "udp6", "[::1]:7004", 3, 10)        // IPv6 on lo
	sendUDP(t, nsB, "udp6", "[fd77::1]:7005", 4, 10)    // IPv6 over the veth
	sendUDP(t, nsB, "udp4", "10.77.0.2:7006", 7, 10)    // inside b: never seen in a
	got := collect(t, h)
	want := map[uint16]int{7001: 10, 7002: 20, 7003: 5, 7004: 3, 7005: 4}
	for port, n := range want {
		if got[port] != n {
			t.Errorf("port %d: %d packets, want %d (all: %v)", port, got[port], n, got)
		}
	}
	if got[7006] != 0 {
		t.Errorf("saw %d packets of another namespace", got[7006])
	}
	st, err := h.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets < 42 || st.Drops != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestCaptureFilterAndInterface(t *testing.T) {
	requireRoot(t)
	a, b := netnsPair(t)
	nsA, nsB := openNS(t, a), openNS(t, b)
	h, err := Open(nsA, Options{Interface: "va", Filter: "udp and dst port 7002", BlockSize: 64 << 10, RingSize: 1 << 20, BlockTimeout: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sendUDP(t, nsA, "udp4", "127.0.0.1:7002", 10, 100) // lo: not the bound interface
	sendUDP(t, nsB, "udp4", "10.77.0.1:7002", 6, 100)
	sendUDP(t, nsB, "udp4", "10.77.0.1:7003", 6, 100) // filtered out
	got := collect(t, h)
	if got[7002] != 6 || got[7003] != 0 || len(got) != 1 {
		t.Errorf("got %v, want 6 packets to 7002 only", got)
	}
	// A small snap length is applied by the kernel.
	h2, err := Open(nsA, Options{SnapLen: 40, BlockSize: 64 << 10, RingSize: 1 << 20, BlockTimeout: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	sendUDP(t, nsB, "udp4", "10.77.0.1:7009", 1, 1000)
	var p capture.Packet
	if err := h2.Next(&p); err != nil {
		t.Fatal(err)
	}
	if len(p.Data) != 40 || p.Length != 1028 {
		t.Errorf("captured %d of %d bytes, want 40 of 1028", len(p.Data), p.Length)
	}
}

func TestOpenErrors(t *testing.T) {
	requireRoot(t)
	if _, err := Open(nil, Options{Interface: "does-not-exist0"}); err == nil {
		t.Error("opened a missing interface")
	}
	if _, err := Open(nil, Options{Filter: "port x"}); !errors.Is(err, ErrFilter) {
		t.Errorf("bad filter: %v", err)
	}
	if _, err := Open(nil, Options{BlockSize: 3000}); err == nil {
		t.Error("accepted a bad block size")
	}
	if _, err := OpenNetns("/nonexistent/ns"); err == nil {
		t.Error("opened a missing namespace")
	}
	if _, err := OpenNetns("/proc/self/cgroup"); !errors.Is(err, ErrNotNetns) {
		t.Errorf("a regular file: %v", err)
	}
	if _, err := NetnsInode("/etc/hostname"); !errors.Is(err, ErrNotNetns) {
		t.Errorf("a regular file: %v", err)
	}
	if _, err := NetnsInode("/proc/self/ns/net"); err != nil {
		t.Error(err)
	}
}
