package afpacket

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// Filters run in the kernel, before a packet is copied to the ring. Without
// libpcap (no cgo) we compile a useful subset of tcpdump's language
// ourselves, for packets as our sockets see them: starting at the IP header
// (SOCK_DGRAM, LINKTYPE_RAW). The grammar:
//
//	expr      = or
//	or        = and { ("or" | "||") and }
//	and       = unary { ("and" | "&&") unary }
//	unary     = ("not" | "!") unary | "(" expr ")" | primitive
//	primitive = "ip" | "ip6" | "icmp" | "icmp6"
//	          | [ "tcp" | "udp" ] [ "src" | "dst" ] ( "host" ADDR | "net" CIDR
//	          |   "port" N | "portrange" N-M )
//	          | "tcp" | "udp"
//
// Like tcpdump, IPv6 transport matches assume no extension headers, and
// ports match only the first fragment of a fragmented IPv4 datagram.

// Bounds on a filter expression.
const (
	maxFilterLen   = 4096 // bytes of expression text
	maxFilterNodes = 512  // primitives and operators
	// maxProgram is the kernel's BPF_MAXINSNS.
	maxProgram = 4096
)

// ErrFilter wraps every error about a filter expression or program.
var ErrFilter = errors.New("invalid capture filter")

// Extension values the base program tests.
const (
	packetOutgoing = 4 // PACKET_OUTGOING
	loopbackIndex  = 1 // LOOPBACK_IFINDEX: lo is interface 1 in every netns
	ethPIP         = 0x0800
	ethPIPv6       = 0x86dd
)

// CompileFilter compiles expr into a complete socket filter that keeps
// IPv4 and IPv6 packets matching expr (all of them when expr is empty),
// cut to snapLen bytes, and drops the outgoing copy of loopback packets,
// which the kernel hands to packet sockets twice.
func CompileFilter(expr string, snapLen int) ([]bpf.RawInstruction, error) {
	root := baseFilter()
	if strings.TrimSpace(expr) != "" {
		user, err := parseFilter(expr)
		if err != nil {
			return nil, err
		}
		root = and(root, user)
	}
	return compileTree(root, snapLen)
}

// compileTree compiles a program that returns snapLen for packets root
// matches and 0 for the rest.
func compileTree(root *node, snapLen int) ([]bpf.RawInstruction, error) {
	if snapLen <= 0 {
		snapLen = DefaultSnapLen
	}
	var g codegen
	t, f := g.label(), g.label()
	g.compile(root, t, f)
	g.place(t)
	g.emit(bpf.RetConstant{Val: uint32(snapLen)})
	g.place(f)
	g.emit(bpf.RetConstant{Val: 0})
	return g.assemble()
}

// WithRawFilter prepends the base program to a raw program (as printed by
// `tcpdump -ddd`, for packets that start at the IP header): the raw
// program sees only IP packets, and its return value is the snap length.
func WithRawFilter(raw []bpf.RawInstruction) ([]bpf.RawInstruction, error) {
	var g codegen
	t, f := g.label(), g.label()
	g.compile(baseFilter(), t, f)
	g.place(f)
	g.emit(bpf.RetConstant{Val: 0})
	g.place(t)
	base, err := g.assemble()
	if err != nil {
		return nil, err
	}
	if len(base)+len(raw) > maxProgram {
		return nil, fmt.Errorf("%w: %d instructions, the kernel takes at most %d", ErrFilter, len(base)+len(raw), maxProgram)
	}
	return append(base, raw...), nil
}

