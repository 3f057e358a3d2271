package http1

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// validRequestLine checks a complete request line (without its line end).
// strict is for lines found without context: the method must be a known one
// and the target must hold no space.
func validRequestLine(line []byte, strict bool) bool {
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return false
	}
	if strict {
		if knownMethod(line[:sp1]) == "" {
			return false
		}
	} else if sp1 > 32 || !isToken(line[:sp1]) {
		return false
	}
	for _, c := range line[sp1+1 : sp2] {
		if c < ' ' || c == 0x7f || strict && c == ' ' {
			return false
		}
	}
	m, n := scanVersion(line, sp2+1)
	return m == full && n == len(line)
}

// validStatusLine checks a complete status line (without its line end).
func validStatusLine(line []byte) bool {
	m, n := scanStatusLine(line)
	return m == full && (n == len(line) || line[n] == ' ')
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !isTokenByte(c) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// cutLine splits s at its first LF, dropping the line end (LF or CRLF).
func cutLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return strings.TrimSuffix(s, "\r"), ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// splitRequestLine splits a request line that validRequestLine accepted.
func splitRequestLine(line string) (method, target, version string) {
	sp1 := strings.IndexByte(line, ' ')
	sp2 := strings.LastIndexByte(line, ' ')
	method = line[:sp1]
	if k := knownMethod(method); k != "" {
		method = k // share one string across entries
	}
	return method, line[sp1+1 : sp2], versionOf(line[sp2+1:])
}

// splitStatusLine splits a status line that validStatusLine accepted.
func splitStatusLine(line string) (code int, reason, version string) {
	code = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if len(line) > 13 {
		reason = line[13:]
	}
	return code, reason, versionOf(line[:8])
}

// versionOf turns "HTTP/1.1" into "1.1".
func versionOf(v string) string {
	switch v {
	case "HTTP/1.1":
		return "1.1"
	case "HTTP/1.0":
		return "1.0"
	}
	return v[len("HTTP/"):]
}

// statusTexts holds "100" to "599", so that entries share them.
var statusTexts = func() (t [500]string) {
	for i := range t {
		t[i] = strconv.Itoa(100 + i)
	}
	return t
}()

func statusText(code int) string {
	if code >= 100 && code < 600 {
		return statusTexts[code-100]
	}
	return strconv.Itoa(code)
}

// framing is what a head says about the message body and the connection.
type framing struct {
	length    int64 // Content-Length; -1 when absent
	badLength bool  // Content-Length unparsable or contradictory
	te        bool  // Transfer-Encoding present
	chunked   bool  // ... and chunked is its final coding
	coding    string
	upgrade   string
	host      string
}

// parseHeaders reads header lines (each ending in LF or CRLF) into m, when m
// is not nil, and returns the framing they describe. Names are lower-cased,
// repeated headers joined with ", ", secrets redacted. Malformed lines are
// skipped: a capture shows what was sent, it does not judge it.
func parseHeaders(s string, m map[string]string, redact bool) framing {
	f := framing{length: -1}
	prev := ""
	var seen uint64 // a Bloom filter of the names stored: most are not repeated
	for len(s) > 0 {
		var line string
		line, s = cutLine(s)
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' { // obsolete line folding
			if m != nil && prev != "" && m[prev] != entry.Redacted {
				m[prev] += " " + trimOWS(line)
			}
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name, secret := headerName(line[:colon])
		value := trimOWS(line[colon+1:])
		f.add(name, value)
		if m == nil {
			continue
		}
		prev = name
		if secret {
			value = entry.HeaderValue(name, value, redact)
		}
		bit := uint64(1) << ((len(name)*7 + int(name[len(name)-1])) & 63)
		if seen&bit != 0 {
			if old, ok := m[name]; ok && value != entry.Redacted {
				value = old + ", " + value
			}
		}
		seen |= bit
		m[name] = value
	}
	return f
}

// add records what one header says about framing.
func (f *framing) add(name, value string) {
	switch name {
	case "content-length":
		n, ok := parseLength(value)
		if !ok || f.length >= 0 && f.length != n {
			f.badLength = true
		}
		f.length = n
	case "transfer-encoding":
		f.te = true
		last := value
		if i := strings.LastIndexByte(value, ','); i >= 0 {
			last = value[i+1:]
		}
		f.chunked = strings.EqualFold(trimOWS(last), "chunked")
	case "content-encoding":
		f.coding = contentCoding(value)
	case "upgrade":
		f.upgrade = value
	case "host":
		f.host = value
	}
}

// parseLength parses a Content-Length value, accepting a list of identical
// values ("5, 5") as some proxies send.
func parseLength(v string) (int64, bool) {
	n := int64(-1)
	for v != "" {
		item := v
		if i := strings.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		item = trimOWS(item)
		if item == "" || len(item) > 18 {
			return -1, false
		}
		var x int64
		for i := 0; i < len(item); i++ {
			if !isDigit(item[i]) {
				return -1, false
			}
			x = x*10 + int64(item[i]-'0')
		}
		if n >= 0 && x != n {
			return -1, false
		}
		n = x
	}
	return n, n >= 0
}

// contentCoding names a content coding the parser can remove, or "".
func contentCoding(v string) string {
	switch {
	case strings.EqualFold(v, "gzip"), strings.EqualFold(v, "x-gzip"):
		return "gzip"
	case strings.EqualFold(v, "deflate"):
		return "deflate"
	}
	return ""
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// headerName lower-cases a header name. Common names come from a table and
// names already in lower case are returned as they are, so that most
// headers cost no allocation. secret is false only for names known not to
// carry credentials (entry.SecretHeader decides for the others).
func headerName(raw string) (name string, secret bool) {
	raw = trimOWS(raw)
	var buf [64]byte
	if len(raw) > len(buf) {
		return strings.ToLower(raw), true
	}
	lower := true
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			lower = false
		}
		buf[i] = c
	}
	if h := lookupCommon(buf[:len(raw)]); h != nil {
		return h.name, h.secret
	}
	if lower {
		return raw, true
	}
	return string(buf[:len(raw)]), true
}

