//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture/afpacket"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/worker"
)

const uid = "8f6c2a57-3c1e-4a3b-9d2e-0123456789ab"

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"1024", 1024, false},
		{"200MB", 200 << 20, false},
		{"200Mi", 200 << 20, false},
		{"64M", 64 << 20, false},
		{"1.5G", 3 << 29, false},
		{"2KiB", 2048, false},
		{"1t", 1 << 40, false},
		{"", 0, true},
		{"-1", 0, true},
		{"ten", 0, true},
		{"1Q", 0, true},
	} {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%q: %d, %v", tt.in, got, err)
		}
		if err == nil {
			b := byteSize(got)
			if back, err := parseSize(b.String()); err != nil || back != got {
				t.Errorf("%q: String %q parses back to %d, %v", tt.in, b.String(), back, err)
			}
		}
	}
}

func streams() (IOStreams, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, &out, &errOut
}

func TestWorkerValidate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "targets")
	os.WriteFile(file, []byte(uid+"=shop/cart\n"), 0o600)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("nope\n"), 0o600)
	tests := []struct {
		args    []string
		wantErr string
		targets []worker.Target
	}{
		{[]string{"--pod-uid", uid + "=shop/cart"}, "", []worker.Target{{UID: uid, Namespace: "shop", Name: "cart"}}},
		{[]string{"--targets-file", file}, "", nil},
		{nil, "needs targets", nil},
		{[]string{"--pod-uid", "x=shop/cart"}, "not a UID", nil},
		{[]string{"--targets-file", bad}, "line 1", nil},
		{[]string{"--targets-file", "/nonexistent"}, "no such file", nil},
		{[]string{"--pod-uid", uid, "--storage-limit", "10k"}, "at least 1Mi", nil},
		{[]string{"--pod-uid", uid, "--storage-limit", "lots"}, "bad size", nil},
		{[]string{"--pod-uid", uid, "--bpf", "port x"}, "invalid capture filter", nil},
		{[]string{"--pod-uid", uid, "--bpf", "tcp", "--bpf-raw", "1,6 0 0 1"}, "cannot be used together", nil},
		{[]string{"--pod-uid", uid, "--bpf-raw", "2,6 0 0 1"}, "says 2 instructions", nil},
		{[]string{"--pod-uid", uid, "--ring-block-size", "1000"}, "power of two", nil},
		{[]string{"--pod-uid", uid, "--ring-block-timeout", "500us"}, "at least 1ms", nil},
		{[]string{"--pod-uid", uid, "--ring-block-timeout", "1m"}, "at most 10s", nil},
		{[]string{"--pod-uid", uid, "-o", "xml"}, "xml", nil},
		{[]string{"--pod-uid", uid, "--filter", "proto =="}, "", nil}, // replaced below
	}
	tests[len(tests)-1].wantErr = "Syntax error"
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s, _, _ := streams()
			o := NewWorkerOptions(s)
			cmd := newCmdWorker(o)
			if err := cmd.Flags().Parse(tt.args); err != nil {
				if tt.wantErr == "" || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("flags: %v", err)
				}
				return
			}
			o.Complete(cmd, nil)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.targets, o.targets); diff != "" {
					t.Error(diff)
				}
				if o.Node == "" || o.Name == "" {
					t.Errorf("node %q name %q", o.Node, o.Name)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSniffValidate(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		args    []string
		wantErr string
		target  worker.Target
	}{
		{[]string{"-i", "lo"}, "", worker.Target{Netns: "/proc/self/ns/net", Interface: "lo", Label: "lo"}},
		{[]string{"-i", "any"}, "", worker.Target{Netns: "/proc/self/ns/net", Label: "any"}},
		{[]string{"--pid", pid}, "", worker.Target{Netns: "/proc/" + pid + "/ns/net", Label: "pid:" + pid}},
		{[]string{"--pid", pid, "-i", "eth0"}, "", worker.Target{Netns: "/proc/" + pid + "/ns/net", Interface: "eth0", Label: "pid:" + pid + ":eth0"}},
		{nil, "needs -i", worker.Target{}},
		{[]string{"--pid", "1", "--netns", "/run/netns/x"}, "cannot be used together", worker.Target{}},
		{[]string{"--netns", "/etc/hostname"}, "not a network namespace", worker.Target{}},
		{[]string{"--netns", "/nonexistent"}, "no such file", worker.Target{}},
		{[]string{"-i", "lo", "--metrics-addr", "9090"}, "--metrics-addr", worker.Target{}},
		{[]string{"-i", "lo", "--snaplen", "10"}, "--snaplen", worker.Target{}},
		{[]string{"-i", "lo", "--color", "pink"}, "pink", worker.Target{}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s, _, _ := streams()
			o := NewSniffOptions(s)
			cmd := newCmdSniff(o)
			if err := cmd.Flags().Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			o.Complete(cmd, nil)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.target, o.target); diff != "" {
					t.Error(diff)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestWatchTargets rewrites the targets file and sees the worker follow.
func TestWatchTargets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "targets")
	os.WriteFile(file, []byte(uid+"=shop/cart\n"), 0o600)
	s, _, errOut := streams()
	o := NewWorkerOptions(s)
	o.TargetsFile = file
	w, err := worker.New(worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logf := func(string, ...any) {}
	if err := o.setTargets(w, logf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go o.watchTargets(ctx, w, logger(errOut))
	time.Sleep(50 * time.Millisecond)
	other := "0123456789abcdef0123456789abcdef"
	os.WriteFile(file, []byte(uid+"=shop/cart\n"+other+"=shop/front\n"), 0o600)
	deadline := time.Now().Add(3 * time.Second)
	for len(w.Targets()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("targets %+v", w.Targets())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A broken file keeps the previous targets.
	os.WriteFile(file, []byte("broken\n"), 0o600)
	time.Sleep(1200 * time.Millisecond)
	if n := len(w.Targets()); n != 2 {
		t.Errorf("%d targets after a bad file", n)
	}
}

// sniffNetns makes a network namespace with a real Go HTTP server on its
// loopback (200 on /ok, else 404), and returns its name, a GET made from
// inside it (on one keep-alive connection), and a func that closes that
// connection.
func sniffNetns(t *testing.T) (ns string, get func(path string), closeConns func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and AF_PACKET sockets")
	}
	ns = "agent-sniff-" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add (as root, so this is a real failure): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	exec.Command("ip", "-n", ns, "link", "set", "lo", "up").Run()
	h, err := afpacket.OpenNetns("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	var l net.Listener
	if err := h.Do(func() (err error) { l, err = net.Listen("tcp", "127.0.0.1:8080"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = h.Do(func() (err error) { c, err = net.Dial(network, addr); return err })
		return c, err
	}}}
	t.Cleanup(client.CloseIdleConnections)
	return ns, func(path string) {
		t.Helper()
		resp, err := client.Get("http://127.0.0.1:8080" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}, client.CloseIdleConnections
}

// runSniff runs sniff with args while three GETs (/ok, /missing, /ok)
// cross the namespace on one connection, which then closes; during, if
// set, runs before sniff stops. It returns sniff's error.
func runSniff(t *testing.T, s IOStreams, args []string, get func(string), closeConns func(), during func()) error {
	t.Helper()
	cmd := NewCmdSniff(s)
	cmd.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	time.Sleep(500 * time.Millisecond)
	for _, path := range []string{"/ok", "/missing", "/ok"} {
		get(path)
	}
	closeConns()
	time.Sleep(500 * time.Millisecond)
	if during != nil {
		during()
	}
	cancel()
	return <-done
}

// countPackets reads src to its end.
func countPackets(src capture.Source) int {
	var p capture.Packet
	n := 0
	for src.Next(&p) == nil {
		n++
	}
	return n
}

// TestSniffRawToStdout checks sniff -w -: pcapng on stdout, and no
// dissection, since no entry would be shown.
func TestSniffRawToStdout(t *testing.T) {
	ns, get, closeConns := sniffNetns(t)
	s, out, errOut := streams()
	if err := runSniff(t, s, []string{"--netns", "/run/netns/" + ns, "-w", "-", "--stats"}, get, closeConns, nil); err != nil {
		t.Fatalf("sniff: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut.String(), "; 0 entries;") {
		t.Errorf("entries were dissected: %s", errOut)
	}
	src, err := capture.NewReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("stdout is not a capture: %v", err)
	}
	defer src.Close()
	if n := countPackets(src); n < 20 {
		t.Errorf("%d packets on stdout", n)
	}
}

// TestSniff captures a namespace with a real Go HTTP server in it and
// checks the entries and the pcapng file.
func TestSniff(t *testing.T) {
	ns, get, closeConns := sniffNetns(t)
	pcap := filepath.Join(t.TempDir(), "out.pcapng")
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ml.Addr().String()
	ml.Close()
	s, out, errOut := streams()
	args := []string{"--netns", "/run/netns/" + ns, "-o", "json", "-w", pcap, "--bpf", "tcp port 8080", "--stats",
		"--filter", `proto == "http"`, "--metrics-addr", metricsAddr}
	checkMetrics := func() {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range []string{"shark_worker_packets_total", "shark_worker_kernel_drops_total 0", `shark_worker_entries_total{proto="http"} 3`, "shark_worker_attached_netns 1"} {
			if !strings.Contains(string(metrics), m) {
				t.Errorf("metrics lack %q", m)
			}
		}
	}
	if err := runSniff(t, s, args, get, closeConns, checkMetrics); err != nil {
		t.Fatalf("sniff: %v\n%s", err, errOut)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e entry.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, e.Method+" "+e.Path+" "+e.Status)
	}
	if diff := cmp.Diff([]string{"GET /ok 200", "GET /missing 404", "GET /ok 200"}, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if !strings.Contains(errOut.String(), "packets captured") {
		t.Errorf("no stats: %s", errOut)
	}
	src, err := capture.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if n, ifs := countPackets(src), src.Interfaces(); n < 20 || len(ifs) != 1 || ifs[0].Name != ns || ifs[0].LinkType != capture.LinkRaw {
		t.Errorf("%d packets, interfaces %+v", n, src.Interfaces())
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"200MB", "64Mi", "1.5G", "0", "-1", "1e300", "KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("%q: negative size %d", s, n)
		}
	})
}