// ParseRawFilter parses a classic BPF program in the decimal form
// `tcpdump -ddd` prints: the instruction count, then one "code jt jf k"
// per instruction, separated by newlines or commas.
func ParseRawFilter(s string) ([]bpf.RawInstruction, error) {
	if len(s) > maxProgram*32 {
		return nil, fmt.Errorf("%w: program text longer than %d bytes", ErrFilter, maxProgram*32)
	}
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' || r == ';' })
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: empty program", ErrFilter)
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n < 1 || n > maxProgram {
		return nil, fmt.Errorf("%w: the first number must be the instruction count (1 to %d), got %q", ErrFilter, maxProgram, truncate(lines[0]))
	}
	if len(lines)-1 != n {
		return nil, fmt.Errorf("%w: the program says %d instructions but has %d", ErrFilter, n, len(lines)-1)
	}
	prog := make([]bpf.RawInstruction, 0, n)
	for i, line := range lines[1:] {
		ri, err := parseRawInstruction(line)
		if err != nil {
			return nil, fmt.Errorf("%w: instruction %d: %v", ErrFilter, i+1, err)
		}
		prog = append(prog, ri)
	}
	if last := prog[len(prog)-1]; last.Op&0x07 != 0x06 { // BPF_RET
		return nil, fmt.Errorf("%w: the last instruction must return", ErrFilter)
	}
	return prog, nil
}

func parseRawInstruction(line string) (bpf.RawInstruction, error) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return bpf.RawInstruction{}, fmt.Errorf("want \"code jt jf k\", got %q", truncate(line))
	}
	var v [4]uint64
	for i, bits := range [4]int{16, 8, 8, 32} {
		x, err := strconv.ParseUint(f[i], 10, bits)
		if err != nil {
			return bpf.RawInstruction{}, fmt.Errorf("field %d of %q: not a %d-bit unsigned number", i+1, truncate(line), bits)
		}
		v[i] = x
	}
	return bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// baseFilter keeps IPv4 and IPv6 and drops loopback's outgoing copies.
func baseFilter() *node {
	outgoingLo := and(
		atomNode(atom{load: ldExt, off: uint32(bpf.ExtType), test: bpf.JumpEqual, val: packetOutgoing}),
		atomNode(atom{load: ldExt, off: uint32(bpf.ExtInterfaceIndex), test: bpf.JumpEqual, val: loopbackIndex}),
	)
	isIP := or(
		atomNode(atom{load: ldExt, off: uint32(bpf.ExtProto), test: bpf.JumpEqual, val: ethPIP}),
		atomNode(atom{load: ldExt, off: uint32(bpf.ExtProto), test: bpf.JumpEqual, val: ethPIPv6}),
	)
	return and(not(outgoingLo), isIP)
}

// The expression tree.

type nodeKind uint8

const (
	nAtom nodeKind = iota
	nAnd
	nOr
	nNot
)

type node struct {
	kind nodeKind
	l, r *node
	a    atom
}

type loadKind uint8

const (
	ldAbs loadKind = iota // packet byte offset (from the IP header)
	ldInd                 // offset from the IPv4 transport header
	ldExt                 // kernel ancillary value (bpf.Extension in off)
)

// atom is one test: load, optionally mask, compare.
type atom struct {
	load loadKind
	off  uint32
	size int // 1, 2 or 4 (ldAbs, ldInd)
	mask uint32
	test bpf.JumpTest
	val  uint32
}

func atomNode(a atom) *node { return &node{kind: nAtom, a: a} }
func and(l, r *node) *node  { return &node{kind: nAnd, l: l, r: r} }
func or(l, r *node) *node   { return &node{kind: nOr, l: l, r: r} }
func not(l *node) *node     { return &node{kind: nNot, l: l} }

func andAll(ns ...*node) *node {
	n := ns[0]
	for _, m := range ns[1:] {
		n = and(n, m)
	}
	return n
}

// Packet field tests.

func ipVersion(v uint32) *node {
	return atomNode(atom{load: ldAbs, off: 0, size: 1, mask: 0xf0, test: bpf.JumpEqual, val: v << 4})
}

func isIPv4() *node { return ipVersion(4) }
func isIPv6() *node { return ipVersion(6) }

func proto4(p uint32) *node {
	return atomNode(atom{load: ldAbs, off: 9, size: 1, test: bpf.JumpEqual, val: p})
}

