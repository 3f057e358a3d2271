package tlshello

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// write is one Write call on the wire of a recorded handshake.
type write struct {
	dir  dissect.Dir
	data []byte
}

// wire records the writes of both ends of a net.Pipe, in order.
type wire struct {
	mu     sync.Mutex
	writes []write
}

type tap struct {
	net.Conn
	w   *wire
	dir dissect.Dir
}

func (t *tap) Write(b []byte) (int, error) {
	t.w.mu.Lock()
	t.w.writes = append(t.w.writes, write{t.dir, append([]byte(nil), b...)})
	t.w.mu.Unlock()
	return t.Conn.Write(b)
}

var (
	certOnce sync.Once
	cert     tls.Certificate
	certPool *x509.CertPool
)

// testCert is a self-signed certificate for shop.shark.test.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shop.shark.test"},
			DNSNames: []string{"shop.shark.test"}, NotBefore: t0.Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
		c, _ := x509.ParseCertificate(der)
		certPool = x509.NewCertPool()
		certPool.AddCert(c)
	})
	return cert, certPool
}

// handshake runs a real crypto/tls handshake (and one echo) over a pipe
// and returns what crossed it.
func handshake(t *testing.T, cc, sc *tls.Config) []write {
	t.Helper()
	a, b := loopbackPair(t)
	w := &wire{}
	client := tls.Client(&tap{a, w, dissect.ClientToServer}, cc)
	server := tls.Server(&tap{b, w, dissect.ServerToClient}, sc)
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if server.Handshake() == nil {
			buf := make([]byte, 5)
			if n, err := server.Read(buf); err == nil {
				server.Write(buf[:n])
			}
		}
		server.Close()
	}()
	if client.Handshake() == nil {
		client.Write([]byte("hello"))
		buf := make([]byte, 5)
		client.Read(buf)
	}
	client.Close()
	<-done
	return w.writes
}

// loopbackPair returns the two ends of a TCP connection on 127.0.0.1,
// whose kernel buffers let a failing side write its alert unread.
func loopbackPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

type recorder struct{ entries []*entry.Entry }

func (r *recorder) Emit(e *entry.Entry) { r.entries = append(r.entries, e) }

func testConn() *dissect.Conn {
	opts := dissect.DefaultOptions()
	return &dissect.Conn{Transport: "tcp", Client: netip.MustParseAddrPort("10.0.0.1:40000"),
		Server: netip.MustParseAddrPort("10.0.0.2:443"), FlowID: "f1", Opts: &opts}
}

// replay feeds writes to a new parser, each split into pieces of at most
// chunk bytes (0: whole), and ends it.
func replay(writes []write, chunk int) []*entry.Entry {
	var r recorder
	p := Protocol().NewStream(testConn(), &r)
	ts := t0
	for _, w := range writes {
		d := w.data
		for len(d) > 0 {
			n := len(d)
			if chunk > 0 {
				n = min(n, chunk)
			}
			p.Data(w.dir, d[:n], ts)
			d = d[n:]
		}
		ts = ts.Add(time.Millisecond)
	}
	p.End(ts)
	return r.entries
}

func TestHandshakes(t *testing.T) {
	crt, pool := testCert(t)
	server := func(mod func(*tls.Config)) *tls.Config {
		c := &tls.Config{Certificates: []tls.Certificate{crt}, NextProtos: []string{"h2", "http/1.1"}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	client := func(mod func(*tls.Config)) *tls.Config {
		c := &tls.Config{ServerName: "shop.shark.test", RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name           string
		client, server *tls.Config
		method, status string
		err            string
		info           entry.TLSInfo
	}{{
		name:   "tls13",
		client: client(nil), server: server(nil),
		method: "TLS1.3", status: "OK",
		info: entry.TLSInfo{SNI: "shop.shark.test", ALPN: []string{"h2", "http/1.1"}, Version: "TLS1.3",
			Cipher: "TLS_AES_128_GCM_SHA256"},
	}, {
		name:   "tls12 shows the selected protocol",
		client: client(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }),
		server: server(func(c *tls.Config) {
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
		}),
		method: "TLS1.2", status: "OK",
		info: entry.TLSInfo{SNI: "shop.shark.test", ALPN: []string{"h2", "http/1.1"}, Version: "TLS1.2",
			Cipher: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", ALPNSelected: "h2"},
	}, {
		name:   "hello retry request",
		client: client(func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256} }),
		server: server(func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.CurveP256} }),
		method: "TLS1.3", status: "OK",
		info: entry.TLSInfo{SNI: "shop.shark.test", ALPN: []string{"h2", "http/1.1"}, Version: "TLS1.3",
			Cipher: "TLS_AES_128_GCM_SHA256"},
	}, {
		name:   "version mismatch alert",
		client: client(func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }),
		server: server(func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }),
		status: "protocol_version",
		info:   entry.TLSInfo{SNI: "shop.shark.test", ALPN: []string{"h2", "http/1.1"}, Alert: "protocol_version"},
	}, {
		name: "tls12 client rejects the certificate",
		client: &tls.Config{ServerName: "shop.shark.test", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
		server: server(nil),
		method: "TLS1.2", status: "bad_certificate",
		info: entry.TLSInfo{SNI: "shop.shark.test", Version: "TLS1.2",
			Cipher: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Alert: "bad_certificate"},
	}, {
		name:   "no server name",
		client: &tls.Config{InsecureSkipVerify: true},
		server: server(nil),
		method: "TLS1.3", status: "OK",
		info: entry.TLSInfo{Version: "TLS1.3", Cipher: "TLS_AES_128_GCM_SHA256"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writes := handshake(t, tc.client, tc.server)
			for _, chunk := range []int{0, 1, 7, 100} {
				es := replay(writes, chunk)
				if len(es) != 1 {
					t.Fatalf("chunk %d: %d entries, want 1", chunk, len(es))
				}
				e := es[0]
				got := []string{e.Proto, e.Method, e.Path, e.Status, e.Error, strconv.FormatBool(e.TLS)}
				want := []string{"tls", tc.method, tc.info.SNI, tc.status, tc.err, "true"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("chunk %d: entry (-want +got):\n%s", chunk, diff)
				}
				if diff := cmp.Diff(tc.info, *e.TLSInfo); diff != "" {
					t.Errorf("chunk %d: tls_hello (-want +got):\n%s", chunk, diff)
				}
				if e.Size.Request == 0 || e.Size.Response == 0 {
					t.Errorf("chunk %d: size %+v", chunk, e.Size)
				}
			}
		})
	}
}

// TestResumption resumes a TLS 1.3 session (PSK) and a TLS 1.2 one
// (session ticket, echoed session id).
func TestResumption(t *testing.T) {
	crt, pool := testCert(t)
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cache := tls.NewLRUClientSessionCache(4)
			sc := &tls.Config{Certificates: []tls.Certificate{crt}, MaxVersion: v}
			cc := &tls.Config{ServerName: "shop.shark.test", RootCAs: pool, ClientSessionCache: cache}
			var resumed []bool
			for range 2 {
				es := replay(handshake(t, cc, sc), 0)
				if len(es) != 1 {
					t.Fatalf("%d entries", len(es))
				}
				resumed = append(resumed, es[0].TLSInfo.Resumed)
			}
			if diff := cmp.Diff([]bool{false, true}, resumed); diff != "" {
				t.Errorf("resumed (-want +got):\n%s", diff)
			}
		})
	}
}
