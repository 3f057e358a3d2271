//go:build e2e

package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// TestTLSDecrypted taps the demo's HTTPS service (Go crypto/tls), called by
// curl (OpenSSL) from secure-client and by front (Go), and expects the
// decrypted requests with both pods named, from the eBPF tracer, and the
// server's process (the demo app) named at its end.
func TestTLSDecrypted(t *testing.T) {
	e := setupSharkEnv(t)
	ensureDemo(t)
	p := e.start(t, "tap", "-n", "demo", "secure", "-o", "json")
	p.waitStderr(t, sessionLine, 30*time.Second)
	p.waitStderr(t, regexp.MustCompile(`worker on \S+ connected, capturing with .*ebpf_tls`), 90*time.Second)
	decrypted := func(from, path string) func(entry.Entry) bool {
		return func(x entry.Entry) bool {
			return x.TLS && x.Source == entry.SourceEBPFTLS && strings.HasPrefix(x.Path, path) &&
				strings.HasPrefix(x.Src.Pod, from) && strings.HasPrefix(x.Dst.Pod, "secure-") &&
				x.Src.Namespace == "demo" && x.Status != "" && x.Dst.Process == "demoapp" && x.Dst.PID > 0
		}
	}
	es := readEntries(t, p, func(es []entry.Entry) bool {
		return hasEntry(es, decrypted("secure-client-", "/v1/ping")) && hasEntry(es, decrypted("front-", "/v1/charges"))
	}, 2*time.Minute)
	for _, x := range es {
		if x.Proto == entry.ProtoTLS {
			continue // the handshake, from AF_PACKET
		}
		if (x.Dst.Port == 8443 || x.Src.Port == 8443) && !x.TLS {
			t.Errorf("an exchange on the TLS port not marked tls: %s %s %s from %s", x.Proto, x.Method, x.Path, x.Src.Pod)
		}
	}
	if code := p.interrupt(t, 45*time.Second); code != 0 {
		t.Errorf("tap exit %d", code)
	}
}
