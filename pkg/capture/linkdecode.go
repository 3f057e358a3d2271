package capture

import (
	"encoding/binary"
	"math/bits"
)

// Results of linkPayload besides the IP versions 4 and 6.
const (
	linkNotIP = 0
	linkShort = -1 // the frame is shorter than its link header
)

// EtherTypes we follow.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherVLAN  = 0x8100 // 802.1Q
	etherQinQ  = 0x88a8 // 802.1ad
	etherQinQ2 = 0x9100 // pre-standard QinQ

	maxVLANTags = 4
)

// Header lengths of the Linux cooked headers.
const (
	sllLen  = 16
	sll2Len = 20

	arphrdNetlink = 824 // nflog/netlink frames in SLL: not IP
)

// linkPayload strips the link header of a frame and returns the network
// layer with its IP version, linkNotIP or linkShort.
func linkPayload(t LinkType, b []byte) ([]byte, int) {
	switch t {
	case LinkEthernet:
		if len(b) < 14 {
			return nil, linkShort
		}
		return etherPayload(b[14:], binary.BigEndian.Uint16(b[12:]))
	case LinkSLL:
		if len(b) < sllLen {
			return nil, linkShort
		}
		if binary.BigEndian.Uint16(b[2:]) == arphrdNetlink {
			return nil, linkNotIP
		}
		return etherPayload(b[sllLen:], binary.BigEndian.Uint16(b[14:]))
	case LinkSLL2:
		if len(b) < sll2Len {
			return nil, linkShort
		}
		if binary.BigEndian.Uint16(b[8:]) == arphrdNetlink {
			return nil, linkNotIP
		}
		return etherPayload(b[sll2Len:], binary.BigEndian.Uint16(b))
	case LinkRaw:
		if len(b) < 1 {
			return nil, linkShort
		}
		return rawPayload(b, int(b[0]>>4))
	case LinkIPv4:
		return rawPayload(b, 4)
	case LinkIPv6:
		return rawPayload(b, 6)
	case LinkNull, LinkLoop:
		return loopbackPayload(b)
	}
	return nil, linkNotIP
}

// etherPayload follows an EtherType through up to maxVLANTags VLAN tags.
func etherPayload(b []byte, typ uint16) ([]byte, int) {
	for range maxVLANTags + 1 {
		switch typ {
		case etherIPv4:
			return b, 4
		case etherIPv6:
			return b, 6
		case etherVLAN, etherQinQ, etherQinQ2:
			if len(b) < 4 {
				return nil, linkShort
			}
			typ, b = binary.BigEndian.Uint16(b[2:]), b[4:]
		default:
			return nil, linkNotIP // ARP, LLDP, 802.3 lengths, ...
		}
	}
	return nil, linkNotIP
}

func rawPayload(b []byte, version int) ([]byte, int) {
	if version != 4 && version != 6 {
		return nil, linkNotIP
	}
	return b, version
}

// loopbackPayload reads the 4-byte address family of NULL (host order of
// the writer) and LOOP (network order). Families fit in 16 bits, so a
// larger value means the other byte order.
func loopbackPayload(b []byte) ([]byte, int) {
	if len(b) < 4 {
		return nil, linkShort
	}
	family := binary.LittleEndian.Uint32(b)
	if family > 0xffff {
		family = bits.ReverseBytes32(family)
	}
	switch family {
	case 2: // AF_INET everywhere
		return b[4:], 4
	case 24, 28, 30: // AF_INET6 on OpenBSD/NetBSD, FreeBSD, Darwin
		return b[4:], 6
	}
	return nil, linkNotIP
}
