package tlshello

import (
	"crypto/tls"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

func TestDetect(t *testing.T) {
	crt, pool := testCert(t)
	writes := handshake(t, &tls.Config{ServerName: "shop.shark.test", RootCAs: pool},
		&tls.Config{Certificates: []tls.Certificate{crt}})
	clientHello, serverHello := writes[0].data, writes[1].data
	appData := []byte{23, 3, 3, 0, 2, 0xAA, 0xBB, 23, 3, 3, 0, 1, 0xCC}
	tests := []struct {
		name       string
		data       []byte
		v          dissect.Verdict
		fromClient bool
	}{
		{"client hello", clientHello, dissect.Yes, true},
		{"server hello", serverHello, dissect.Yes, false},
		{"client hello header only", clientHello[:5], dissect.Maybe, false},
		{"first byte", clientHello[:1], dissect.Maybe, false},
		{"empty", nil, dissect.Maybe, false},
		{"application data records", appData, dissect.Maybe, false},
		{"one whole alert", []byte{21, 3, 3, 0, 2, 2, 40}, dissect.Maybe, false},
		{"application data cut", appData[:9], dissect.No, false},
		{"http", []byte("GET / HTTP/1.1\r\n"), dissect.No, false},
		{"bad version", []byte{22, 3, 9, 0, 4, 1, 0, 0, 0}, dissect.No, false},
		{"record too long", []byte{22, 3, 1, 0xFF, 0xFF, 1}, dissect.No, false},
		{"other handshake message", []byte{22, 3, 3, 0, 4, 11, 0, 0, 0}, dissect.No, false},
		{"sslv2 hello", []byte{0x80, 0x2e, 0x01, 0x03, 0x01}, dissect.No, false},
	}
	for _, tc := range tests {
		v, fromClient := Detect(tc.data)
		if v != tc.v || fromClient != tc.fromClient {
			t.Errorf("%s: Detect = %v, %v; want %v, %v", tc.name, v, fromClient, tc.v, tc.fromClient)
		}
	}
}

// TestMidstream: a connection captured after its handshake is one entry
// that says so.
func TestMidstream(t *testing.T) {
	var r recorder
	p := Protocol().NewStream(testConn(), &r)
	p.Data(dissect.ClientToServer, []byte{23, 3, 3, 0, 2, 1, 2}, t0)
	p.Data(dissect.ServerToClient, []byte{23, 3, 3, 0, 3, 1, 2, 3}, t0)
	p.End(t0)
	if len(r.entries) != 1 {
		t.Fatalf("%d entries", len(r.entries))
	}
	if e := r.entries[0]; e.Error != errNotCaptured || e.Status != "" || e.Size.Request != 7 || e.Size.Response != 8 {
		t.Errorf("entry %+v", e)
	}
}

// TestGap: a gap in the server's direction before its hello leaves the
// client's side of the story, with an error.
func TestGap(t *testing.T) {
	crt, pool := testCert(t)
	writes := handshake(t, &tls.Config{ServerName: "a.test", RootCAs: pool, InsecureSkipVerify: true},
		&tls.Config{Certificates: []tls.Certificate{crt}})
	var r recorder
	p := Protocol().NewStream(testConn(), &r)
	p.Data(dissect.ClientToServer, writes[0].data, t0)
	p.Gap(dissect.ServerToClient, 100)
	p.Data(dissect.ServerToClient, writes[1].data[10:], t0)
	p.End(t0)
	if len(r.entries) != 1 {
		t.Fatalf("%d entries", len(r.entries))
	}
	if e := r.entries[0]; e.Path != "a.test" || e.Error != errNoServerHello {
		t.Errorf("entry %+v", e)
	}
	if st := p.(dissect.StatsReporter).Stats(); st.Resyncs != 1 || st.Skipped != 100 || st.Entries != 1 {
		t.Errorf("stats %+v", st)
	}
}