type commonHeader struct {
	name   string
	secret bool
}

// commonHeaders is an open-addressing table of common header names, faster
// than a map for this one lookup per header line.
const commonSize = 512

var commonHeaders = func() (t [commonSize]commonHeader) {
	names := []string{
		"accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
		"access-control-allow-credentials", "access-control-allow-headers",
		"access-control-allow-methods", "access-control-allow-origin",
		"access-control-expose-headers", "access-control-max-age",
		"access-control-request-headers", "access-control-request-method",
		"age", "allow", "alt-svc", "authorization", "cache-control", "connection",
		"content-disposition", "content-encoding", "content-language", "content-length",
		"content-location", "content-range", "content-security-policy", "content-type",
		"cookie", "date", "dnt", "etag", "expect", "expires", "forwarded", "host",
		"http2-settings", "if-match", "if-modified-since", "if-none-match", "if-range",
		"if-unmodified-since", "keep-alive", "last-modified", "link", "location",
		"max-forwards", "origin", "pragma", "proxy-authenticate", "proxy-authorization",
		"proxy-connection", "range", "referer", "retry-after",
		"sec-fetch-dest", "sec-fetch-mode", "sec-fetch-site", "sec-fetch-user",
		"sec-websocket-accept", "sec-websocket-extensions", "sec-websocket-key",
		"sec-websocket-protocol", "sec-websocket-version", "server", "set-cookie",
		"strict-transport-security", "te", "trailer", "traceparent", "tracestate",
		"transfer-encoding", "upgrade", "upgrade-insecure-requests", "user-agent", "vary",
		"via", "www-authenticate", "x-api-key", "x-auth-token", "x-b3-parentspanid",
		"x-b3-sampled", "x-b3-spanid", "x-b3-traceid", "x-content-type-options",
		"x-correlation-id", "x-envoy-attempt-count", "x-envoy-expected-rq-timeout-ms",
		"x-envoy-upstream-service-time", "x-forwarded-for", "x-forwarded-host",
		"x-forwarded-port", "x-forwarded-proto", "x-frame-options", "x-powered-by",
		"x-real-ip", "x-request-id", "x-requested-with", "x-xss-protection",
	}
	for _, n := range names {
		i := commonSlot(n)
		for t[i].name != "" {
			i = (i + 1) % commonSize
		}
		t[i] = commonHeader{name: n, secret: entry.SecretHeader(n)}
	}
	return t
}()

func commonSlot[T string | []byte](name T) int {
	n := len(name)
	return (n*31 + int(name[0])*7 + int(name[n/2])*3 + int(name[n-1])) % commonSize
}

// lookupCommon finds a lower-case name in commonHeaders.
func lookupCommon(name []byte) *commonHeader {
	if len(name) == 0 {
		return nil
	}
	for i := commonSlot(name); commonHeaders[i].name != ""; i = (i + 1) % commonSize {
		if commonHeaders[i].name == string(name) {
			return &commonHeaders[i]
		}
	}
	return nil
}
