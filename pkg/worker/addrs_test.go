package worker

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// nlAddr builds one RTM_NEWADDR message.
func nlAddr(family, scope byte, attrs map[uint16][]byte) []byte {
	ne := binary.NativeEndian
	body := []byte{family, 24, 0, scope, 2, 0, 0, 0}
	for _, typ := range []uint16{ifaAddress, ifaLocal, 3} {
		v, ok := attrs[typ]
		if !ok {
			continue
		}
		a := make([]byte, 4, 4+len(v)+3)
		ne.PutUint16(a, uint16(4+len(v)))
		ne.PutUint16(a[2:], typ)
		a = append(a, v...)
		for len(a)%4 != 0 {
			a = append(a, 0)
		}
		body = append(body, a...)
	}
	h := make([]byte, nlmsgHdrLen)
	ne.PutUint32(h, uint32(nlmsgHdrLen+len(body)))
	ne.PutUint16(h[4:], rtmNewAddr)
	return append(h, body...)
}

func nlDone() []byte {
	h := make([]byte, nlmsgHdrLen+4)
	binary.NativeEndian.PutUint32(h, uint32(len(h)))
	binary.NativeEndian.PutUint16(h[4:], nlmsgDone)
	return h
}

func TestParseAddrDump(t *testing.T) {
	v4 := netip.MustParseAddr("10.244.1.7").AsSlice()
	peer := netip.MustParseAddr("10.244.1.1").AsSlice()
	v6 := netip.MustParseAddr("fd00:10:244::7").AsSlice()
	lo := netip.MustParseAddr("127.0.0.1").AsSlice()
	ll := netip.MustParseAddr("fe80::1").AsSlice()
	var b []byte
	b = append(b, nlAddr(afInet, 254, map[uint16][]byte{ifaAddress: lo, ifaLocal: lo})...) // host scope
	b = append(b, nlAddr(afInet, 0, map[uint16][]byte{ifaAddress: peer, ifaLocal: v4, 3: []byte("eth0\x00")})...)
	b = append(b, nlAddr(afInet6, 0, map[uint16][]byte{ifaAddress: v6})...)
	b = append(b, nlAddr(afInet6, 253, map[uint16][]byte{ifaAddress: ll})...) // link scope
	got, done, err := parseAddrDump(b, nil)
	if err != nil || done {
		t.Fatalf("done %v err %v", done, err)
	}
	want := []netip.Addr{netip.MustParseAddr("10.244.1.7"), netip.MustParseAddr("fd00:10:244::7")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Error(diff)
	}
	if _, done, _ := parseAddrDump(nlDone(), nil); !done {
		t.Error("NLMSG_DONE not seen")
	}
	if _, _, err := parseAddrDump(b[:len(b)-3], nil); err == nil {
		t.Error("truncated message accepted")
	}
}

func FuzzParseAddrDump(f *testing.F) {
	f.Add(append(nlAddr(afInet, 0, map[uint16][]byte{ifaLocal: {10, 0, 0, 1}}), nlDone()...))
	f.Add(nlAddr(afInet6, 0, map[uint16][]byte{ifaAddress: make([]byte, 16)}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		addrs, _, _ := parseAddrDump(b, nil)
		if len(addrs) > maxPodAddrs {
			t.Fatalf("%d addresses", len(addrs))
		}
		for _, a := range addrs {
			if !a.IsValid() {
				t.Fatal("invalid address")
			}
		}
	})
}

func FuzzIPEnds(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		src, dst, ok := ipEnds(b)
		if ok && (!src.IsValid() || !dst.IsValid()) {
			t.Fatal("ok with invalid addresses")
		}
	})
}

func TestTableAnnotateAndDedup(t *testing.T) {
	a := &podInfo{index: 0, namespace: "shop", pod: "front", netns: 100}
	b := &podInfo{index: 1, namespace: "shop", pod: "cart", netns: 200}
	old := &podInfo{index: 2, namespace: "shop", pod: "gone", netns: 300}
	for p, ips := range map[*podInfo][]string{a: {"10.0.0.1", "fd00::1"}, b: {"10.0.0.2"}, old: {"10.0.0.3"}} {
		var addrs []netip.Addr
		for _, s := range ips {
			addrs = append(addrs, netip.MustParseAddr(s))
		}
		p.ips.Store(&addrs)
	}
	tbl := buildTable([]*podInfo{a, b, old}, []*podInfo{a, b})

	e := &entry.Entry{Src: entry.Endpoint{IP: "10.0.0.1", Port: 4000}, Dst: entry.Endpoint{IP: "10.0.0.2", Port: 80}}
	tbl.annotate(e, 0, "node-1")
	want := entry.Endpoint{IP: "10.0.0.2", Port: 80, Pod: "cart", Namespace: "shop", Node: "node-1"}
	if diff := cmp.Diff(want, e.Dst); diff != "" {
		t.Error(diff)
	}
	if e.Src.Pod != "front" {
		t.Errorf("src %+v", e.Src)
	}
	// Loopback is the capture's own pod; detached pods and strangers are not named.
	e = &entry.Entry{Src: entry.Endpoint{IP: "127.0.0.1"}, Dst: entry.Endpoint{IP: "10.0.0.3"}}
	tbl.annotate(e, 1, "")
	if e.Src.Pod != "cart" || e.Dst.Pod != "" || e.Src.Node != "" {
		t.Errorf("loopback/detached: %+v", e)
	}
	// IPv6, and an IPv4 address spelled as IPv4-mapped IPv6.
	e = &entry.Entry{Src: entry.Endpoint{IP: "fd00::1"}, Dst: entry.Endpoint{IP: "::ffff:10.0.0.2"}}
	tbl.annotate(e, 0, "")
	if e.Src.Pod != "front" || e.Dst.Pod != "cart" {
		t.Errorf("IPv6/mapped: %+v", e)
	}

	pkt := func(src, dst string) []byte {
		b := make([]byte, 20)
		b[0] = 0x45
		s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
		copy(b[12:], s[:])
		copy(b[16:], d[:])
		return b
	}
	for _, tt := range []struct {
		ino      uint64
		src, dst string
		skip     bool
	}{
		{100, "10.0.0.1", "10.0.0.2", false}, // front owns front<->cart (lower address)
		{200, "10.0.0.1", "10.0.0.2", true},
		{200, "10.0.0.2", "10.0.0.1", true},
		{100, "10.0.0.2", "10.0.0.1", false},
		{200, "10.0.0.2", "10.9.9.9", false}, // one end outside
		{200, "10.0.0.3", "10.0.0.2", false}, // a detached pod
	} {
		if got := tbl.skipDissect(tt.ino, pkt(tt.src, tt.dst)); got != tt.skip {
			t.Errorf("netns %d %s->%s: skip %v", tt.ino, tt.src, tt.dst, got)
		}
	}
}
