//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

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

// heldBlocks reads blocks until the ring is idle for three poll timeouts,
// holding every one, and counts their UDP packets by destination port.
func heldBlocks(t *testing.T, h *Handle) ([]*Block, map[uint16]int) {
	t.Helper()
	var blocks []*Block
	got := map[uint16]int{}
	dec := capture.NewDecoder(capture.DecoderOptions{})
	var p capture.Packet
	var f capture.Frame
	for idle := 0; idle < 3; {
		b, err := h.NextBlock()
		if errors.Is(err, ErrTimeout) {
			idle++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		idle = 0
		blocks = append(blocks, b)
		if h.Held() != len(blocks) {
			t.Fatalf("Held() = %d with %d blocks out", h.Held(), len(blocks))
		}
		for b.Next(&p) {
			if dec.Decode(&p, &f) && f.Proto == capture.IPProtoUDP {
				got[f.DstPort]++
			}
		}
	}
	return blocks, got
}

// recount decodes the packets of held blocks again: they must be intact.
func recount(t *testing.T, h *Handle, blocks []*Block) map[uint16]int {
	t.Helper()
	got := map[uint16]int{}
	dec := capture.NewDecoder(capture.DecoderOptions{})
	var p capture.Packet
	var f capture.Frame
	for _, b := range blocks {
		off := int(uintptr(unsafe.Pointer(b.status))-uintptr(unsafe.Pointer(&h.ring[0]))) - offBlockStatus
		again := &Block{h: h, status: b.status, w: newWalker(h.ring[off : off+h.bsize])}
		for again.Next(&p) {
			if dec.Decode(&p, &f) && f.Proto == capture.IPProtoUDP {
				got[f.DstPort]++
			}
		}
	}
	return got
}

func TestBlocksReleasedOutOfOrder(t *testing.T) {
	requireRoot(t)
	a, b := netnsPair(t)
	nsA, nsB := openNS(t, a), openNS(t, b)
	h, err := Open(nsA, Options{Filter: "udp", PollTimeout: 50 * time.Millisecond, RingSize: 16 * minBlockSize, BlockSize: minBlockSize, BlockTimeout: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	want := map[uint16]int{}
	for i := range 4 {
		port := uint16(7100 + i)
		sendUDP(t, nsB, "udp4", fmt.Sprintf("10.77.0.1:%d", port), 30, 1000)
		want[port] = 30
		time.Sleep(20 * time.Millisecond) // retire the block: one per burst
	}
	blocks, got := heldBlocks(t, h)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("packets by port (-want +got):\n%s", diff)
	}
	if len(blocks) < 3 {
		t.Fatalf("%d blocks for four bursts 20ms apart", len(blocks))
	}
	if diff := cmp.Diff(want, recount(t, h, blocks)); diff != "" {
		t.Errorf("held packets changed (-want +got):\n%s", diff)
	}
	// Release the newest first, and one twice.
	for i := len(blocks) - 1; i >= 0; i-- {
		blocks[i].Release()
	}
	blocks[0].Release()
	if h.Held() != 0 {
		t.Fatalf("Held() = %d after releasing all", h.Held())
	}
	// The kernel fills the released blocks again, past the end of the
	// ring (a block per burst; no reader meanwhile, so fewer than 16).
	want = map[uint16]int{}
	for i := range 12 {
		port := uint16(7200 + i)
		sendUDP(t, nsB, "udp4", fmt.Sprintf("10.77.0.1:%d", port), 30, 1000)
		want[port] = 30
		time.Sleep(5 * time.Millisecond)
	}
	if diff := cmp.Diff(want, collect(t, h)); diff != "" {
		t.Errorf("after release (-want +got):\n%s", diff)
	}
	st, err := h.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets != 4*30+12*30 || st.Drops != 0 || st.Corrupt != 0 {
		t.Errorf("stats %+v, want %d packets and no drops", st, 4*30+12*30)
	}
}

func TestHeldBlocksDrop(t *testing.T) {
	requireRoot(t)
	a, b := netnsPair(t)
	nsA, nsB := openNS(t, a), openNS(t, b)
	h, err := Open(nsA, Options{Filter: "udp", PollTimeout: 50 * time.Millisecond, RingSize: 4 * minBlockSize, BlockSize: minBlockSize, BlockTimeout: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// 600 KB into a ring of 256 KB that nobody hands back.
	sendUDP(t, nsB, "udp4", "10.77.0.1:7300", 500, 1200)
	blocks, got := heldBlocks(t, h)
	if len(blocks) != 4 || h.Held() != 4 {
		t.Fatalf("%d blocks taken (%d held), want the whole ring", len(blocks), h.Held())
	}
	st, err := h.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Drops == 0 || st.Freezes == 0 {
		t.Errorf("stats %+v: no drops while every block was held", st)
	}
	if uint64(got[7300]) != st.Packets-st.Drops {
		t.Errorf("captured %d, the kernel says %d of %d kept", got[7300], st.Packets-st.Drops, st.Packets)
	}
	for _, b := range blocks {
		b.Release()
	}
	sendUDP(t, nsB, "udp4", "10.77.0.1:7301", 10, 1200)
	if got := collect(t, h); got[7301] != 10 {
		t.Errorf("after release: %v, want 10 packets to 7301", got)
	}
}

func TestCloseWithHeldBlock(t *testing.T) {
	requireRoot(t)
	a, b := netnsPair(t)
	nsA, nsB := openNS(t, a), openNS(t, b)
	h, err := Open(nsA, Options{Filter: "udp", RingSize: 4 * minBlockSize, BlockSize: minBlockSize, BlockTimeout: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sendUDP(t, nsB, "udp4", "10.77.0.1:7400", 5, 300)
	blk, err := h.NextBlock()
	if err != nil {
		t.Fatal(err)
	}
	var p capture.Packet
	if !blk.Next(&p) {
		t.Fatal("an empty block")
	}
	before, _ := h.Stats()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if h.closed {
		t.Fatal("Close unmapped the ring while a block was held")
	}
	if p.Data[0]>>4 != 4 || len(p.Data) != 328 { // still readable
		t.Errorf("held packet: %d bytes, version %d", len(p.Data), p.Data[0]>>4)
	}
	if _, err := h.NextBlock(); err == nil || errors.Is(err, ErrTimeout) {
		t.Errorf("NextBlock after Close: %v", err)
	}
	if err := h.Next(&p); err == nil || errors.Is(err, ErrTimeout) {
		t.Errorf("Next after Close: %v", err)
	}
	blk.Release()
	if !h.closed || h.ring != nil {
		t.Error("the last release did not unmap the ring")
	}
	after, err := h.Stats()
	if err != nil || after != before {
		t.Errorf("stats after close %+v (%v), want %+v", after, err, before)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCorruptBlocksCounted: the packets a corrupt block holds past its
// first bad offset are lost, and Stats says how many, whether the block
// is bad from its descriptor or from a packet in the middle.
func TestCorruptBlocksCounted(t *testing.T) {
	a, b, c := []byte{0x45, 1}, []byte{0x45, 2}, []byte{0x45, 3}
	for _, tt := range []struct {
		name           string
		mutate         func(blk []byte)
		read, lostPkts uint64
	}{
		{"sound", func([]byte) {}, 3, 0},
		{"bad first offset", func(blk []byte) { ne.PutUint32(blk[offFirstPkt:], 8) }, 0, 3},
		{"bad second header", func(blk []byte) {
			second := blockDescLen + int(ne.Uint32(blk[blockDescLen+offNextPkt:]))
			ne.PutUint32(blk[second+offSnapLen:], 1<<20)
		}, 1, 2},
	} {
		blk := buildBlock(4096, a, b, c)
		tt.mutate(blk)
		h := &Handle{ring: blk, bsize: len(blk), nblocks: 1, out: make([]atomic.Bool, 1), closed: true}
		blkh := h.take(h.blockStatus(0))
		var p capture.Packet
		read := uint64(0)
		for blkh.Next(&p) {
			read++
		}
		st, err := h.Stats()
		if err != nil {
			t.Fatal(err)
		}
		corrupt := uint64(0)
		if tt.lostPkts > 0 {
			corrupt = 1
		}
		if read != tt.read || st.CorruptLost != tt.lostPkts || st.Corrupt != corrupt {
			t.Errorf("%s: read %d, stats %+v; want %d read, %d lost in %d corrupt block", tt.name, read, st, tt.read, tt.lostPkts, corrupt)
		}
	}
}
