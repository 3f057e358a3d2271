package session

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// DefaultCertValidity is how long the session CA and the hub certificate
// are valid. A session ends long before (see Options.MaxDuration).
const DefaultCertValidity = 24 * time.Hour

// clockSkew backdates certificates so that a node whose clock runs a little
// behind the user's machine still accepts them.
const clockSkew = 5 * time.Minute

// PKI is the key material of one session. It exists only in memory and in
// the session's Secret: the CA key is thrown away once the hub certificate
// is signed, so nothing else can ever be signed by it.
type PKI struct {
	CACert  []byte // PEM, workers verify the hub with it
	HubCert []byte // PEM, for ServerName "shark-hub" and shark-hub.<ns>.svc
	HubKey  []byte // PEM (PKCS #8)
	Token   string // 32 random bytes, hex: the bearer token of every hub endpoint
	// NotAfter is when the certificates expire.
	NotAfter time.Time
}

// pkiNow is the clock of certificate validity; tests pin it.
var pkiNow = time.Now

// NewPKI generates a session CA (ECDSA P-256), signs a hub serving
// certificate with it for namespace ns, and draws a token.
func NewPKI(ns string, validity time.Duration) (*PKI, error) {
	if validity <= 0 {
		validity = DefaultCertValidity
	}
	notBefore := pkiNow().Add(-clockSkew).Truncate(time.Second)
	notAfter := notBefore.Add(clockSkew + validity)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate session CA key: %w", err)
	}
	caTmpl, err := certTemplate("kubectl-shark session CA "+ns, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	caTmpl.IsCA = true
	caTmpl.BasicConstraintsValid = true
	caTmpl.MaxPathLenZero = true // it signs the hub certificate and nothing below it
	caTmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign session CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse session CA: %w", err)
	}

	hubKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate hub key: %w", err)
	}
	hubTmpl, err := certTemplate(HubServerName, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	hubTmpl.DNSNames = hubDNSNames(ns)
	hubTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	hubTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	hubDER, err := x509.CreateCertificate(rand.Reader, hubTmpl, ca, &hubKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign hub certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(hubKey)
	if err != nil {
		return nil, fmt.Errorf("encode hub key: %w", err)
	}
	token, err := NewToken()
	if err != nil {
		return nil, err
	}
	return &PKI{
		CACert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		HubCert:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hubDER}),
		HubKey:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Token:    token,
		NotAfter: notAfter,
	}, nil
}

// hubDNSNames are the names the hub certificate is valid for. Workers dial
// the hub pod's IP (there is no Service) and verify ServerName "shark-hub".
func hubDNSNames(ns string) []string {
	return []string{HubServerName, HubServerName + "." + ns + ".svc"}
}

// NewToken returns 32 random bytes, hex encoded.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("draw session token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func certTemplate(cn string, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("draw certificate serial: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"kubectl-shark"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}, nil
}
