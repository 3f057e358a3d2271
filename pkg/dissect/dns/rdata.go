package dns

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"
)

// renderRData renders the data of one record (msg[off:end]) in zone-file
// presentation form: addresses, names with their trailing dot, quoted
// character-strings. Types with no text form here use the generic RFC 3597
// form `\# <len> <hex>`. The result is at most maxDataText bytes.
func renderRData(msg []byte, typ uint16, off, end int) string {
	var buf [256]byte
	r := rdata{msg: msg[:end], off: off}
	out := r.render(buf[:0], typ)
	if r.bad {
		out = appendGeneric(buf[:0], msg[off:end])
	}
	if len(out) > maxDataText {
		out = append(out[:maxDataText-3], "..."...)
	}
	return string(out)
}

// rdata reads the fields of one record's data. Any read past the end of
// the data sets bad, and the record falls back to the generic form.
type rdata struct {
	msg []byte // the message, cut at the end of this record's data
	off int
	bad bool
}

func (r *rdata) render(dst []byte, typ uint16) []byte {
	switch typ {
	case typeA:
		dst = r.addr(dst, 4)
	case typeAAAA:
		dst = r.addr(dst, 16)
	case typeNS, typeCNAME, typePTR, typeDNAME, typeMD, typeMF, typeMB, typeMG, typeMR:
		dst = r.name(dst)
	case typeMX, typeKX, typeAFSDB, typeRT:
		dst = r.u16(dst)
		dst = r.name(append(dst, ' '))
	case typeSOA:
		dst = r.soa(dst)
	case typeTXT, typeSPF:
		dst = r.strings(dst)
	case typeHINFO:
		dst = r.str(dst)
		dst = r.str(append(dst, ' '))
	case typeSRV:
		dst = r.u16(dst)
		dst = r.u16(append(dst, ' '))
		dst = r.u16(append(dst, ' '))
		dst = r.name(append(dst, ' '))
	case typeNAPTR:
		dst = r.u16(dst)
		dst = r.u16(append(dst, ' '))
		for i := 0; i < 3; i++ {
			dst = r.str(append(dst, ' '))
		}
		dst = r.name(append(dst, ' '))
	case typeCAA:
		dst = r.caa(dst)
	case typeSVCB, typeHTTPS:
		dst = r.svcb(dst)
	case typeDS, typeCDS, typeDLV:
		dst = r.u16(dst)
		dst = r.u8(append(dst, ' '))
		dst = r.u8(append(dst, ' '))
		dst = r.hexRest(append(dst, ' '))
	case typeSSHFP:
		dst = r.u8(dst)
		dst = r.u8(append(dst, ' '))
		dst = r.hexRest(append(dst, ' '))
	case typeTLSA, typeSMIMEA:
		dst = r.u8(dst)
		dst = r.u8(append(dst, ' '))
		dst = r.u8(append(dst, ' '))
		dst = r.hexRest(append(dst, ' '))
	default:
		r.bad = true
		return dst
	}
	if r.off != len(r.msg) { // trailing bytes: the type's form does not fit
		r.bad = true
	}
	return dst
}

func (r *rdata) take(n int) []byte {
	if r.bad || r.off+n > len(r.msg) {
		r.bad = true
		return nil
	}
	b := r.msg[r.off : r.off+n]
	r.off += n
	return b
}

func (r *rdata) addr(dst []byte, n int) []byte {
	b := r.take(n)
	if b == nil {
		return dst
	}
	if n == 4 {
		return netip.AddrFrom4([4]byte(b)).AppendTo(dst)
	}
	return netip.AddrFrom16([16]byte(b)).AppendTo(dst)
}

func (r *rdata) u8(dst []byte) []byte {
	b := r.take(1)
	if b == nil {
		return dst
	}
	return strconv.AppendUint(dst, uint64(b[0]), 10)
}

func (r *rdata) u16(dst []byte) []byte {
	b := r.take(2)
	if b == nil {
		return dst
	}
	return strconv.AppendUint(dst, uint64(binary.BigEndian.Uint16(b)), 10)
}

func (r *rdata) u32(dst []byte) []byte {
	b := r.take(4)
	if b == nil {
		return dst
	}
	return strconv.AppendUint(dst, uint64(binary.BigEndian.Uint32(b)), 10)
}

// name renders a domain name as a fully qualified name with its trailing
// dot. Compression pointers may lead back anywhere before the end of this
// record's data, which is where every legal pointer target lies.
func (r *rdata) name(dst []byte) []byte {
	if r.bad {
		return dst
	}
	start := len(dst)
	out, next, err := appendName(dst, r.msg, r.off)
	if err != nil {
		r.bad = true
		return dst
	}
	r.off = next
	if len(out) > start && out[len(out)-1] != '.' {
		out = append(out, '.')
	}
	return out
}

// str renders one character-string (a length octet and up to 255 bytes),
// quoted, with quotes, backslashes and non-printable bytes escaped.
func (r *rdata) str(dst []byte) []byte {
	l := r.take(1)
	if l == nil {
		return dst
	}
	s := r.take(int(l[0]))
	if r.bad {
		return dst
	}
	return appendQuoted(dst, s)
}

