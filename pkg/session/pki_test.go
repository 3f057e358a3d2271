package session

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewPKI(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := pkiNow
	pkiNow = func() time.Time { return start }
	t.Cleanup(func() { pkiNow = old })

	p, err := NewPKI("shark-abc123", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca := parseCert(t, p.CACert)
	hub := parseCert(t, p.HubCert)
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v MaxPathLenZero=%v KeyUsage=%v", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	for name, c := range map[string]*x509.Certificate{"CA": ca, "hub": hub} {
		k, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s key is %T, want ECDSA P-256", name, c.PublicKey)
		}
		if got := c.NotAfter.Sub(start); got != 24*time.Hour {
			t.Errorf("%s valid for %s from now, want 24h", name, got)
		}
		if !c.NotBefore.Before(start) {
			t.Errorf("%s NotBefore %s is not before now (clock skew)", name, c.NotBefore)
		}
	}
	if hub.IsCA {
		t.Error("hub certificate is a CA")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"shark-hub", "shark-hub.shark-abc123.svc"} {
		_, err := hub.Verify(x509.VerifyOptions{
			DNSName: name, Roots: roots, CurrentTime: start,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("verify hub cert for %s: %v", name, err)
		}
	}
	if _, err := hub.Verify(x509.VerifyOptions{DNSName: "evil.example", Roots: roots, CurrentTime: start}); err == nil {
		t.Error("hub cert verifies for evil.example")
	}
	if _, err := hub.Verify(x509.VerifyOptions{DNSName: "shark-hub", Roots: roots, CurrentTime: start.Add(25 * time.Hour)}); err == nil {
		t.Error("hub cert still verifies after 25h")
	}
	if _, err := tls.X509KeyPair(p.HubCert, p.HubKey); err != nil {
		t.Errorf("hub key does not match its certificate: %v", err)
	}
	if b, err := hex.DecodeString(p.Token); err != nil || len(b) != 32 {
		t.Errorf("token %q: want 32 hex-encoded bytes", p.Token)
	}
	q, err := NewPKI("shark-abc123", 0)
	if err != nil {
		t.Fatal(err)
	}
	if q.Token == p.Token || string(q.CACert) == string(p.CACert) {
		t.Error("two sessions share a token or a CA")
	}
}

// TestPKIHandshake runs a real TLS handshake the way a worker dials the
// hub: by IP, verifying ServerName "shark-hub" against the session CA.
func TestPKIHandshake(t *testing.T) {
	p, err := NewPKI("shark-abc123", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(p.HubCert, p.HubKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.CACert) {
		t.Fatal("bad CA PEM")
	}
	other, err := NewPKI("shark-zzz999", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherRoots := x509.NewCertPool()
	otherRoots.AppendCertsFromPEM(other.CACert)

	for _, tc := range []struct {
		name   string
		roots  *x509.CertPool
		server string
		ok     bool
	}{
		{"session CA", roots, HubServerName, true},
		{"another session's CA", otherRoots, HubServerName, false},
		{"wrong name", roots, "kubernetes.default", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Loopback TCP rather than net.Pipe: a failed handshake sends
			// an alert while the peer still writes, which a pipe deadlocks on.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				s.SetDeadline(time.Now().Add(5 * time.Second))
				_ = tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}).Handshake()
			}()
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			cl := tls.Client(c, &tls.Config{RootCAs: tc.roots, ServerName: tc.server, MinVersion: tls.VersionTLS13})
			err = cl.Handshake()
			c.Close()
			<-done
			if (err == nil) != tc.ok {
				t.Fatalf("handshake error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
