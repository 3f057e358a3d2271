package http1

import (
	"strings"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		want       dissect.Verdict
		fromClient bool
	}{
		{"GET", "GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", dissect.Yes, true},
		{"POST without line end yet", "POST /x HTTP/1.0", dissect.Yes, true},
		{"PROPFIND", "PROPFIND /dav/ HTTP/1.1\r\n", dissect.Yes, true},
		{"M-SEARCH", "M-SEARCH * HTTP/1.1\r\n", dissect.Yes, true},
		{"CONNECT", "CONNECT host:443 HTTP/1.1\r\n", dissect.Yes, true},
		{"status", "HTTP/1.1 200 OK\r\n", dissect.Yes, false},
		{"status 1.0", "HTTP/1.0 404 Not Found\r\n", dissect.Yes, false},
		{"status without reason", "HTTP/1.1 204\r\n", dissect.Yes, false},
		{"too short", "GE", dissect.Maybe, true},
		{"method only", "DELETE", dissect.Maybe, true},
		{"target unfinished", "GET /very/long/pa", dissect.Maybe, true},
		{"version unfinished", "GET / HTTP/1", dissect.Maybe, true},
		{"status unfinished", "HTTP/1.1 2", dissect.Maybe, false},
		{"H", "H", dissect.Maybe, true},
		{"empty", "", dissect.Maybe, true},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", dissect.No, false},
		{"PRI", "PRI", dissect.No, false},
		{"HTTP/2 version", "GET / HTTP/2.0\r\n", dissect.No, false},
		{"unknown method", "FETCH / HTTP/1.1\r\n", dissect.No, false},
		{"lower case method", "get / HTTP/1.1\r\n", dissect.No, false},
		{"no target", "GET  HTTP/1.1\r\n", dissect.No, false},
		{"junk after version", "GET / HTTP/1.1x\r\n", dissect.No, false},
		{"status letters", "HTTP/1.1 2xx OK\r\n", dissect.No, false},
		{"TLS", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", dissect.No, false},
		{"redis", "*1\r\n$4\r\nPING\r\n", dissect.No, false},
		{"mid-stream request", "rest of a body\r\nGET /next HTTP/1.1\r\nHost: a\r\n", dissect.Yes, true},
		{"mid-stream response", "0\r\n\r\nHTTP/1.1 200 OK\r\n", dissect.Yes, false},
		{"mid-stream partial", "body bytes\r\nGET /nex", dissect.Maybe, true},
		{"mid-stream nothing", "just some text\r\nwith lines\r\n", dissect.No, false},
		{"mid-stream beyond window", strings.Repeat("x", detectWindow) + "\r\nGET / HTTP/1.1\r\n", dissect.No, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, fromClient := Detect([]byte(tt.data))
			if v != tt.want || v != dissect.No && fromClient != tt.fromClient {
				t.Errorf("Detect(%q) = %v, %v; want %v, %v", tt.data, v, fromClient, tt.want, tt.fromClient)
			}
		})
	}
}

func TestProtocol(t *testing.T) {
	p := Protocol()
	if p.Name != "http" || !p.HasPort(80) || !p.HasPort(8080) || p.NewStream == nil || p.Detect == nil {
		t.Errorf("Protocol() = %+v", p)
	}
}