func appendQuoted(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, b := range s {
		switch {
		case b == '"' || b == '\\':
			dst = append(dst, '\\', b)
		case b < ' ' || b >= 0x7F:
			dst = append(dst, '\\', '0'+b/100, '0'+b/10%10, '0'+b%10)
		default:
			dst = append(dst, b)
		}
	}
	return append(dst, '"')
}

// strings renders the one or more character-strings of a TXT record.
func (r *rdata) strings(dst []byte) []byte {
	for first := true; r.off < len(r.msg) && !r.bad; first = false {
		if !first {
			dst = append(dst, ' ')
		}
		if len(dst) > maxDataText {
			r.off = len(r.msg) // the rest would be cut anyway
			break
		}
		dst = r.str(dst)
	}
	return dst
}

func (r *rdata) soa(dst []byte) []byte {
	dst = r.name(dst)
	dst = r.name(append(dst, ' '))
	for i := 0; i < 5; i++ { // serial refresh retry expire minimum
		dst = r.u32(append(dst, ' '))
	}
	return dst
}

// caa renders `flags tag "value"` (RFC 8659).
func (r *rdata) caa(dst []byte) []byte {
	dst = r.u8(dst)
	l := r.take(1)
	if l == nil {
		return dst
	}
	tag := r.take(int(l[0]))
	if r.bad {
		return dst
	}
	dst = appendLabel(append(dst, ' '), tag)
	dst = appendQuoted(append(dst, ' '), r.take(len(r.msg)-r.off))
	return dst
}

// SvcParamKeys with a text form (RFC 9460 14.3.2).
const (
	svcMandatory = 0
	svcALPN      = 1
	svcNoDefault = 2
	svcPort      = 3
	svcIPv4Hint  = 4
	svcIPv6Hint  = 6
)

// svcb renders `priority target key=value...` (RFC 9460 2.1).
func (r *rdata) svcb(dst []byte) []byte {
	dst = r.u16(dst)
	dst = r.name(append(dst, ' '))
	for r.off < len(r.msg) && !r.bad {
		kv := r.take(4)
		if kv == nil {
			break
		}
		key := binary.BigEndian.Uint16(kv)
		val := r.take(int(binary.BigEndian.Uint16(kv[2:])))
		if r.bad {
			break
		}
		dst = appendSvcParam(append(dst, ' '), key, val)
	}
	return dst
}

func appendSvcParam(dst []byte, key uint16, val []byte) []byte {
	switch key {
	case svcALPN:
		dst = append(dst, "alpn="...)
		for first := true; len(val) > 0; first = false {
			n := int(val[0])
			if 1+n > len(val) {
				break
			}
			if !first {
				dst = append(dst, ',')
			}
			dst = appendLabel(dst, val[1:1+n])
			val = val[1+n:]
		}
		return dst
	case svcNoDefault:
		return append(dst, "no-default-alpn"...)
	case svcPort:
		if len(val) == 2 {
			return strconv.AppendUint(append(dst, "port="...), uint64(binary.BigEndian.Uint16(val)), 10)
		}
	case svcIPv4Hint, svcIPv6Hint:
		n, prefix := 4, "ipv4hint="
		if key == svcIPv6Hint {
			n, prefix = 16, "ipv6hint="
		}
		dst = append(dst, prefix...)
		for i := 0; i+n <= len(val); i += n {
			if i > 0 {
				dst = append(dst, ',')
			}
			if n == 4 {
				dst = netip.AddrFrom4([4]byte(val[i:])).AppendTo(dst)
			} else {
				dst = netip.AddrFrom16([16]byte(val[i:])).AppendTo(dst)
			}
		}
		return dst
	case svcMandatory:
		dst = append(dst, "mandatory="...)
		for i := 0; i+2 <= len(val); i += 2 {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendUint(append(dst, "key"...), uint64(binary.BigEndian.Uint16(val[i:])), 10)
		}
		return dst
	}
	dst = strconv.AppendUint(append(dst, "key"...), uint64(key), 10)
	return appendHex(append(dst, '='), val)
}

func (r *rdata) hexRest(dst []byte) []byte {
	return appendHex(dst, r.take(len(r.msg)-r.off))
}

// appendGeneric renders data as `\# <len> <hex>` (RFC 3597 5).
func appendGeneric(dst, data []byte) []byte {
	dst = strconv.AppendInt(append(dst, `\# `...), int64(len(data)), 10)
	if len(data) == 0 {
		return dst
	}
	return appendHex(append(dst, ' '), data)
}

// appendHex appends at most maxHexData bytes of data in hex, then "..." if
// there was more.
func appendHex(dst, data []byte) []byte {
	more := len(data) > maxHexData
	if more {
		data = data[:maxHexData]
	}
	dst = hex.AppendEncode(dst, data)
	if more {
		dst = append(dst, "..."...)
	}
	return dst
}
