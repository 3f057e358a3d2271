package main

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppendCommand(t *testing.T) {
	got := string(appendCommand(nil, []string{"HINCRBY", "cart:user-1", "sku-1", "2"}))
	want := "*4\r\n$7\r\nHINCRBY\r\n$11\r\ncart:user-1\r\n$5\r\nsku-1\r\n$1\r\n2\r\n"
	if got != want {
		t.Errorf("appendCommand = %q, want %q", got, want)
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    any
		wantErr string
	}{
		{"simple string", "+PONG\r\n", "PONG", ""},
		{"integer", ":42\r\n", int64(42), ""},
		{"negative integer", ":-3\r\n", int64(-3), ""},
		{"bulk", "$5\r\nsku-1\r\n", "sku-1", ""},
		{"empty bulk", "$0\r\n\r\n", "", ""},
		{"nil bulk", "$-1\r\n", nil, "redis: nil"},
		{"array of bulks", "*4\r\n$5\r\nsku-1\r\n$1\r\n2\r\n$6\r\nsku-42\r\n$1\r\n1\r\n", []any{"sku-1", "2", "sku-42", "1"}, ""},
		{"empty array", "*0\r\n", []any{}, ""},
		{"nil element", "*2\r\n$-1\r\n:1\r\n", []any{nil, int64(1)}, ""},
		{"nested", "*1\r\n*1\r\n+OK\r\n", []any{[]any{"OK"}}, ""},
		{"error reply", "-WRONGTYPE Operation against a key\r\n", nil, "redis: WRONGTYPE Operation against a key"},
		{"bulk too long", "$2000000\r\n", nil, "redis: bulk length 2000000 out of range"},
		{"array too long", "*20000\r\n", nil, "redis: array length 20000 out of range"},
		{"negative bulk", "$-7\r\n", nil, "redis: bulk length -7 out of range"},
		{"too deep", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", nil, "redis: reply nested too deep"},
		{"no CRLF", "+OK\n", nil, "redis: reply line without CRLF"},
		{"unknown type", "!oops\r\n", nil, `redis: unknown reply type '!'`},
		{"truncated bulk", "$5\r\nab", nil, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readReply(bufio.NewReader(strings.NewReader(tt.in)), 0)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("readReply(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readReply(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("readReply(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestReadReplyLongLine(t *testing.T) {
	in := "+" + strings.Repeat("x", respMaxLine+10) + "\r\n"
	_, err := readReply(bufio.NewReaderSize(strings.NewReader(in), respMaxLine), 0)
	if err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("a %d-byte line: error = %v, want too long", len(in), err)
	}
}

// FuzzReadReply: no input panics the reply parser, and what it returns stays
// within the caps whatever the server sends.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", ":1\r\n", "$5\r\nhello\r\n", "$-1\r\n", "*-1\r\n",
		"*2\r\n$3\r\nfoo\r\n:7\r\n", "-ERR unknown command\r\n",
		"*3\r\n*1\r\n+a\r\n$0\r\n\r\n:-1\r\n", "$99999999999999999999\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(strings.NewReader(string(data)), 4096)
		v, err := readReply(r, 0)
		var rerr redisError
		if err != nil && !errors.As(err, &rerr) && v != nil {
			t.Fatalf("a failed read returned a value: %#v", v)
		}
		if n := replySize(v); n > len(data) {
			t.Fatalf("reply of %d bytes decoded from %d bytes of input", n, len(data))
		}
	})
}

// replySize is how many bytes of strings a reply holds.
func replySize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []any:
		n := 0
		for _, e := range v {
			n += replySize(e)
		}
		return n
	}
	return 0
}
