package tlshello

import (
	"crypto/tls"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzTLSHello feeds two arbitrary directions, interleaved at arbitrary
// split points with occasional gaps. The parser must not panic, must emit
// at most one entry, and the entry must stay within the bounds.
func FuzzTLSHello(f *testing.F) {
	crt, pool := testCert(&testing.T{})
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		var c2s, s2c []byte
		for _, w := range handshake(&testing.T{}, &tls.Config{ServerName: "shop.shark.test", RootCAs: pool,
			NextProtos: []string{"h2"}, MaxVersion: v}, &tls.Config{Certificates: []tls.Certificate{crt}}) {
			if w.dir == dissect.ClientToServer {
				c2s = append(c2s, w.data...)
			} else {
				s2c = append(s2c, w.data...)
			}
		}
		f.Add(c2s, s2c, uint64(v))
	}
	f.Add([]byte{22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0}, []byte{21, 3, 3, 0, 2, 2, 40}, uint64(1))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0xFF, 0xFF, 0xFF}, []byte{23, 3, 3, 0, 1, 0}, uint64(2))

	f.Fuzz(func(t *testing.T, c2s, s2c []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, ^seed))
		var ended bool
		var entries []*entry.Entry
		emit := dissect.EmitFunc(func(e *entry.Entry) {
			if ended {
				t.Fatal("entry emitted after End")
			}
			entries = append(entries, e)
		})
		Detect(c2s)
		Detect(s2c)
		p := Protocol().NewStream(testConn(), emit)
		ts := t0
		for len(c2s) > 0 || len(s2c) > 0 {
			dir := dissect.Dir(r.IntN(2))
			src := &c2s
			if dir == dissect.ServerToClient {
				src = &s2c
			}
			if len(*src) == 0 {
				continue
			}
			n := 1 + r.IntN(len(*src))
			if r.IntN(16) == 0 {
				p.Gap(dir, n)
			} else {
				p.Data(dir, (*src)[:n], ts)
			}
			*src = (*src)[n:]
			ts = ts.Add(time.Millisecond)
		}
		p.End(ts)
		ended = true
		p.End(ts)
		if len(entries) > 1 {
			t.Fatalf("%d entries", len(entries))
		}
		for _, e := range entries {
			i := e.TLSInfo
			if len(i.SNI) > maxName || len(i.ALPN) > maxALPN || len(i.ALPNSelected) > maxProto {
				t.Errorf("unbounded %+v", i)
			}
			for _, a := range i.ALPN {
				if len(a) > maxProto {
					t.Errorf("protocol of %d bytes", len(a))
				}
			}
		}
	})
}
