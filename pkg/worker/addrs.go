package worker

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Netlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h).
const (
	nlmsgHdrLen   = 16
	nlmsgError    = 2
	nlmsgDone     = 3
	rtmNewAddr    = 20
	rtmGetAddr    = 22
	ifaAddress    = 1
	ifaLocal      = 2
	afInet        = 2
	afInet6       = 10
	scopeUniverse = 0
	// maxPodAddrs bounds the addresses kept per namespace.
	maxPodAddrs = 64
)

var errNetlink = errors.New("netlink error reply")

// parseAddrDump reads RTM_NEWADDR messages of one netlink reply buffer and
// appends the global (universe scope) addresses to addrs. done reports the
// end of the dump. It never reads past b and keeps at most maxPodAddrs.
func parseAddrDump(b []byte, addrs []netip.Addr) (_ []netip.Addr, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		n := int(ne.Uint32(b))
		if n < nlmsgHdrLen || n > len(b) {
			return addrs, false, errors.New("truncated netlink message")
		}
		msg := b[nlmsgHdrLen:n]
		switch ne.Uint16(b[4:]) {
		case nlmsgDone:
			return addrs, true, nil
		case nlmsgError:
			return addrs, true, errNetlink
		case rtmNewAddr:
			if a, ok := parseAddrMsg(msg); ok && len(addrs) < maxPodAddrs {
				addrs = append(addrs, a)
			}
		}
		b = b[min(align4(n), len(b)):]
	}
	return addrs, false, nil
}

// parseAddrMsg reads one ifaddrmsg and its attributes.
func parseAddrMsg(m []byte) (netip.Addr, bool) {
	const ifaddrmsgLen = 8
	if len(m) < ifaddrmsgLen {
		return netip.Addr{}, false
	}
	family, scope := m[0], m[3]
	if scope != scopeUniverse || (family != afInet && family != afInet6) {
		return netip.Addr{}, false
	}
	var local, address netip.Addr
	ne := binary.NativeEndian
	for a := m[ifaddrmsgLen:]; len(a) >= 4; {
		n := int(ne.Uint16(a))
		if n < 4 || n > len(a) {
			break
		}
		val := a[4:n]
		switch ne.Uint16(a[2:]) {
		case ifaLocal:
			local, _ = addrOf(family, val)
		case ifaAddress:
			address, _ = addrOf(family, val)
		}
		a = a[min(align4(n), len(a)):]
	}
	if local.IsValid() {
		return local, true
	}
	return address, address.IsValid()
}

func addrOf(family byte, b []byte) (netip.Addr, bool) {
	switch {
	case family == afInet && len(b) == 4:
		return netip.AddrFrom4([4]byte(b)), true
	case family == afInet6 && len(b) == 16:
		return netip.AddrFrom16([16]byte(b)), true
	}
	return netip.Addr{}, false
}

func align4(n int) int { return (n + 3) &^ 3 }

// addrDumpRequest is an RTM_GETADDR dump request for every family.
func addrDumpRequest(seq uint32) []byte {
	const nlmFRequest, nlmFDump = 0x1, 0x300
	b := make([]byte, nlmsgHdrLen+8)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], rtmGetAddr)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	return b
}

// ipEnds returns the source and destination addresses of a raw IP packet.
func ipEnds(b []byte) (src, dst netip.Addr, ok bool) {
	if len(b) == 0 {
		return src, dst, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) >= 20 {
			return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), true
		}
	case 6:
		if len(b) >= 40 {
			return netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), true
		}
	}
	return src, dst, false
}
