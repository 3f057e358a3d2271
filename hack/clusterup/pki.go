package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// certAuthority is a CA that signs the cluster's certificates.
type certAuthority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// certSpec is one leaf certificate.
type certSpec struct {
	file   string // base name: FILE.crt and FILE.key
	cn     string
	orgs   []string
	dns    []string
	ips    []net.IP
	usages []x509.ExtKeyUsage
}

var (
	serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	bothAuth   = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
)

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) { return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)) }

func newCA(cn string) (*certAuthority, []byte, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return &certAuthority{cert: cert, key: key}, encodeCert(der), keyPEM, nil
}

// issue signs a leaf certificate and returns it and its key as PEM.
func (ca *certAuthority) issue(s certSpec) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  s.usages,
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign %s: %w", s.file, err)
	}
	keyPEM, err = encodeKey(key)
	return encodeCert(der), keyPEM, err
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// pkiPlan lists the certificates of a cluster: two CAs (cluster and etcd), the
// control plane's serving and client certificates, and per node a kubelet client
// and serving certificate. Every component gets its own identity, as kubeadm does.
func pkiPlan(ns []node) (cluster, etcd []certSpec) {
	api := nthAddr(nodeNet, 1)
	cluster = []certSpec{
		{file: "apiserver", cn: "kube-apiserver", usages: serverAuth,
			dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc." + clusterDomain, "localhost"},
			ips: []net.IP{net.IP(apiServiceIP.AsSlice()), net.IP(api.AsSlice()), net.IPv4(127, 0, 0, 1)}},
		{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, usages: clientAuth},
		{file: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}, usages: clientAuth},
		{file: "controller-manager", cn: "system:kube-controller-manager", usages: clientAuth},
		{file: "scheduler", cn: "system:kube-scheduler", usages: clientAuth},
		{file: "kube-proxy", cn: "system:kube-proxy", usages: clientAuth},
	}
	for _, n := range ns {
		cluster = append(cluster,
			certSpec{file: n.name + "-client", cn: "system:node:" + n.name, orgs: []string{"system:nodes"}, usages: clientAuth},
			certSpec{file: n.name + "-serving", cn: n.name, dns: []string{n.name}, ips: []net.IP{net.IP(n.ip.AsSlice())}, usages: serverAuth})
	}
	etcdIPs := []net.IP{net.IP(api.AsSlice())}
	etcd = []certSpec{
		{file: "etcd-server", cn: "shark-etcd", dns: []string{"localhost"}, ips: etcdIPs, usages: bothAuth},
		{file: "etcd-peer", cn: "shark-etcd", dns: []string{"localhost"}, ips: etcdIPs, usages: bothAuth},
		{file: "apiserver-etcd-client", cn: "kube-apiserver-etcd-client", usages: clientAuth},
	}
	return cluster, etcd
}

// writePKI creates the CAs, every certificate of pkiPlan and the service account
// signing key under state/pki.
func writePKI(l layout, ns []node) error {
	cluster, etcd := pkiPlan(ns)
	for _, set := range []struct {
		caFile, caCN string
		certs        []certSpec
	}{{"ca", "shark-ca", cluster}, {"etcd-ca", "shark-etcd-ca", etcd}} {
		ca, caCert, caKey, err := newCA(set.caCN)
		if err != nil {
			return err
		}
		if err := writePair(l, set.caFile, caCert, caKey); err != nil {
			return err
		}
		for _, s := range set.certs {
			crt, key, err := ca.issue(s)
			if err != nil {
				return err
			}
			if err := writePair(l, s.file, crt, key); err != nil {
				return err
			}
		}
	}
	return writeServiceAccountKey(l)
}

func writePair(l layout, name string, crt, key []byte) error {
	if err := writeFile(l.pki(name+".crt"), crt, 0o644); err != nil {
		return err
	}
	return writeFile(l.pki(name+".key"), key, 0o600)
}

func writeServiceAccountKey(l layout) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writeFile(l.pki("sa.key"), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(l.pki("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}
