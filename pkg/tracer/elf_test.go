package tracer

import (
	"bytes"
	"debug/elf"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegisterABI(t *testing.T) {
	for v, want := range map[string]bool{
		"go1.16.15": false, "go1.17": true, "go1.21.3": true, "go1.26.8": true,
		"go1.9": false, "go1.24rc1": true, "devel go1.27-abc": true, "go1.x": false,
	} {
		if got := registerABI(v); got != want {
			t.Errorf("registerABI(%q) = %v", v, got)
		}
	}
}

func TestX86Returns(t *testing.T) {
	code := []byte{
		0x48, 0x89, 0xc3, // mov rbx, rax
		0xc3,             // ret
		0x48, 0x85, 0xc0, // test rax, rax
		0x74, 0x01, // je +1
		0xc3,       // ret
		0xcc, 0xcc, // int3 padding
	}
	got, err := x86Returns(code)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{3, 9}, got); diff != "" {
		t.Errorf("returns (-want +got):\n%s", diff)
	}
	// A byte sequence that is not code is refused, not guessed at.
	if _, err := x86Returns([]byte{0x90, 0x48, 0x89}); err == nil { // an instruction cut short
		t.Error("undecodable code accepted")
	}
}

func TestARM64Returns(t *testing.T) {
	code := []byte{
		0xfd, 0x7b, 0xbf, 0xa9, // stp x29, x30, [sp, #-16]!
		0xc0, 0x03, 0x5f, 0xd6, // ret
		0x1f, 0x20, 0x03, 0xd5, // nop
		0xc0, 0x03, 0x5f, 0xd6, // ret
	}
	got, err := arm64Returns(code)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{4, 12}, got); diff != "" {
		t.Errorf("returns (-want +got):\n%s", diff)
	}
}

// TestInspectGo builds a Go TLS program, plain and stripped, and checks
// that both yield the same probe points and that each return offset holds
// a RET instruction in the file.
func TestInspectGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "tracertest", "testdata", "gotls", "main.go")
	dir := t.TempDir()
	var probes []*Probes
	for _, ldflags := range []string{"", "-s -w"} {
		bin := filepath.Join(dir, "gotls"+map[string]string{"": "", "-s -w": "-stripped"}[ldflags])
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-ldflags="+ldflags, "-o", bin, src)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		f, err := os.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Inspect(f)
		if err != nil {
			t.Fatal(err)
		}
		if p.Go == nil {
			t.Fatalf("%s (ldflags %q): no Go probes (%s)", bin, ldflags, p.GoSkipped)
		}
		if p.Go.Version != runtime.Version() || len(p.Go.Write.Returns) == 0 || len(p.Go.Read.Returns) == 0 || len(p.SSL) != 0 {
			t.Errorf("ldflags %q: %+v", ldflags, p.Go)
		}
		if runtime.GOARCH == "amd64" {
			for _, off := range append(p.Go.Write.Returns, p.Go.Read.Returns...) {
				b := make([]byte, 1)
				f.ReadAt(b, int64(off))
				if b[0] != 0xc3 {
					t.Errorf("offset %#x holds %#x, not RET", off, b[0])
				}
			}
		}
		f.Close()
		probes = append(probes, p)
	}
	if diff := cmp.Diff(probes[0].Go, probes[1].Go); diff != "" {
		t.Errorf("stripped binary differs (-symbols +pclntab):\n%s", diff)
	}
}

