package afpacket

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// ipPacket builds a raw IP packet (IPv4 or IPv6 by the addresses) carrying
// a TCP or UDP header with the given ports.
func ipPacket(proto uint8, src, dst string, sport, dport uint16) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	if s.Is4() {
		b := make([]byte, 20, 40)
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
		b[8] = 64
		b[9] = proto
		copy(b[12:], s.AsSlice())
		copy(b[16:], d.AsSlice())
		return append(b, l4...)
	}
	b := make([]byte, 40, 60)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6] = proto
	b[7] = 64
	copy(b[8:], s.AsSlice())
	copy(b[24:], d.AsSlice())
	return append(b, l4...)
}

// ipv4Options is an IPv4 packet with a 24-byte header, so that ports sit
// at offset 24.
func ipv4Options(sport, dport uint16) []byte {
	b := ipPacket(6, "10.0.0.1", "10.0.0.2", 0, 0)
	b = append(b[:20], append([]byte{1, 1, 1, 1}, b[20:]...)...)
	b[0] = 0x46
	binary.BigEndian.PutUint16(b[24:], sport)
	binary.BigEndian.PutUint16(b[26:], dport)
	return b
}

func laterFragment(b []byte) []byte {
	c := append([]byte(nil), b...)
	binary.BigEndian.PutUint16(c[6:], 0x0010) // fragment offset 16*8
	return c
}

// runUser runs the compiled user expression (no ancillary loads, which the
// x/net/bpf VM lacks) on pkt and reports whether it was kept.
func runUser(t *testing.T, expr string, pkt []byte) bool {
	t.Helper()
	n, err := parseFilter(expr)
	if err != nil {
		t.Fatalf("parse %q: %v", expr, err)
	}
	raw, err := compileTree(n, 1000)
	if err != nil {
		t.Fatalf("compile %q: %v", expr, err)
	}
	prog := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		prog[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("vm %q: %v", expr, err)
	}
	got, err := vm.Run(pkt)
	if err != nil {
		t.Fatalf("run %q: %v", expr, err)
	}
	if got != 0 && got != 1000 {
		t.Fatalf("run %q returned %d", expr, got)
	}
	return got != 0
}

