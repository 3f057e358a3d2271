package http1

import (
	"bytes"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

// detectWindow is how far into mid-stream data Detect looks for a start line.
const detectWindow = 4 << 10

// methods are the request methods recognised when looking for a request line
// without context (detection, resynchronisation). Once in sync, any token is
// accepted as a method.
var methods = [...]string{
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
	"QUERY", "PURGE", "LINK", "UNLINK",
	// WebDAV, CalDAV and friends.
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH",
	"REPORT", "MKCALENDAR", "MKACTIVITY", "CHECKOUT", "MERGE", "ACL", "BIND",
	"UNBIND", "REBIND", "VERSION-CONTROL", "BASELINE-CONTROL", "MKWORKSPACE",
	"UPDATE", "LABEL", "ORDERPATCH",
	// UPnP.
	"M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
}

const maxMethod = 16 // longest entry of methods

// knownMethod returns the canonical string of a known method, without
// allocating, or "" when m is not one.
func knownMethod[T string | []byte](m T) string {
	for _, k := range methods {
		if string(m) == k {
			return k
		}
	}
	return ""
}

// methodPrefix reports whether b could still grow into a known method.
func methodPrefix(b []byte) bool {
	for _, k := range methods {
		if strings.HasPrefix(k, string(b)) {
			return true
		}
	}
	return false
}

// match says how much of a start line some bytes showed.
type match uint8

const (
	noMatch match = iota
	partial       // consistent so far; the bytes end too early to tell
	full          // matched up to the end of the version (request) or code (status)
)

// scanRequestLine matches the start of b against "METHOD SP target SP
// HTTP/1.d" with a known method. On full it returns the index just past the
// version digit.
func scanRequestLine(b []byte) (match, int) {
	sp := bytes.IndexByte(b[:min(len(b), maxMethod+1)], ' ')
	if sp < 0 {
		if len(b) <= maxMethod && methodPrefix(b) {
			return partial, 0
		}
		return noMatch, 0
	}
	if knownMethod(b[:sp]) == "" {
		return noMatch, 0
	}
	i := sp + 1
	for ; i < len(b) && b[i] != ' '; i++ {
		if b[i] < ' ' || b[i] == 0x7f || i-sp > maxStartLine {
			return noMatch, 0
		}
	}
	switch {
	case i == len(b):
		return partial, 0
	case i == sp+1:
		return noMatch, 0 // empty target
	}
	return scanVersion(b, i+1)
}

// scanVersion matches "HTTP/1.d" at b[i:].
func scanVersion(b []byte, i int) (match, int) {
	const v = "HTTP/1."
	for j := 0; j < len(v); j++ {
		if i+j >= len(b) {
			return partial, 0
		}
		if b[i+j] != v[j] {
			return noMatch, 0
		}
	}
	i += len(v)
	switch {
	case i >= len(b):
		return partial, 0
	case !isDigit(b[i]):
		return noMatch, 0
	}
	return full, i + 1
}

// scanStatusLine matches the start of b against "HTTP/1.d SP ddd". On full
// it returns the index just past the status code.
func scanStatusLine(b []byte) (match, int) {
	m, i := scanVersion(b, 0)
	if m != full {
		return m, 0
	}
	for j := 0; j < 4; j++ {
		switch {
		case i+j >= len(b):
			return partial, 0
		case j == 0 && b[i] != ' ', j > 0 && !isDigit(b[i+j]):
			return noMatch, 0
		}
	}
	return full, i + 4
}

// lineEnd reports what follows a fully matched start line at b[i:]: the end
// of the line (full), too few bytes (partial), or anything else (noMatch).
// rest says whether a space and more text (a reason phrase) may follow.
func lineEnd(b []byte, i int, rest bool) match {
	switch {
	case i == len(b):
		return partial
	case b[i] == '\n', rest && b[i] == ' ':
		return full
	case b[i] != '\r':
		return noMatch
	case i+1 == len(b):
		return partial
	case b[i+1] == '\n':
		return full
	}
	return noMatch
}

// startLine says whether b begins with a request line (fromClient) or a
// status line; partial when b is a prefix of one. A start line complete up
// to its version (request) or code (status) is full even before its line
// end arrives.
func startLine(b []byte) (m match, fromClient bool) {
	if m, i := scanRequestLine(b); m == partial || m == full && lineEnd(b, i, false) != noMatch {
		return m, true
	}
	m, i := scanStatusLine(b)
	if m == full && lineEnd(b, i, true) == noMatch {
		m = noMatch
	}
	return m, false
}

// Detect recognises HTTP/1: a request line of a known method (sent by the
// client) or a status line (sent by the server) at the start of data, or,
// for a capture that began mid-connection, after a CRLF in the first few
// KiB. The HTTP/2 preface ("PRI * HTTP/2.0") is not HTTP/1.
func Detect(data []byte) (dissect.Verdict, bool) {
	if m, fromClient := startLine(data); m != noMatch {
		return verdict(m), fromClient
	}
	maybe, maybeClient := false, false
	win := data[:min(len(data), detectWindow)]
	for off := 0; ; {
		i := bytes.Index(win[off:], crlf)
		if i < 0 {
			break
		}
		if off += i + 2; off == len(data) {
			break
		}
		m, fromClient := startLine(data[off:])
		if m == full {
			return dissect.Yes, fromClient
		}
		if m == partial && !maybe {
			maybe, maybeClient = true, fromClient
		}
	}
	if maybe {
		return dissect.Maybe, maybeClient
	}
	return dissect.No, false
}

var crlf = []byte("\r\n")

func verdict(m match) dissect.Verdict {
	switch m {
	case full:
		return dissect.Yes
	case partial:
		return dissect.Maybe
	}
	return dissect.No
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