// TestInspectLibSSL finds the four calls in the system's OpenSSL, when
// there is one.
func TestInspectLibSSL(t *testing.T) {
	paths, _ := filepath.Glob("/usr/lib/*-linux-gnu/libssl.so.3")
	if len(paths) == 0 {
		t.Skip("no libssl.so.3 here")
	}
	f, err := elf.Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, _ := os.Open(paths[0])
	defer r.Close()
	p, err := Inspect(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sslSymbols {
		if p.SSL[s] == 0 {
			t.Errorf("%s not found in %s", s, paths[0])
		}
	}
	if p.Go != nil {
		t.Error("libssl taken for a Go binary")
	}
}

func TestParseMaps(t *testing.T) {
	maps := `55d0c0a00000-55d0c0a28000 r--p 00000000 fe:00 1234 /usr/sbin/nginx
55d0c0a28000-55d0c0b00000 r-xp 00028000 fe:00 1234 /usr/sbin/nginx
7f00aa000000-7f00aa100000 r-xp 0001f000 fe:00 326786 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f00ab000000-7f00ab100000 r-xp 00000000 00:00 0 
7f00ac000000-7f00ac100000 r-xp 00001000 00:2a 99 /app/my server (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
7ffd00100000-7ffd00101000 r-xp 00000000 00:00 0 [vdso]
`
	want := []mapping{
		{key: fileKey{"fe:00", 1234}, path: "/usr/sbin/nginx", rng: "55d0c0a28000-55d0c0b00000"},
		{key: fileKey{"fe:00", 326786}, path: "/usr/lib/x86_64-linux-gnu/libssl.so.3", rng: "7f00aa000000-7f00aa100000"},
		{key: fileKey{"00:2a", 99}, path: "/app/my server", rng: "7f00ac000000-7f00ac100000", deleted: true},
	}
	if diff := cmp.Diff(want, parseMaps([]byte(maps)), cmp.AllowUnexported(mapping{}, fileKey{})); diff != "" {
		t.Errorf("parseMaps (-want +got):\n%s", diff)
	}
}

func TestParseProcTCP(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A0B2 0100007F:20FB 01 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 20 4 30 10 -1
garbage line
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:24CB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:C350 0000000000000000FFFF00000100007F:24CB 01 00000000:00000000 00:00000000 00000000     0        0 6002 1 0000000000000000 20 4 30 10 -1
`
	var got []procTCPLine
	for _, d := range []string{tcp, tcp6} {
		parseProcTCP([]byte(d), func(l procTCPLine) bool { got = append(got, l); return true })
	}
	ap := netip.MustParseAddrPort
	want := []procTCPLine{
		{ap("127.0.0.1:8443"), ap("0.0.0.0:0"), 0x0a, 5001},
		{ap("127.0.0.1:41138"), ap("127.0.0.1:8443"), 0x01, 5002},
		{ap("[::1]:9419"), ap("[::]:0"), 0x0a, 6001},
		{ap("127.0.0.1:50000"), ap("127.0.0.1:9419"), 0x01, 6002},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(procTCPLine{}), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("parseProcTCP (-want +got):\n%s", diff)
	}
	if l, r, ok := findSocket([]byte(tcp), 5002); !ok || l != ap("127.0.0.1:41138") || r != ap("127.0.0.1:8443") {
		t.Errorf("findSocket = %v %v %v", l, r, ok)
	}
	if n, ok := socketInode("socket:[5002]"); !ok || n != 5002 {
		t.Errorf("socketInode = %d %v", n, ok)
	}
	if _, ok := socketInode("pipe:[5002]"); ok {
		t.Error("a pipe taken for a socket")
	}
}

// FuzzInspect: Inspect reads files from containers; no input may panic,
// and what it finds is bounded.
func FuzzInspect(f *testing.F) {
	if paths, _ := filepath.Glob("/usr/lib/*-linux-gnu/libssl.so.3"); len(paths) > 0 {
		if b, err := os.ReadFile(paths[0]); err == nil && len(b) > 8192 {
			f.Add(b[:8192])
		}
	}
	if b, err := os.ReadFile("/bin/true"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x3e\x00\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Inspect(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(p.SSL) > len(sslSymbols) {
			t.Fatalf("%d OpenSSL symbols", len(p.SSL))
		}
		if p.Go != nil && len(p.Go.Write.Returns)+len(p.Go.Read.Returns) > 2*maxGoFunc {
			t.Fatalf("too many returns")
		}
	})
}
