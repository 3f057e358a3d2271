// Package hubtest runs a real hub in-process for tests, on loopback ports
// with generated key material, and provides real clients of it: a worker
// (a TLS WebSocket client speaking pkg/wire, as pkg/worker does) and a
// subscriber (as the CLI and the dashboard are).
package hubtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/hub"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// PKI is a session's key material: a CA, a hub certificate it signed for
// wire.HubServerName, and a token.
type PKI struct {
	CACert []byte // PEM
	Cert   tls.Certificate
	Token  string
}

// NewPKI generates key material (ECDSA P-256, valid for an hour).
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p, err := GeneratePKI(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// GeneratePKI makes a session's key material as the CLI does: a CA, the
// hub's certificate for wire.HubServerName, and a random token, valid for
// validity from now.
func GeneratePKI(validity time.Duration) (*PKI, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hubtest CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: wire.HubServerName},
		DNSNames:     []string{wire.HubServerName},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, err
	}
	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	return &PKI{
		CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert:   cert,
		Token:  hex.EncodeToString(tok[:]),
	}, nil
}

// Hub is a hub running in-process.
type Hub struct {
	PKI        *PKI
	WorkerAddr string // host:port of the worker (TLS) listener
	APIAddr    string // host:port of the API listener
	cancel     context.CancelFunc
	done       chan error
}

// Start runs hub.Run with opts on two loopback ports (or the listeners
// opts sets), with a new PKI unless opts sets a Certificate and a Token. The hub stops at the end of
// the test, which fails if Run returns an error.
func Start(t testing.TB, opts hub.Options) *Hub {
	t.Helper()
	p := NewPKI(t)
	if opts.Certificate != nil {
		p.Cert = *opts.Certificate
	}
	if opts.Token != "" {
		p.Token = opts.Token
	}
	opts.Certificate, opts.Token = &p.Cert, p.Token
	if opts.Logger == nil {
		// Shown with -v, or when the test fails.
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	wl, al := opts.WorkerListener, opts.APIListener
	var err error
	if wl == nil {
		if wl, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if al == nil {
		if al, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			wl.Close()
			t.Fatal(err)
		}
	}
	opts.WorkerListener, opts.APIListener = wl, al
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{PKI: p, WorkerAddr: wl.Addr().String(), APIAddr: al.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- hub.Run(ctx, opts) }()
	t.Cleanup(func() {
		if err := h.Stop(); err != nil {
			t.Errorf("hub.Run: %v", err)
		}
	})
	return h
}

// Stop cancels the hub's context and returns what Run returned; it fails
// if Run takes more than 10 seconds to return.
func (h *Hub) Stop() error {
	h.cancel()
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
		}
		return err
	case <-time.After(10 * time.Second):
		return errors.New("hub.Run did not return within 10s of its context being done")
	}
}

// URL returns the address of an API path, with query q.
func (h *Hub) URL(path string, q url.Values) string {
	u := url.URL{Scheme: "http", Host: h.APIAddr, Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Request returns an API request that carries the token.
func (h *Hub) Request(ctx context.Context, method, path string, q url.Values, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.URL(path, q), bytesReader(body))
	if err != nil {
		return nil, err
	}
	wire.SetToken(req.Header, h.PKI.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Do sends an API request with the token and returns the response.
func (h *Hub) Do(ctx context.Context, method, path string, q url.Values, body []byte) (*http.Response, error) {
	req, err := h.Request(ctx, method, path, q, body)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req)
}

// DialWorker connects a fake worker to the hub with its CA and token.
func (h *Hub) DialWorker(ctx context.Context, hello wire.Hello) (*Worker, error) {
	return DialWorker(ctx, h.WorkerAddr, h.PKI.CACert, h.PKI.Token, hello)
}

// Subscribe connects a subscriber with filter expr.
func (h *Hub) Subscribe(ctx context.Context, expr string) (*Subscriber, error) {
	return Subscribe(ctx, h.APIAddr, h.PKI.Token, expr, nil)
}

func errStatus(resp *http.Response, err error) error {
	if resp != nil {
		return fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
	}
	return err
}
