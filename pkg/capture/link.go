package capture

import (
	"fmt"
	"strconv"
)

// linkNames holds the LINKTYPE_ names of the link types we decode and of
// those users are likely to feed us by mistake, for error messages.
var linkNames = map[LinkType]string{
	LinkNull:     "NULL",
	LinkEthernet: "ETHERNET",
	LinkRaw:      "RAW",
	LinkLoop:     "LOOP",
	LinkSLL:      "LINUX_SLL",
	LinkIPv4:     "IPV4",
	LinkIPv6:     "IPV6",
	LinkSLL2:     "LINUX_SLL2",
	9:            "PPP",
	50:           "PPP_HDLC",
	51:           "PPP_ETHER",
	105:          "IEEE802_11",
	119:          "IEEE802_11_PRISM",
	127:          "IEEE802_11_RADIOTAP",
	147:          "USER0",
	189:          "USB_LINUX",
	192:          "PPI",
	195:          "IEEE802_15_4_WITHFCS",
	201:          "BLUETOOTH_HCI_H4_WITH_PHDR",
	220:          "USB_LINUX_MMAPPED",
	227:          "CAN_SOCKETCAN",
	231:          "DBUS",
	239:          "NFLOG",
	249:          "USBPCAP",
	253:          "NETLINK",
}

// String returns the LINKTYPE_ name without its prefix, or the number.
func (t LinkType) String() string {
	if name, ok := linkNames[t]; ok {
		return name
	}
	return strconv.FormatUint(uint64(t), 10)
}

// Historical DLT values some systems write instead of LINKTYPE_RAW.
const (
	dltRawOpenBSD LinkType = 12
	dltRawBSDOS   LinkType = 14
)

// normalizeLink maps the link-type field of a capture header to the
// LinkType the decoder handles: it drops the FCS bits that pcap keeps in
// the upper bits and folds the old raw-IP DLT values into LinkRaw.
func normalizeLink(v uint32) LinkType {
	t := LinkType(v & 0x03ffffff)
	if t == dltRawOpenBSD || t == dltRawBSDOS {
		return LinkRaw
	}
	return t
}

// checkLink returns an error wrapping ErrUnsupportedLink for link types
// the decoder cannot handle.
func checkLink(t LinkType) error {
	switch t {
	case LinkNull, LinkEthernet, LinkRaw, LinkLoop, LinkSLL, LinkIPv4, LinkIPv6, LinkSLL2:
		return nil
	}
	if _, ok := linkNames[t]; ok {
		return fmt.Errorf("%w %d (%s)", ErrUnsupportedLink, uint32(t), t)
	}
	return fmt.Errorf("%w %d", ErrUnsupportedLink, uint32(t))
}
