package entry

import "strings"

// Redacted replaces a secret value in every output.
const Redacted = "[redacted]"

// SecretHeader reports whether an HTTP header (any case) carries credentials
// whose value is redacted by default.
func SecretHeader(name string) bool {
	switch strings.ToLower(name) {
	case "authorization", "proxy-authorization", "cookie", "set-cookie",
		"x-api-key", "x-auth-token", "x-amz-security-token":
		return true
	}
	return false
}

// HeaderValue returns value, or Redacted when redact is set and the header
// carries credentials. Parsers call it where the entry is made, so a secret
// never leaves the node that captured it.
func HeaderValue(name, value string, redact bool) string {
	if redact && SecretHeader(name) {
		return Redacted
	}
	return value
}
