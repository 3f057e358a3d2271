//go:build linux

// Package tracertest runs real TLS peers for the tracer's root tests:
// network namespaces, nginx with a self-signed certificate, curl, Python's
// ssl module, and a Go HTTPS server and client built with the installed Go.
package tracertest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Require skips the test unless it runs as root with the tools it names
// (hack/deps.sh installs them).
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and BPF")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (hack/deps.sh installs it)", tool)
		}
	}
}

// Netns is a network namespace made for one test.
type Netns struct {
	Name string
	Path string
	Ino  uint64
}

// NewNetns creates a namespace with loopback up; the test's cleanup
// removes it.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	name := fmt.Sprintf("shark-tls-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	n := &Netns{Name: name, Path: "/run/netns/" + name}
	var st syscall.Stat_t
	if err := syscall.Stat(n.Path, &st); err != nil {
		t.Fatal(err)
	}
	n.Ino = st.Ino
	return n
}

// Command returns a command that runs inside the namespace. ip netns exec
// execs it, so its pid is the program's.
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Start starts a long-running command in the namespace; the test's cleanup
// ends it (by its pid) and waits for it.
func (n *Netns) Start(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := n.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return cmd
}

// WaitListen waits until a TCP port listens in the namespace.
func (n *Netns) WaitListen(t testing.TB, pid, port int) {
	t.Helper()
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range []string{"tcp", "tcp6"} {
			data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				if len(fields) > 3 && fields[3] == "0A" && strings.Contains(fields[1]+" ", want) {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d in %s", port, n.Name)
}

// Cert writes a self-signed certificate for 127.0.0.1 and localhost.
func Cert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	tmpl.IPAddresses = append(tmpl.IPAddresses, []byte{127, 0, 0, 1})
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// NginxPort is where StartNginx listens, with TLS, HTTP/1.1 and HTTP/2.
const NginxPort = 8443

// StartNginx runs Debian's nginx in the namespace with a certificate made
// for the test: GET /hello answers 200 "hello", anything else 404. It
// returns the master process.
func StartNginx(t testing.TB, n *Netns, workers int) *exec.Cmd {
	t.Helper()
	cert, key := Cert(t)
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
worker_processes %d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:%[3]d ssl http2;
    ssl_certificate %[4]s;
    ssl_certificate_key %[5]s;
    location = /hello { return 200 "hello\n"; }
    location / { return 404; }
  }
}
`, workers, dir, NginxPort, cert, key)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := n.Start(t, "nginx", "-c", path, "-p", dir)
	n.WaitListen(t, cmd.Process.Pid, NginxPort)
	return cmd
}

// GoTLS builds the Go HTTPS server and client of testdata/gotls with the
// installed Go and returns the binary.
func GoTLS(t testing.TB) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "testdata", "gotls", "main.go")
	bin := filepath.Join(t.TempDir(), "gotls")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building gotls: %v\n%s", err, out)
	}
	return bin
}

// GoVersion is the version of the installed Go, which built GoTLS.
func GoVersion() string { return runtime.Version() }

// PythonGet is a Python program that GETs argv[1] over TLS with the ssl
// module (OpenSSL) and HTTP/1.1, not verifying the certificate.
const PythonGet = `import socket, ssl, sys
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection((host, port)) as raw:
    with ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: python-ssl\r\nConnection: close\r\n\r\n" % (path, host)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
print(data.split(b"\r\n", 1)[0].decode())
`
