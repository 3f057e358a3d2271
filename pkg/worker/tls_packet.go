package worker

import (
	"encoding/binary"
	"net/netip"
)

// TCP flags of the synthetic packets.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpPSH = 0x08
	tcpACK = 0x10
)

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	tcpHeaderLen  = 20
	// synthTTL marks synthetic packets in a pcap (a real first hop rarely
	// shows 1).
	synthTTL = 1
)

// appendTCPPacket appends a raw IPv4 or IPv6 packet (LINKTYPE_RAW) with a
// TCP segment carrying payload. Both ends must be of one family; IPv4-mapped
// IPv6 addresses count as IPv4. Checksums are filled in, so the pcap store's
// copy reads cleanly in Wireshark.
func appendTCPPacket(dst []byte, src, dstAP netip.AddrPort, seq, ack uint32, flags byte, payload []byte) []byte {
	sa, da := src.Addr().Unmap(), dstAP.Addr().Unmap()
	start := len(dst)
	tcpLen := tcpHeaderLen + len(payload)
	var pseudo uint32
	if sa.Is4() && da.Is4() {
		dst = append(dst, make([]byte, ipv4HeaderLen)...)
		ip := dst[start:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(ipv4HeaderLen+tcpLen))
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
		ip[8] = synthTTL
		ip[9] = 6 // TCP
		s, d := sa.As4(), da.As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum(0, ip[:ipv4HeaderLen])))
		pseudo = sum(sum(0, s[:]), d[:]) + 6 + uint32(tcpLen)
	} else {
		dst = append(dst, make([]byte, ipv6HeaderLen)...)
		ip := dst[start:]
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(tcpLen))
		ip[6] = 6 // TCP
		ip[7] = synthTTL
		s, d := sa.As16(), da.As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		pseudo = sum(sum(0, s[:]), d[:]) + 6 + uint32(tcpLen)
	}
	tcpStart := len(dst)
	dst = append(dst, make([]byte, tcpHeaderLen)...)
	tcp := dst[tcpStart:]
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dstAP.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = (tcpHeaderLen / 4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535) // window
	dst = append(dst, payload...)
	binary.BigEndian.PutUint16(dst[tcpStart+16:], ^fold(sum(pseudo, dst[tcpStart:])))
	return dst
}

// sum adds b as big-endian 16-bit words (the Internet checksum, RFC 1071).
func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 8 {
		acc += uint32(binary.BigEndian.Uint16(b)) + uint32(binary.BigEndian.Uint16(b[2:])) +
			uint32(binary.BigEndian.Uint16(b[4:])) + uint32(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
		acc = (acc & 0xffff) + acc>>16
	}
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = (acc & 0xffff) + acc>>16
	}
	return uint16(acc)
}
