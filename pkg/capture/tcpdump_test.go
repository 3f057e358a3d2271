package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/pcapgo"
)

// needTcpdump skips unless tcpdump can capture here.
func needTcpdump(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("records live traffic; skipped with -short")
	}
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump is not installed; install it to test against real captures")
	}
	if os.Geteuid() != 0 {
		t.Skip("tcpdump needs root (CAP_NET_RAW) to capture")
	}
	return path
}

// startTcpdump runs tcpdump with args and returns once it is capturing.
func startTcpdump(t *testing.T, bin string, args ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout io.ReadCloser
	if slices.Contains(args, "-") {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "listening on") {
				ready <- ""
				io.Copy(io.Discard, stderr)
				return
			}
		}
		ready <- strings.Join(lines, "; ")
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			t.Fatalf("tcpdump %s failed: %s", strings.Join(args, " "), msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start capturing within 10s")
	}
	return cmd, stdout
}

// httpExchange serves one request on addr and makes it, without keep-alive
// so that the connection closes.
func httpExchange(t *testing.T, network, addr string) (port uint16) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Post("http://"+ln.Addr().String()+"/shark", "text/plain", strings.NewReader("ping"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from /shark" {
		t.Fatalf("response body %q", body)
	}
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// exchange is what a capture shows of the HTTP exchange.
type exchange struct {
	syn, request, response, fin bool
	stats                       DecoderStats
}

func (e exchange) complete() bool { return e.syn && e.request && e.response && e.fin }

// findExchange decodes the packets and looks for the handshake, the
// request, the response and the close of the exchange on port.
func findExchange(t *testing.T, pkts []got, lt LinkType, loop netip.Addr, port uint16) exchange {
	t.Helper()
	d := NewDecoder(DecoderOptions{})
	var e exchange
	var f Frame
	for _, g := range pkts {
		if g.LinkType != lt {
			t.Fatalf("packet link type %v, want %v", g.LinkType, lt)
		}
		p := Packet{Timestamp: g.TS, Length: g.Length, LinkType: g.LinkType, Interface: g.Interface, Data: g.Data}
		if !d.Decode(&p, &f) || f.Proto != IPProtoTCP || f.Src != loop || f.Dst != loop {
			continue
		}
		switch {
		case f.DstPort == port && f.Flags&TCPSyn != 0 && f.Flags&TCPAck == 0:
			e.syn = true
		case f.DstPort == port && bytes.HasPrefix(f.Payload, []byte("POST /shark HTTP/1.1\r\n")):
			e.request = true
			if !bytes.HasSuffix(f.Payload, []byte("\r\n\r\nping")) {
				t.Errorf("request payload %q lacks its body", f.Payload)
			}
		case f.SrcPort == port && bytes.HasPrefix(f.Payload, []byte("HTTP/1.1 200 OK\r\n")):
			e.response = true
		case f.Flags&TCPFin != 0 && (f.SrcPort == port || f.DstPort == port):
			e.fin = true
		}
	}
	e.stats = d.Stats()
	return e
}

// waitForExchange polls the growing file until the whole exchange is in
// it: -i any can hand packets over later than -i lo.
func waitForExchange(t *testing.T, path string, lt LinkType, loop netip.Addr, port uint16) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		src, err := Open(path)
		if err != nil {
			continue
		}
		pkts, _ := readAll(t, src) // the last record may be mid-write
		src.Close()
		if findExchange(t, pkts, lt, loop, port).complete() {
			return
		}
	}
}

// TestTcpdumpFiles records a loopback HTTP exchange with tcpdump on lo
// (Ethernet) and on any (Linux cooked v1 and v2), in µs and ns, and checks
// both what we decode and that pcapgo reads the same packets.
func TestTcpdumpFiles(t *testing.T) {
	bin := needTcpdump(t)
	for _, tc := range []struct {
		name    string
		iface   string
		args    []string
		network string
		addr    string
		lt      LinkType
	}{
		{"lo", "lo", nil, "tcp4", "127.0.0.1:0", LinkEthernet},
		{"lo-nanos-ipv6", "lo", []string{"--time-stamp-precision=nano"}, "tcp6", "[::1]:0", LinkEthernet},
		{"any-sll", "any", []string{"-y", "LINUX_SLL"}, "tcp4", "127.0.0.1:0", LinkSLL},
		{"any-sll2", "any", []string{"-y", "LINUX_SLL2"}, "tcp6", "[::1]:0", LinkSLL2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.name+".pcap")
			// Capture all loopback TCP: the port is only known once the
			// server listens, and the server must listen after tcpdump.
			// --immediate-mode: without it libpcap hands packets over a
			// second late. -B: the default 2 MiB ring drops packets on "any".
			args := append([]string{"-i", tc.iface, "-n", "-U", "--immediate-mode", "-B", "16384", "-w", path}, tc.args...)
			args = append(args, "tcp and (host 127.0.0.1 or host ::1)")
			cmd, _ := startTcpdump(t, bin, args...)
			port := httpExchange(t, tc.network, tc.addr)
			loop := netip.MustParseAddr("127.0.0.1")
			if tc.network == "tcp6" {
				loop = netip.IPv6Loopback()
			}
			waitForExchange(t, path, tc.lt, loop, port)
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()

			src, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			pkts, err := readAll(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if e := findExchange(t, pkts, tc.lt, loop, port); !e.complete() || e.stats.Malformed+e.stats.Truncated != 0 {
				t.Errorf("in %d packets: %+v; want the whole exchange, nothing malformed", len(pkts), e)
			}

			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(readPcapgoLinkType(t, file, tc.lt), pkts); diff != "" {
				t.Errorf("our reader vs pcapgo (-pcapgo +ours):\n%s", diff)
			}
		})
	}
}

func readPcapgoLinkType(t *testing.T, file []byte, lt LinkType) []got {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var out []got
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got{ci.Timestamp, ci.Length, lt, 0, data})
	}
}

// TestTcpdumpLiveStream reads `tcpdump -U -w -` as it runs: packets must
// come out while tcpdump is still capturing, not at EOF.
func TestTcpdumpLiveStream(t *testing.T) {
	bin := needTcpdump(t)
	_, stdout := startTcpdump(t, bin, "-i", "lo", "-n", "-U", "--immediate-mode", "-w", "-", "tcp and host 127.0.0.1")
	src, err := NewReader(stdout)
	if err != nil {
		t.Fatal(err)
	}
	// The pipe holds the few packets of the exchange; tcpdump keeps running.
	port := httpExchange(t, "tcp4", "127.0.0.1:0")
	d := NewDecoder(DecoderOptions{})
	deadline := time.AfterFunc(10*time.Second, func() { stdout.Close() })
	defer deadline.Stop()
	var p Packet
	var f Frame
	for {
		if err := src.Next(&p); err != nil {
			t.Fatalf("no HTTP response seen while tcpdump ran: %v", err)
		}
		if d.Decode(&p, &f) && bytes.HasPrefix(f.Payload, []byte("HTTP/1.1 200 OK")) {
			break // tcpdump is still running: this came out of a live stream
		}
	}
	if f.SrcPort != port {
		t.Errorf("response from port %d, want %d", f.SrcPort, port)
	}
}
