package main

import (
	"flag"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// TLS log keys: "<version> <sni> <status>" as the dissector names them
// (TLS1.3 shop.shark.test OK, TLS1.2 ... OK, "protocol_version" for a
// refused handshake), and the counters "alpn.<protocol>" for the protocol
// the server chose on a TLS 1.2 connection and "cipher.<name>" for the
// cipher suite.

// tlsRun is one curl run: its arguments, and what the log expects.
type tlsRun struct {
	host   string   // the SNI curl sends (resolved to the server)
	strict bool     // to the TLS 1.3-only server (openssl s_server), not nginx
	args   []string // curl options
	fail   bool     // the handshake is refused
}

var tlsRuns = []tlsRun{
	{host: "shop.shark.test", args: []string{"--http2"}},
	{host: "api.shark.test", args: []string{"--http1.1"}},
	{host: "shop.shark.test", args: []string{"--http2", "--tlsv1.2", "--tls-max", "1.2"}},
	{host: "legacy.shark.test", args: []string{"--http1.1", "--tlsv1.2", "--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256"}},
	{host: "strict.shark.test", strict: true, args: []string{"--tlsv1.3"}},
	{host: "strict.shark.test", strict: true, args: []string{"--tlsv1.2", "--tls-max", "1.2"}, fail: true},
}

var (
	connRe = regexp.MustCompile(`SSL connection using (TLSv1\.[0-3]) / (\S+)`)
	alpnRe = regexp.MustCompile(`ALPN: server accepted (\S+)`)
	// curl prints OpenSSL cipher names; the log uses IANA names.
	opensslCiphers = map[string]string{
		"TLS_AES_256_GCM_SHA384":       "TLS_AES_256_GCM_SHA384",
		"TLS_AES_128_GCM_SHA256":       "TLS_AES_128_GCM_SHA256",
		"TLS_CHACHA20_POLY1305_SHA256": "TLS_CHACHA20_POLY1305_SHA256",
		"ECDHE-RSA-AES128-GCM-SHA256":  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"ECDHE-RSA-AES256-GCM-SHA384":  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"ECDHE-RSA-CHACHA20-POLY1305":  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	}
)

// tlsClient runs curl against a TLS server with several versions, server
// names and ALPN offers, one connection each, and logs what curl -v says
// was negotiated.
func tlsClient(args []string) error {
	fs := flag.NewFlagSet("tls-client", flag.ContinueOnError)
	port := fs.String("port", "443", "server port (nginx)")
	strictPort := fs.String("strict-port", "4433", "port of the TLS 1.3-only server")
	addr := fs.String("addr", "127.0.0.1", "server address")
	logPath := fs.String("log", "", "log file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l := Log{}
	for _, r := range tlsRuns {
		p := *port
		if r.strict {
			p = *strictPort
		}
		url := "https://" + r.host + ":" + p + "/"
		a := append([]string{"-sS", "-v", "-k", "-o", "/dev/null", "--max-time", "10",
			"--resolve", r.host + ":" + p + ":" + *addr}, r.args...)
		out, err := exec.Command("curl", append(a, url)...).CombinedOutput()
		if r.fail {
			if err == nil {
				return fmt.Errorf("%s: handshake succeeded, want a refusal", r.host)
			}
			l.entry("tls", "", r.host, "protocol_version")
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %v: %s", r.host, err, out)
		}
		m := connRe.FindStringSubmatch(string(out))
		if m == nil {
			return fmt.Errorf("%s: no 'SSL connection using' in curl's output", r.host)
		}
		version := strings.Replace(m[1], "TLSv", "TLS", 1)
		cipher, ok := opensslCiphers[m[2]]
		if !ok {
			return fmt.Errorf("%s: cipher %s has no IANA name here", r.host, m[2])
		}
		l.entry("tls", version, r.host, "OK")
		l.count("tls", "cipher."+cipher, 1)
		// TLS 1.3 encrypts the server's choice: only a TLS 1.2 one is
		// visible on the wire.
		if a := alpnRe.FindStringSubmatch(string(out)); a != nil && version == "TLS1.2" {
			l.count("tls", "alpn."+a[1], 1)
		}
	}
	return l.write(*logPath)
}
