package dns

import "strconv"

// Resource record types with a mnemonic (IANA "Resource Record (RR) TYPEs").
const (
	typeA      = 1
	typeNS     = 2
	typeMD     = 3
	typeMF     = 4
	typeCNAME  = 5
	typeSOA    = 6
	typeMB     = 7
	typeMG     = 8
	typeMR     = 9
	typeHINFO  = 13
	typePTR    = 12
	typeMX     = 15
	typeTXT    = 16
	typeAFSDB  = 18
	typeRT     = 21
	typeAAAA   = 28
	typeSRV    = 33
	typeNAPTR  = 35
	typeKX     = 36
	typeDNAME  = 39
	typeOPT    = 41
	typeDS     = 43
	typeSSHFP  = 44
	typeTLSA   = 52
	typeSVCB   = 64
	typeHTTPS  = 65
	typeSPF    = 99
	typeCAA    = 257
	typeCDS    = 59
	typeSMIMEA = 53
	typeDLV    = 32769
)

var typeNames = map[uint16]string{
	1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG",
	9: "MR", 10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX",
	16: "TXT", 17: "RP", 18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP",
	23: "NSAP-PTR", 24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA",
	29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC", 33: "SRV", 34: "ATMA",
	35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6", 39: "DNAME", 40: "SINK",
	41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG",
	47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM",
	52: "TLSA", 53: "SMIMEA", 55: "HIP", 56: "NINFO", 57: "RKEY", 58: "TALINK",
	59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD",
	64: "SVCB", 65: "HTTPS", 99: "SPF", 104: "NID", 105: "L32", 106: "L64",
	107: "LP", 108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR",
	252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA",
	258: "AVC", 259: "DOA", 260: "AMTRELAY", 261: "RESINFO", 32768: "TA", 32769: "DLV",
}

// typeName returns the mnemonic of an RR type, or TYPE<n> (RFC 3597).
func typeName(t uint16) string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// className returns the mnemonic of a class, or CLASS<n> (RFC 3597). The
// top bit, which mDNS uses for unicast-response and cache-flush, is not
// part of the class and is masked off by the caller.
func className(c uint16) string {
	switch c {
	case 1:
		return "IN"
	case 3:
		return "CH"
	case 4:
		return "HS"
	case 254:
		return "NONE"
	case 255:
		return "ANY"
	}
	return "CLASS" + strconv.Itoa(int(c))
}

var rcodeNames = [...]string{
	0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
	5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
	10: "NOTZONE", 11: "DSOTYPENI", 16: "BADVERS", 17: "BADKEY", 18: "BADTIME",
	19: "BADMODE", 20: "BADNAME", 21: "BADALG", 22: "BADTRUNC", 23: "BADCOOKIE",
}

// rcodeName returns the mnemonic of a (possibly extended) response code, or
// RCODE<n>.
func rcodeName(r uint16) string {
	if int(r) < len(rcodeNames) && rcodeNames[r] != "" {
		return rcodeNames[r]
	}
	return "RCODE" + strconv.Itoa(int(r))
}
