package dns

import (
	"encoding/binary"
	"errors"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Bounds on what one message may cost. The wire format caps a message at
// 64 KiB; these caps keep the work per message and the size of an entry
// bounded whatever the counts in the header claim.
const (
	headerLen      = 12
	maxNameWire    = 255 // RFC 1035 3.1: a name is at most 255 octets on the wire
	maxLabels      = 128 // 255 octets hold at most 127 labels and the root
	maxPointers    = 64  // compression pointers followed for one name
	maxQuestions   = 64  // a detector refuses more; mDNS queries carry a few
	maxSectionKept = 64  // records kept per section in an entry
	maxDataText    = 1024
	maxHexData     = 128 // rdata bytes shown in hex for types with no text form
)

var (
	errShort      = errors.New("truncated message")
	errLabelType  = errors.New("bad label type")
	errNameLong   = errors.New("name longer than 255 octets")
	errLabels     = errors.New("name with too many labels")
	errPointers   = errors.New("compression pointer loop")
	errNoQuestion = errors.New("no question")
	errRData      = errors.New("record data overruns its length")
)

// header is the fixed 12-octet message header (RFC 1035 4.1.1).
type header struct {
	id      uint16
	flags   uint16
	qdcount uint16
	ancount uint16
	nscount uint16
	arcount uint16
}

func readHeader(b []byte) header {
	return header{
		id:      binary.BigEndian.Uint16(b[0:]),
		flags:   binary.BigEndian.Uint16(b[2:]),
		qdcount: binary.BigEndian.Uint16(b[4:]),
		ancount: binary.BigEndian.Uint16(b[6:]),
		nscount: binary.BigEndian.Uint16(b[8:]),
		arcount: binary.BigEndian.Uint16(b[10:]),
	}
}

func (h header) response() bool { return h.flags&0x8000 != 0 }
func (h header) opcode() uint8  { return uint8(h.flags>>11) & 0xF }
func (h header) rcode() uint16  { return h.flags & 0xF }

// Opcodes a detector accepts (RFC 1035, RFC 1996, RFC 2136).
const (
	opQuery  = 0
	opNotify = 4
	opUpdate = 5
)

// plausible reports whether h looks like a DNS header a client or server
// would send; the detector uses it to tell DNS from other bytes.
func (h header) plausible() bool {
	switch h.opcode() {
	case opQuery, opNotify, opUpdate:
	default:
		return false
	}
	if h.flags&0x0040 != 0 { // Z must be zero
		return false
	}
	if !h.response() && h.rcode() != 0 {
		return false
	}
	if h.qdcount == 0 || h.qdcount > maxQuestions {
		return false
	}
	// Every record takes at least 11 octets and a message at most 64 KiB.
	return int(h.ancount)+int(h.nscount)+int(h.arcount) <= 65535/11
}

// appendName appends the presentation form of the name at off (without the
// trailing dot; the root is ".") and returns the offset just after the name
// as it appears at off. It follows compression pointers, at most maxPointers
// of them, and refuses names over 255 octets or 128 labels.
func appendName(dst, msg []byte, off int) ([]byte, int, error) {
	start := len(dst)
	next, wire, labels, hops := -1, 0, 0, 0
	for {
		if off >= len(msg) {
			return dst, 0, errShort
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				if next < 0 {
					next = off + 1
				}
				if len(dst) == start {
					dst = append(dst, '.')
				}
				return dst, next, nil
			}
			if off+1+c > len(msg) {
				return dst, 0, errShort
			}
			labels++
			wire += 1 + c
			if labels > maxLabels {
				return dst, 0, errLabels
			}
			if wire+1 > maxNameWire {
				return dst, 0, errNameLong
			}
			if len(dst) > start {
				dst = append(dst, '.')
			}
			dst = appendLabel(dst, msg[off+1:off+1+c])
			off += 1 + c
		case 0xC0:
			if off+1 >= len(msg) {
				return dst, 0, errShort
			}
			if next < 0 {
				next = off + 2
			}
			hops++
			if hops > maxPointers {
				return dst, 0, errPointers
			}
			off = (c&0x3F)<<8 | int(msg[off+1])
		default: // 0x40 extended and 0x80 reserved label types are obsolete
			return dst, 0, errLabelType
		}
	}
}

// appendLabel appends one label in presentation form: dots, backslashes and
// bytes outside printable ASCII are escaped (RFC 4343 2.1), so a name
// always renders as one unambiguous line.
func appendLabel(dst, label []byte) []byte {
	for _, b := range label {
		switch {
		case b == '.' || b == '\\':
			dst = append(dst, '\\', b)
		case b <= ' ' || b >= 0x7F:
			dst = append(dst, '\\', '0'+b/100, '0'+b/10%10, '0'+b%10)
		default:
			dst = append(dst, b)
		}
	}
	return dst
}