func proto6(p uint32) *node {
	return atomNode(atom{load: ldAbs, off: 6, size: 1, test: bpf.JumpEqual, val: p})
}

// IP protocol numbers.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// The code generator: jumps name labels, resolved to offsets at the end.

type label int

type codeItem struct {
	ins    bpf.Instruction // nil for a conditional jump
	test   bpf.JumpTest
	val    uint32
	jt, jf label
	isJump bool // unconditional jump to jt
}

type codegen struct {
	code   []codeItem
	labels []int // label → position, -1 until placed
}

func (g *codegen) label() label {
	g.labels = append(g.labels, -1)
	return label(len(g.labels) - 1)
}

func (g *codegen) place(l label) { g.labels[l] = len(g.code) }

func (g *codegen) emit(ins bpf.Instruction) { g.code = append(g.code, codeItem{ins: ins}) }

// compile emits code that continues at t when n holds and at f otherwise.
func (g *codegen) compile(n *node, t, f label) {
	switch n.kind {
	case nAnd:
		mid := g.label()
		g.compile(n.l, mid, f)
		g.place(mid)
		g.compile(n.r, t, f)
	case nOr:
		mid := g.label()
		g.compile(n.l, t, mid)
		g.place(mid)
		g.compile(n.r, t, f)
	case nNot:
		g.compile(n.l, f, t)
	case nAtom:
		g.atom(n.a, t, f)
	}
}

func (g *codegen) atom(a atom, t, f label) {
	switch a.load {
	case ldExt:
		g.emit(bpf.LoadExtension{Num: bpf.Extension(a.off)})
	case ldAbs:
		g.emit(bpf.LoadAbsolute{Off: a.off, Size: a.size})
	case ldInd:
		g.emit(bpf.LoadMemShift{Off: 0})
		g.emit(bpf.LoadIndirect{Off: a.off, Size: a.size})
	}
	if a.mask != 0 {
		g.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: a.mask})
	}
	g.code = append(g.code, codeItem{test: a.test, val: a.val, jt: t, jf: f})
}

// assemble resolves labels; BPF jumps go forward only, conditional ones at
// most 255 instructions.
func (g *codegen) assemble() ([]bpf.RawInstruction, error) {
	if len(g.code) > maxProgram {
		return nil, fmt.Errorf("%w: the expression needs %d instructions, the kernel takes at most %d", ErrFilter, len(g.code), maxProgram)
	}
	prog := make([]bpf.Instruction, len(g.code))
	for i, c := range g.code {
		if c.ins != nil {
			prog[i] = c.ins
			continue
		}
		jt := g.labels[c.jt] - i - 1
		if c.isJump {
			prog[i] = bpf.Jump{Skip: uint32(jt)}
			continue
		}
		jf := g.labels[c.jf] - i - 1
		if jt < 0 || jf < 0 {
			return nil, fmt.Errorf("%w: internal error: backward jump", ErrFilter)
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("%w: the expression is too long for classic BPF jumps; split it or use --bpf", ErrFilter)
		}
		prog[i] = bpf.JumpIf{Cond: c.test, Val: c.val, SkipTrue: uint8(jt), SkipFalse: uint8(jf)}
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilter, err)
	}
	return raw, nil
}

// The parser.

type parser struct {
	toks  []string
	pos   int
	nodes int
}

func parseFilter(expr string) (*node, error) {
	if len(expr) > maxFilterLen {
		return nil, fmt.Errorf("%w: expression longer than %d bytes", ErrFilter, maxFilterLen)
	}
	p := &parser{toks: tokenize(expr)}
	n, err := p.or()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilter, err)
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("%w: unexpected %q", ErrFilter, truncate(p.toks[p.pos]))
	}
	return n, nil
}

