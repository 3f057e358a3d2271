package main

// These tests build the real plugin binary and run it as a user would:
// exit codes, one-line errors, output streams.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var plugin string // the binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kubectl-shark-test")
	if err != nil {
		panic(err)
	}
	plugin = filepath.Join(dir, "kubectl-shark")
	build := exec.Command("go", "build", "-o", plugin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(plugin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errOut.String(), code}
}

const testdata = "../../testdata"

// pcapHeader returns a classic pcap file header with the given link type.
func pcapHeader(link uint32) []byte {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], link)
	return h
}

func TestBadInputIsOneLineAndExit1(t *testing.T) {
	dir := t.TempDir()
	usb := filepath.Join(dir, "usb.pcap")
	if err := os.WriteFile(usb, pcapHeader(189), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"tap", "--read", filepath.Join(dir, "nope.pcap")}, "no such file"},
		{"not a capture", []string{"tap", "--read", "main.go"}, "not a pcap or pcapng capture"},
		{"unsupported link", []string{"tap", "--read", usb}, "unsupported link type 189"},
		{"invalid filter", []string{"tap", "--read", testdata + "/dns.pcap", "--filter", "stauts == 1"}, "1:1"},
		{"filter syntax", []string{"tap", "--read", testdata + "/dns.pcap", "--filter", "proto == "}, "filter"},
		{"bad output", []string{"tap", "--read", testdata + "/dns.pcap", "-o", "yaml"}, "yaml"},
		{"bad color", []string{"tap", "--read", testdata + "/dns.pcap", "--color", "sometimes"}, "sometimes"},
		{"no cluster", []string{"tap", "--server", "http://127.0.0.1:1"}, "cannot reach the cluster"},
		{"invalid regex", []string{"tap", "front(", "--server", "http://127.0.0.1:1"}, "invalid pod query"},
		{"read and query", []string{"tap", "front", "--read", testdata + "/dns.pcap"}, "no pod query"},
		{"bad memory", []string{"tap", "--worker-memory", "lots", "--server", "http://127.0.0.1:1"}, "--worker-memory"},
		{"bad pull policy", []string{"pcap", "--image-pull-policy", "Sometimes", "--server", "http://127.0.0.1:1"}, "Sometimes"},
		{"since without session", []string{"pcap", "--since", "5m"}, "--session"},
		{"ui bad port", []string{"ui", "--port", "70000"}, "--port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, nil, tt.args...)
			if r.code != 1 {
				t.Errorf("exit code %d, want 1 (stderr %q)", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr = %q, want one line 'error: ...%s...'", r.stderr, tt.want)
			}
		})
	}
}

func TestTruncatedPrintsEntriesThenWarns(t *testing.T) {
	full, err := os.ReadFile(testdata + "/dns.pcap")
	if err != nil {
		t.Fatal(err)
	}
	whole := run(t, nil, "tap", "--read", testdata+"/dns.pcap", "-o", "json")
	if whole.code != 0 {
		t.Fatalf("whole file: exit %d: %s", whole.code, whole.stderr)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, full[:len(full)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "tap", "--read", cut, "-o", "json")
	if r.code != 0 {
		t.Errorf("exit code %d, want 0", r.code)
	}
	if !strings.HasPrefix(r.stderr, "warning: ") || !strings.Contains(r.stderr, "truncated") {
		t.Errorf("stderr = %q, want a truncation warning", r.stderr)
	}
	got, all := strings.Count(r.stdout, "\n"), strings.Count(whole.stdout, "\n")
	if got == 0 || got >= all {
		t.Errorf("entries before the cut = %d, want some and fewer than %d", got, all)
	}
}

func TestJSONFromStdin(t *testing.T) {
	capt, err := os.ReadFile(testdata + "/grpc.pcap")
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, capt, "tap", "--read", "-", "-o", "json", "--filter", `proto == "grpc" && status == "NOT_FOUND"`)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d NOT_FOUND calls, want 4 (the client's log):\n%s", len(lines), r.stdout)
	}
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("invalid NDJSON %q: %v", l, err)
		}
		if e["proto"] != "grpc" || e["status"] != "NOT_FOUND" || e["v"] != float64(1) {
			t.Errorf("entry %v", e)
		}
	}
}

func TestLineOutputHasNoColorWhenPiped(t *testing.T) {
	r := run(t, nil, "tap", "--read", testdata+"/http1.pcap")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("colors in piped output")
	}
	if !strings.Contains(r.stdout, "GET") || !strings.Contains(r.stdout, "/api/items") {
		t.Errorf("line output lacks requests:\n%.500s", r.stdout)
	}
	forced := run(t, nil, "tap", "--read", testdata+"/http1.pcap", "--color", "always")
	if !strings.Contains(forced.stdout, "\x1b[") {
		t.Errorf("--color always printed no colors")
	}
}

func TestVersion(t *testing.T) {
	r := run(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "kubectl-shark ") {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
}

// TestDependencyFence: the plugin never links capture, eBPF or afpacket
// code; those belong to shark-agent, which runs in the cluster.
func TestDependencyFence(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/gopacket/gopacket/afpacket",
			"github.com/cilium/ebpf",
			"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket",
			"github.com/kubectl-shark/kubectl-shark/pkg/tracer",
			"github.com/kubectl-shark/kubectl-shark/pkg/worker",
		} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("kubectl-shark links %s", dep)
			}
		}
	}
}

// TestCrossPlatform: every package the plugin needs resolves for every
// platform the krew manifest lists, with CGO_ENABLED=0. `go list` fails on a
// package whose build constraints exclude all of its files there (a
// Linux-only import), and costs seconds where six full cross-compiles cost
// many minutes; `make dist` does the real builds.
func TestCrossPlatform(t *testing.T) {
	for _, p := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"} {
		goos, goarch, _ := strings.Cut(p, "/")
		cmd := exec.Command("go", "list", "-deps", ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", p, err, out)
		}
	}
}