// question is the first entry of the question section.
type question struct {
	name   string
	qtype  uint16
	qclass uint16 // top bit (mDNS unicast-response) masked off
}

// readQuestion reads one question at off.
func readQuestion(msg []byte, off int) (question, int, error) {
	var buf [256]byte
	name, q, off, err := appendQuestion(buf[:0], msg, off)
	q.name = string(name)
	return q, off, err
}

// appendQuestion reads one question at off, its name appended to dst, and
// returns the question without its name; the detector uses it to avoid
// making a string.
func appendQuestion(dst, msg []byte, off int) ([]byte, question, int, error) {
	dst, off, err := appendName(dst, msg, off)
	if err != nil {
		return dst, question{}, 0, err
	}
	if off+4 > len(msg) {
		return dst, question{}, 0, errShort
	}
	q := question{
		qtype:  binary.BigEndian.Uint16(msg[off:]),
		qclass: binary.BigEndian.Uint16(msg[off+2:]) & 0x7FFF,
	}
	return dst, q, off + 4, nil
}

// message is what an entry needs from one DNS message.
type message struct {
	header
	size     int // octets on the wire, framing included
	q        question
	hasQ     bool
	rcodeExt uint16 // rcode with the OPT record's upper bits
	do       bool   // DNSSEC OK, from OPT
	answers  []entry.DNSRecord
	auth     []entry.DNSRecord
	dropped  int    // records beyond maxSectionKept
	problem  string // set when a section after the question was malformed
}

// parseMessage decodes msg. It fails only when the header or the first
// question is unusable; a malformed later section keeps what was read and
// says so in problem.
func parseMessage(msg []byte) (*message, error) {
	if len(msg) < headerLen {
		return nil, errShort
	}
	m := &message{header: readHeader(msg), size: len(msg)}
	m.rcodeExt = m.rcode()
	off := headerLen
	for i := 0; i < int(m.qdcount); i++ {
		q, next, err := readQuestion(msg, off)
		if err != nil {
			if i == 0 {
				return nil, err
			}
			m.problem = "malformed question section"
			return m, nil
		}
		if i == 0 {
			m.q, m.hasQ = q, true
		}
		off = next
	}
	if m.qdcount == 0 && !m.response() {
		return nil, errNoQuestion
	}
	var err error
	if m.answers, off, err = m.readSection(msg, off, int(m.ancount), true); err != nil {
		m.problem = "malformed answer section"
		return m, nil
	}
	if m.auth, off, err = m.readSection(msg, off, int(m.nscount), true); err != nil {
		m.problem = "malformed authority section"
		return m, nil
	}
	if _, _, err = m.readSection(msg, off, int(m.arcount), false); err != nil {
		m.problem = "malformed additional section"
	}
	return m, nil
}

// readSection reads n records at off. With keep it renders up to
// maxSectionKept of them; it always looks for the OPT record, which
// carries the upper bits of the response code.
func (m *message) readSection(msg []byte, off, n int, keep bool) ([]entry.DNSRecord, int, error) {
	var out []entry.DNSRecord
	var buf [256]byte
	for i := 0; i < n; i++ {
		name, p, err := appendName(buf[:0], msg, off)
		if err != nil {
			return out, off, err
		}
		if p+10 > len(msg) {
			return out, off, errShort
		}
		typ := binary.BigEndian.Uint16(msg[p:])
		ttl := binary.BigEndian.Uint32(msg[p+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[p+8:]))
		rd := p + 10
		if rd+rdlen > len(msg) {
			return out, off, errShort
		}
		off = rd + rdlen
		if typ == typeOPT {
			m.rcodeExt = uint16(ttl>>24)<<4 | m.rcode()
			m.do = ttl&0x8000 != 0
			continue
		}
		if !keep {
			continue
		}
		if len(out) >= maxSectionKept {
			m.dropped++
			continue
		}
		out = append(out, entry.DNSRecord{
			Name: string(name),
			Type: typeName(typ),
			TTL:  ttl,
			Data: renderRData(msg, typ, rd, rd+rdlen),
		})
	}
	return out, off, nil
}

// flags lists the header flags that are set, as dig names them.
func (m *message) flags() []string {
	var f []string
	for _, fl := range flagBits {
		if m.header.flags&fl.bit != 0 {
			f = append(f, fl.name)
		}
	}
	if m.do {
		f = append(f, "do")
	}
	return f
}

var flagBits = [...]struct {
	bit  uint16
	name string
}{
	{0x0400, "aa"}, {0x0200, "tc"}, {0x0100, "rd"}, {0x0080, "ra"},
	{0x0020, "ad"}, {0x0010, "cd"},
}