func tokenize(s string) []string {
	var toks []string
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, s[i:i+1])
			i++
		case c == '!' && !strings.HasPrefix(s[i:], "!="):
			toks = append(toks, "!")
			i++
		case strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			toks = append(toks, s[i:i+2])
			i += 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()!&|", rune(s[j])) {
				j++
			}
			if j == i { // a lone '&' or '|'
				j++
			}
			toks = append(toks, strings.ToLower(s[i:j]))
			i = j
		}
	}
	return toks
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) count() error {
	p.nodes++
	if p.nodes > maxFilterNodes {
		return fmt.Errorf("more than %d terms", maxFilterNodes)
	}
	return nil
}

func (p *parser) or() (*node, error) {
	n, err := p.and()
	for err == nil && (p.peek() == "or" || p.peek() == "||") {
		p.next()
		var r *node
		if r, err = p.and(); err == nil {
			n, err = or(n, r), p.count()
		}
	}
	return n, err
}

func (p *parser) and() (*node, error) {
	n, err := p.unary()
	for err == nil && (p.peek() == "and" || p.peek() == "&&") {
		p.next()
		var r *node
		if r, err = p.unary(); err == nil {
			n, err = and(n, r), p.count()
		}
	}
	return n, err
}

func (p *parser) unary() (*node, error) {
	if err := p.count(); err != nil {
		return nil, err
	}
	switch p.peek() {
	case "not", "!":
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not(n), nil
	case "(":
		p.next()
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next() != ")" {
			return nil, errors.New("missing )")
		}
		return n, nil
	case "":
		return nil, errors.New("unexpected end of expression")
	}
	return p.primitive()
}

// dir says which end a primitive applies to.
type dir uint8

const (
	dirEither dir = iota
	dirSrc
	dirDst
)

func (p *parser) primitive() (*node, error) {
	var protos []uint32 // nil: tcp and udp, for ports
	switch p.peek() {
	case "ip":
		p.next()
		return isIPv4(), nil
	case "ip6":
		p.next()
		return isIPv6(), nil
	case "icmp":
		p.next()
		return and(isIPv4(), proto4(protoICMP)), nil
	case "icmp6":
		p.next()
		return and(isIPv6(), proto6(protoICMPv6)), nil
	case "tcp", "udp":
		pr := uint32(protoTCP)
		if p.next() == "udp" {
			pr = protoUDP
		}
		protos = []uint32{pr}
		switch p.peek() {
		case "src", "dst", "port", "portrange":
		default:
			return or(and(isIPv4(), proto4(pr)), and(isIPv6(), proto6(pr))), nil
		}
	}
	d := dirEither
	switch p.peek() {
	case "src":
		d = dirSrc
		p.next()
	case "dst":
		d = dirDst
		p.next()
	}
	kw := p.next()
	val := p.next()
	if val == "" || val == "(" || val == ")" {
		return nil, fmt.Errorf("%q needs a value", truncate(kw))
	}
	switch kw {
	case "host":
		if protos != nil {
			return nil, fmt.Errorf("%q does not take a tcp/udp qualifier", kw)
		}
		return hostNode(d, val)
	case "net":
		if protos != nil {
			return nil, fmt.Errorf("%q does not take a tcp/udp qualifier", kw)
		}
		return netNode(d, val)
	case "port":
		n, err := parsePort(val)
		if err != nil {
			return nil, err
		}
		return portNode(d, protos, n, n), nil
	case "portrange":
		lo, hi, ok := strings.Cut(val, "-")
		if !ok {
			return nil, fmt.Errorf("portrange wants N-M, got %q", truncate(val))
		}
		l, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		h, err := parsePort(hi)
		if err != nil {
			return nil, err
		}
		if l > h {
			return nil, fmt.Errorf("portrange %d-%d is empty", l, h)
		}
		return portNode(d, protos, l, h), nil
	}
	return nil, fmt.Errorf("unknown primitive %q (want host, net, port, portrange, tcp, udp, icmp, ip, ip6)", truncate(kw))
}