func TestFilterMatches(t *testing.T) {
	tcp4 := ipPacket(6, "10.1.0.5", "10.2.0.9", 40000, 80)
	udp4 := ipPacket(17, "10.1.0.5", "10.2.0.9", 5353, 53)
	tcp6 := ipPacket(6, "fd00::5", "fd00:1::9", 40000, 443)
	udp6 := ipPacket(17, "fd00::5", "fd00:1::9", 1000, 53)
	opts := ipv4Options(1234, 8080)
	frag := laterFragment(tcp4)
	tests := []struct {
		expr string
		pkt  []byte
		want bool
	}{
		{"ip", tcp4, true},
		{"ip", tcp6, false},
		{"ip6", tcp6, true},
		{"tcp", tcp4, true},
		{"tcp", udp4, false},
		{"tcp", tcp6, true},
		{"udp", udp6, true},
		{"icmp", tcp4, false},
		{"port 80", tcp4, true},
		{"port 40000", tcp4, true},
		{"port 81", tcp4, false},
		{"src port 80", tcp4, false},
		{"dst port 80", tcp4, true},
		{"tcp port 80", tcp4, true},
		{"udp port 80", tcp4, false},
		{"udp port 53", udp4, true},
		{"tcp dst port 443", tcp6, true},
		{"port 53", udp6, true},
		{"port 8080", opts, true},
		{"src port 1234", opts, true},
		{"port 80", frag, false}, // ports only in the first fragment
		{"portrange 70-90", tcp4, true},
		{"portrange 81-90", tcp4, false},
		{"dst portrange 53-53", udp6, true},
		{"host 10.1.0.5", tcp4, true},
		{"host 10.2.0.9", tcp4, true},
		{"src host 10.2.0.9", tcp4, false},
		{"dst host 10.2.0.9", tcp4, true},
		{"host 10.9.9.9", tcp4, false},
		{"host fd00::5", tcp6, true},
		{"host fd00::5", tcp4, false},
		{"dst host fd00::5", tcp6, false},
		{"net 10.2.0.0/16", tcp4, true},
		{"src net 10.2.0.0/16", tcp4, false},
		{"net 10.0.0.0/8", tcp4, true},
		{"net 11.0.0.0/8", tcp4, false},
		{"net 0.0.0.0/0", tcp4, true},
		{"net 0.0.0.0/0", tcp6, false},
		{"net fd00:1::/32", tcp6, true},
		{"net fd00:1::/33", tcp6, true},
		{"src net fd00:1::/32", tcp6, false},
		{"net fe80::/10", tcp6, false},
		{"host 10.1.0.5 and port 80", tcp4, true},
		{"host 10.1.0.5 and port 81", tcp4, false},
		{"host 10.1.0.5 && not port 81", tcp4, true},
		{"port 81 or port 80", tcp4, true},
		{"port 81 || (udp and port 53)", udp4, true},
		{"!tcp", udp4, true},
		{"not (tcp or udp)", udp4, false},
		{"not not tcp", tcp4, true},
		{"TCP PORT 80", tcp4, true},
	}
	for _, tt := range tests {
		if got := runUser(t, tt.expr, tt.pkt); got != tt.want {
			t.Errorf("%q on %x: kept %v, want %v", tt.expr, tt.pkt[:min(len(tt.pkt), 24)], got, tt.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	for _, expr := range []string{
		"port", "port x", "port 70000", "host 10.0.0", "net 10.0.0.0", "(tcp", "tcp)",
		"tcp and", "portrange 9-1", "portrange 5", "frob 1", "tcp host 1.2.3.4", "and",
		strings.Repeat("tcp or ", 600) + "udp",
		strings.Repeat("x", maxFilterLen+1),
	} {
		if _, err := CompileFilter(expr, 0); !errors.Is(err, ErrFilter) {
			t.Errorf("%q: got %v, want ErrFilter", expr, err)
		}
	}
}

func TestCompileFilterWhole(t *testing.T) {
	for _, expr := range []string{"", "port 80", "host 10.0.0.1 or host fd00::1"} {
		prog, err := CompileFilter(expr, 128)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		last := prog[len(prog)-1].Disassemble()
		if last != (bpf.RetConstant{Val: 0}) {
			t.Errorf("%q: last instruction %v", expr, last)
		}
		if prog[len(prog)-2].Disassemble() != (bpf.RetConstant{Val: 128}) {
			t.Errorf("%q: keep instruction %v", expr, prog[len(prog)-2].Disassemble())
		}
		// The program starts with the ancillary checks of the base filter.
		if _, ok := prog[0].Disassemble().(bpf.LoadExtension); !ok {
			t.Errorf("%q: first instruction %v", expr, prog[0].Disassemble())
		}
	}
	// A long but legal expression still fits classic BPF's jump range.
	var hosts []string
	for i := 0; i < 20; i++ {
		hosts = append(hosts, "host 10.0.0."+string(rune('0'+i%10)))
	}
	if _, err := CompileFilter(strings.Join(hosts, " or "), 0); err != nil {
		t.Errorf("20 hosts: %v", err)
	}
}

func TestParseRawFilter(t *testing.T) {
	// `tcpdump -ddd ip` for a raw-IP capture.
	good := "3\n48 0 0 0\n84 0 0 240\n21 0 1 64\n6 0 0 262144\n"
	if _, err := ParseRawFilter(good); err == nil {
		t.Fatal("count mismatch accepted")
	}
	good = "5\n48 0 0 0\n84 0 0 240\n21 0 1 64\n6 0 0 262144\n6 0 0 0\n"
	prog, err := ParseRawFilter(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) != 5 || prog[2] != (bpf.RawInstruction{Op: 21, Jt: 0, Jf: 1, K: 64}) {
		t.Errorf("parsed %+v", prog)
	}
	commas := strings.ReplaceAll(strings.TrimSpace(good), "\n", ",")
	if p2, err := ParseRawFilter(commas); err != nil || len(p2) != 5 {
		t.Errorf("comma form: %v %v", p2, err)
	}
	whole, err := WithRawFilter(prog)
	if err != nil {
		t.Fatal(err)
	}
	if got := whole[len(whole)-5:]; got[0] != prog[0] {
		t.Errorf("raw program not at the end: %v", got)
	}
	for _, bad := range []string{"", "x", "1\n6 0 0", "1\n6 0 0 99999999999", "1\n48 0 0 0", "0\n", "2\n6 0 0 1\n6 0 300 1"} {
		if _, err := ParseRawFilter(bad); !errors.Is(err, ErrFilter) {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

func FuzzCompileFilter(f *testing.F) {
	for _, s := range []string{"", "tcp port 80", "host 10.0.0.1 and not (port 22 or port 53)",
		"src net fd00::/8 || dst portrange 1-1024", "!udp", "ip6 and icmp6", "((tcp))", "port 70000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		prog, err := CompileFilter(expr, 0)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("%q: error %v does not wrap ErrFilter", expr, err)
			}
			return
		}
		if len(prog) > maxProgram {
			t.Fatalf("%q: %d instructions", expr, len(prog))
		}
		// Every jump must land inside the program.
		for i, ri := range prog {
			if ji, ok := ri.Disassemble().(bpf.JumpIf); ok {
				if i+1+int(max(ji.SkipTrue, ji.SkipFalse)) >= len(prog) {
					t.Fatalf("%q: jump out of the program at %d", expr, i)
				}
			}
		}
	})
}

func FuzzParseRawFilter(f *testing.F) {
	f.Add("5\n48 0 0 0\n84 0 0 240\n21 0 1 64\n6 0 0 262144\n6 0 0 0\n")
	f.Add("1,6 0 0 65535")
	f.Add("2;6 0 0 1;6 0 0 0")
	f.Fuzz(func(t *testing.T, s string) {
		prog, err := ParseRawFilter(s)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error %v does not wrap ErrFilter", err)
			}
			return
		}
		if len(prog) == 0 || len(prog) > maxProgram {
			t.Fatalf("%d instructions", len(prog))
		}
	})
}
