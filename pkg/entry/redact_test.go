package entry

import "testing"

func TestHeaderValue(t *testing.T) {
	tests := []struct {
		name, value string
		redact      bool
		want        string
	}{
		{"Authorization", "Bearer x", true, Redacted},
		{"cookie", "a=b", true, Redacted},
		{"Set-Cookie", "a=b", true, Redacted},
		{"Proxy-Authorization", "Basic x", true, Redacted},
		{"Authorization", "Bearer x", false, "Bearer x"},
		{"content-type", "text/plain", true, "text/plain"},
	}
	for _, tt := range tests {
		if got := HeaderValue(tt.name, tt.value, tt.redact); got != tt.want {
			t.Errorf("HeaderValue(%q, %q, %v) = %q, want %q", tt.name, tt.value, tt.redact, got, tt.want)
		}
	}
}
