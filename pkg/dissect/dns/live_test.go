package dns

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// TestLiveDnsmasq records the real bytes dig and dnsmasq exchange on
// loopback, through a recording relay, and dissects them.
func TestLiveDnsmasq(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dnsmasq")
	}
	for _, bin := range []string{"dig", "dnsmasq"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install dnsutils dnsmasq)", bin)
		}
	}
	server := startDnsmasq(t)
	tests := []struct {
		qtype, name, status, data string
	}{
		{"A", "web.shark.test", "NOERROR", "10.1.2.3"},
		{"AAAA", "web.shark.test", "NOERROR", "fd00::1:2"},
		{"MX", "shark.test", "NOERROR", "10 mail.shark.test."},
		{"TXT", "shark.test", "NOERROR", `"v=spf1 -all" "hello world"`},
		{"SRV", "_http._tcp.shark.test", "NOERROR", "1 5 8080 web.shark.test."},
		{"A", "nope.shark.test", "NXDOMAIN", ""},
	}
	for _, transport := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(transport+"/"+tt.qtype+"/"+tt.name, func(t *testing.T) {
				rec := newRelay(t, transport, server)
				args := []string{"@127.0.0.1", "-p", strconv.Itoa(rec.port), "+tries=1", "+time=3", tt.name, tt.qtype}
				if transport == "tcp" {
					args = append(args, "+tcp")
				}
				out, err := exec.Command("dig", args...).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "status: "+tt.status) {
					t.Fatalf("dig %v: %v\n%s", args, err, out)
				}
				entries := rec.dissect(t, transport)
				if len(entries) != 1 {
					t.Fatalf("%d entries: %+v", len(entries), entries)
				}
				e := entries[0]
				if e.Method != tt.qtype || e.Path != tt.name || e.Status != tt.status || e.Error != "" ||
					e.DNS.Transport != transport || e.Size.Request == 0 || e.Size.Response == 0 {
					t.Errorf("entry %+v dns %+v", e, e.DNS)
				}
				var data []string
				for _, a := range e.DNS.Answers {
					data = append(data, a.Data)
				}
				if got := strings.Join(data, ","); got != tt.data {
					t.Errorf("answers %q, want %q", got, tt.data)
				}
				if tt.status == "NXDOMAIN" && (len(e.DNS.Authority) != 0 && e.DNS.Authority[0].Type != "SOA") {
					t.Errorf("authority %+v", e.DNS.Authority)
				}
			})
		}
	}
}

// startDnsmasq runs dnsmasq on a free loopback port with a few records and
// returns its address.
func startDnsmasq(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1",
		"--port="+strconv.Itoa(port), "--local=/shark.test/",
		"--host-record=web.shark.test,10.1.2.3,fd00::1:2",
		"--mx-host=shark.test,mail.shark.test,10",
		"--txt-record=shark.test,v=spf1 -all,hello world",
		"--srv-host=_http._tcp.shark.test,web.shark.test,8080,1,5")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not start: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chunk is one read of the relay: a datagram, or a TCP segment's worth.
type chunk struct {
	dir  dissect.Dir
	data []byte
	ts   time.Time
}

// relay forwards one client's traffic to the server and records it.
type relay struct {
	port   int
	mu     sync.Mutex
	chunks []chunk
	done   chan struct{}
}

func (r *relay) record(dir dissect.Dir, b []byte) {
	r.mu.Lock()
	r.chunks = append(r.chunks, chunk{dir, append([]byte(nil), b...), time.Now()})
	r.mu.Unlock()
}

func newRelay(t *testing.T, transport, server string) *relay {
	t.Helper()
	r := &relay{done: make(chan struct{})}
	if transport == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.port = pc.LocalAddr().(*net.UDPAddr).Port
		go r.udp(pc, server)
		t.Cleanup(func() { pc.Close(); <-r.done })
		return r
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.port = l.Addr().(*net.TCPAddr).Port
	go r.tcp(l, server)
	t.Cleanup(func() { l.Close(); <-r.done })
	return r
}

// udp relays datagrams one exchange at a time, as dig sends them.
func (r *relay) udp(pc net.PacketConn, server string) {
	defer close(r.done)
	up, err := net.Dial("udp", server)
	if err != nil {
		return
	}
	defer up.Close()
	buf := make([]byte, 65535)
	for {
		n, client, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		r.record(dissect.ClientToServer, buf[:n])
		up.Write(buf[:n])
		up.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, err = up.Read(buf); err != nil {
			continue
		}
		r.record(dissect.ServerToClient, buf[:n])
		pc.WriteTo(buf[:n], client)
	}
}

// tcp relays one connection, recording every read in each direction.
func (r *relay) tcp(l net.Listener, server string) {
	defer close(r.done)
	c, err := l.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	up, err := net.Dial("tcp", server)
	if err != nil {
		return
	}
	defer up.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	pump := func(dst, src net.Conn, dir dissect.Dir) {
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				r.record(dir, buf[:n])
				dst.Write(buf[:n])
			}
			if err != nil {
				if cw, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
					cw.CloseWrite()
				}
				return
			}
		}
	}
	go pump(up, c, dissect.ClientToServer)
	go pump(c, up, dissect.ServerToClient)
	wg.Wait()
}

// dissect feeds what was recorded to a parser of the transport.
func (r *relay) dissect(t *testing.T, transport string) []*entry.Entry {
	t.Helper()
	var c collector
	r.mu.Lock()
	chunks := r.chunks
	r.mu.Unlock()
	if len(chunks) == 0 {
		t.Fatal("nothing recorded")
	}
	conn := testConn(transport)
	end := chunks[len(chunks)-1].ts
	if transport == "udp" {
		p := newDatagram(conn, &c)
		for _, ch := range chunks {
			p.Datagram(ch.dir, ch.data, ch.ts)
		}
		p.End(end)
		return c.entries
	}
	p := newStream(conn, &c)
	for _, ch := range chunks {
		p.Data(ch.dir, ch.data, ch.ts)
	}
	p.End(end)
	return c.entries
}