func parsePort(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", truncate(s))
	}
	return uint32(n), nil
}

func hostNode(d dir, s string) (*node, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return nil, fmt.Errorf("bad host address %q", truncate(s))
	}
	return prefixNode(d, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())), nil
}

func netNode(d dir, s string) (*node, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return nil, fmt.Errorf("bad network %q (want CIDR, e.g. 10.0.0.0/8)", truncate(s))
	}
	if pfx.Addr().Is4In6() {
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), max(pfx.Bits()-96, 0))
	}
	return prefixNode(d, pfx.Masked()), nil
}

// prefixNode matches an address prefix at the source, destination or
// either address of the packet's IP version.
func prefixNode(d dir, pfx netip.Prefix) *node {
	srcOff, dstOff, version := uint32(12), uint32(16), isIPv4()
	if pfx.Addr().Is6() {
		srcOff, dstOff, version = 8, 24, isIPv6()
	}
	at := func(off uint32) *node { return addrMatch(off, pfx) }
	switch d {
	case dirSrc:
		return and(version, at(srcOff))
	case dirDst:
		return and(version, at(dstOff))
	}
	return and(version, or(at(srcOff), at(dstOff)))
}

// addrMatch compares the address at off with pfx, 32 bits at a time.
func addrMatch(off uint32, pfx netip.Prefix) *node {
	b := pfx.Addr().AsSlice()
	bits := pfx.Bits()
	var n *node
	for w := 0; w*32 < bits; w++ {
		word := uint32(b[4*w])<<24 | uint32(b[4*w+1])<<16 | uint32(b[4*w+2])<<8 | uint32(b[4*w+3])
		mask := uint32(0xffffffff)
		if rest := bits - w*32; rest < 32 {
			mask <<= 32 - rest
		}
		a := atom{load: ldAbs, off: off + uint32(4*w), size: 4, test: bpf.JumpEqual, val: word & mask}
		if mask != 0xffffffff {
			a.mask = mask
		}
		if n == nil {
			n = atomNode(a)
		} else {
			n = and(n, atomNode(a))
		}
	}
	if n == nil { // a /0 prefix: any address of this version
		return atomNode(atom{load: ldAbs, off: 0, size: 1, test: bpf.JumpGreaterOrEqual, val: 0})
	}
	return n
}

// portNode matches TCP or UDP ports in [lo, hi] on either IP version.
func portNode(d dir, protos []uint32, lo, hi uint32) *node {
	if protos == nil {
		protos = []uint32{protoTCP, protoUDP}
	}
	var p4, p6 *node
	for _, pr := range protos {
		if p4 == nil {
			p4, p6 = proto4(pr), proto6(pr)
		} else {
			p4, p6 = or(p4, proto4(pr)), or(p6, proto6(pr))
		}
	}
	// Only the first fragment of an IPv4 datagram carries the ports.
	notLaterFragment := not(atomNode(atom{load: ldAbs, off: 6, size: 2, test: bpf.JumpBitsSet, val: 0x1fff}))
	v4 := andAll(isIPv4(), p4, notLaterFragment, portsAt(d, ldInd, 0, lo, hi))
	v6 := andAll(isIPv6(), p6, portsAt(d, ldAbs, 40, lo, hi))
	return or(v4, v6)
}

func portsAt(d dir, load loadKind, base, lo, hi uint32) *node {
	at := func(off uint32) *node {
		if lo == hi {
			return atomNode(atom{load: load, off: off, size: 2, test: bpf.JumpEqual, val: lo})
		}
		return and(
			atomNode(atom{load: load, off: off, size: 2, test: bpf.JumpGreaterOrEqual, val: lo}),
			not(atomNode(atom{load: load, off: off, size: 2, test: bpf.JumpGreaterThan, val: hi})),
		)
	}
	switch d {
	case dirSrc:
		return at(base)
	case dirDst:
		return at(base + 2)
	}
	return or(at(base), at(base+2))
}
