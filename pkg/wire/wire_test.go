package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

func TestMarshalParse(t *testing.T) {
	ts := time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC)
	tests := []struct {
		typ  string
		data any
		into func() any
	}{
		{TypeHello, &Hello{Node: "n1", Worker: "shark-worker-ab", Sources: []string{"af_packet"}}, func() any { return &Hello{} }},
		{TypeEntries, &Entries{Entries: []entry.Entry{{V: 1, ID: "e1", TS: ts, Proto: "http", Src: entry.Endpoint{IP: "10.0.0.1", Port: 3000}}}}, func() any { return &Entries{} }},
		{TypeFilter, &Filter{Expr: `proto == "dns"`}, func() any { return &Filter{} }},
		{TypePcapRequest, &PcapRequest{ID: "x1", Pods: []string{"ns/a"}, From: ts, Flow: &PcapFlow{ID: "f", A: "10.0.0.1:1", B: "10.0.0.2:2"}, Credit: 4}, func() any { return &PcapRequest{} }},
		{TypeTargets, &Targets{Targets: []Target{{UID: "u", Namespace: "ns", Name: "a", IPs: []string{"10.0.0.1"}, Node: "n1"}}, IPMap: IPMap{"10.0.0.1": {Pod: "a", Namespace: "ns"}}}, func() any { return &Targets{} }},
		{TypeStats, &Stats{Node: "n1", Worker: "w", Time: ts, Packets: 7, Sources: 2}, func() any { return &Stats{} }},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			b, err := Marshal(tt.typ, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if env.Type != tt.typ || env.V != Version {
				t.Fatalf("envelope %d %q, want %d %q", env.V, env.Type, Version, tt.typ)
			}
			got := tt.into()
			if err := env.Decode(got); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.data, got); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestMarshalNoData(t *testing.T) {
	b, err := Marshal(TypeHeartbeat, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"v":1,"type":"heartbeat"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	env, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Decode(&Filter{}); err == nil {
		t.Error("Decode of a message without data succeeded")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		version bool
	}{
		{`{"v":2,"type":"hello","data":{}}`, true},
		{`{"type":"hello"}`, true},
		{`{"v":1}`, false},
		{`{"v":1,"type":`, false},
		{`[]`, false},
		{``, false},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in))
		if err == nil {
			t.Errorf("Parse(%q) succeeded", tt.in)
			continue
		}
		if errors.Is(err, ErrVersion) != tt.version {
			t.Errorf("Parse(%q) = %v; version error %v, want %v", tt.in, err, !tt.version, tt.version)
		}
	}
}

func TestPcapChunk(t *testing.T) {
	data := bytes.Repeat([]byte{0xab}, 1000)
	msg := AppendPcapChunk([]byte("keep"), "req-1", data)
	if !bytes.HasPrefix(msg, []byte("keep")) {
		t.Fatal("AppendPcapChunk lost dst")
	}
	id, got, err := ParsePcapChunk(msg[4:])
	if err != nil {
		t.Fatal(err)
	}
	if id != "req-1" || !bytes.Equal(got, data) {
		t.Errorf("got id %q, %d bytes", id, len(got))
	}
	// An empty chunk is valid (a worker may flush nothing).
	if id, got, err := ParsePcapChunk(AppendPcapChunk(nil, "a", nil)); err != nil || id != "a" || len(got) != 0 {
		t.Errorf("empty chunk: %q %d %v", id, len(got), err)
	}

	bad := [][]byte{
		nil,
		{ChunkPcap},
		{2, 1, 'a'},
		{ChunkPcap, 0, 'a'},
		{ChunkPcap, 5, 'a', 'b'},
		{ChunkPcap, MaxIDLen + 1},
		append([]byte{ChunkPcap, 1, 'a'}, make([]byte, MaxPcapChunk+1)...),
	}
	for _, b := range bad {
		if _, _, err := ParsePcapChunk(b); !errors.Is(err, ErrBadChunk) {
			t.Errorf("ParsePcapChunk(% x...) = %v, want ErrBadChunk", b[:min(len(b), 4)], err)
		}
	}
}

func TestAppendPcapChunkPanics(t *testing.T) {
	for _, tc := range []struct {
		id   string
		data int
	}{{"", 1}, {strings.Repeat("x", MaxIDLen+1), 1}, {"a", MaxPcapChunk + 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendPcapChunk(%d-byte id, %d bytes) did not panic", len(tc.id), tc.data)
				}
			}()
			AppendPcapChunk(nil, tc.id, make([]byte, tc.data))
		}()
	}
}

func TestEnrich(t *testing.T) {
	m, bad := IPMap{
		"10.0.0.1":        {Pod: "front-1", Namespace: "shop", Node: "n1", Workload: "front"},
		"::ffff:10.0.0.2": {Pod: "cart-1", Namespace: "shop", Service: "cart"},
		"fd00::0:5":       {Pod: "v6", Namespace: "x"},
		"not-an-ip":       {Pod: "bogus"},
	}.Normalize()
	if bad != 1 {
		t.Errorf("Normalize dropped %d keys, want 1", bad)
	}
	tests := []struct {
		name    string
		in      entry.Entry
		want    entry.Entry
		changed bool
	}{
		{
			name: "both ends",
			in:   entry.Entry{Src: entry.Endpoint{IP: "10.0.0.1", Port: 1}, Dst: entry.Endpoint{IP: "10.0.0.2", Port: 80}},
			want: entry.Entry{
				Src: entry.Endpoint{IP: "10.0.0.1", Port: 1, Pod: "front-1", Namespace: "shop", Node: "n1", Workload: "front"},
				Dst: entry.Endpoint{IP: "10.0.0.2", Port: 80, Pod: "cart-1", Namespace: "shop", Service: "cart"},
			},
			changed: true,
		},
		{
			name:    "capture knowledge wins",
			in:      entry.Entry{Src: entry.Endpoint{IP: "10.0.0.1", Pod: "real", Namespace: "ns"}},
			want:    entry.Entry{Src: entry.Endpoint{IP: "10.0.0.1", Pod: "real", Namespace: "ns", Node: "n1", Workload: "front"}},
			changed: true,
		},
		{
			name:    "ipv6 written long",
			in:      entry.Entry{Dst: entry.Endpoint{IP: "fd00:0::5"}},
			want:    entry.Entry{Dst: entry.Endpoint{IP: "fd00:0::5", Pod: "v6", Namespace: "x"}},
			changed: true,
		},
		{
			name: "unknown",
			in:   entry.Entry{Src: entry.Endpoint{IP: "192.168.1.1"}, Dst: entry.Endpoint{IP: "garbage:"}},
			want: entry.Entry{Src: entry.Endpoint{IP: "192.168.1.1"}, Dst: entry.Endpoint{IP: "garbage:"}},
		},
		{
			name: "already complete",
			in:   entry.Entry{Src: entry.Endpoint{IP: "10.0.0.1", Pod: "front-1", Namespace: "shop", Node: "n1", Workload: "front"}},
			want: entry.Entry{Src: entry.Endpoint{IP: "10.0.0.1", Pod: "front-1", Namespace: "shop", Node: "n1", Workload: "front"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.in
			if changed := Enrich(&e, m); changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			if d := cmp.Diff(tt.want, e); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	if Enrich(&entry.Entry{Src: entry.Endpoint{IP: "10.0.0.1"}}, nil) {
		t.Error("Enrich with no map changed the entry")
	}
}

func TestRequestToken(t *testing.T) {
	tests := []struct {
		name   string
		target string
		header string
		cookie string
		want   string
	}{
		{"bearer", "/v1/pcap", "Bearer abc", "", "abc"},
		{"bearer case", "/v1/pcap", "bearer  abc ", "", "abc"},
		{"other scheme", "/v1/pcap?token=q", "Basic abc", "", ""},
		{"query", "/v1/pcap?token=q", "", "c", "q"},
		{"cookie", "/", "", "c", "c"},
		{"none", "/", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: TokenCookie, Value: tt.cookie})
			}
			if got := RequestToken(r); got != tt.want {
				t.Errorf("RequestToken = %q, want %q", got, tt.want)
			}
		})
	}
	h := http.Header{}
	SetToken(h, "t0k")
	if got := h.Get("Authorization"); got != "Bearer t0k" {
		t.Errorf("SetToken: %q", got)
	}
}

func TestWorkerTLSConfigRejectsGarbage(t *testing.T) {
	if _, err := WorkerTLSConfig([]byte("not a pem")); err == nil {
		t.Error("WorkerTLSConfig accepted garbage")
	}
}

func TestCutData(t *testing.T) {
	if versionText != strconv.Itoa(Version) {
		t.Fatalf("versionText %q, Version %d", versionText, Version)
	}
	msg, err := Marshal(TypeEntries, Entries{Entries: []entry.Entry{{ID: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	data, ok := CutData(msg, TypeEntries)
	var e Entries
	if !ok || json.Unmarshal(data, &e) != nil || len(e.Entries) != 1 || e.Entries[0].ID != "x" {
		t.Fatalf("CutData(%s) = %s, %v", msg, data, ok)
	}
	for _, tc := range []struct {
		msg, typ string
		ok       bool
	}{
		{`{"v":1,"type":"entries","data":{}}`, TypeEntries, true},
		{`{"v":1,"type":"entries","data":{}}`, TypeStats, false},
		{`{"v":2,"type":"entries","data":{}}`, TypeEntries, false},
		{`{"type":"entries","v":1,"data":{}}`, TypeEntries, false},
		{`{"v":1,"type":"entries","data":`, TypeEntries, false},
		{`{"v":1,"type":"entries","data":}`, TypeEntries, false},
		{`{"v":1,"type":"entries"}`, TypeEntries, false},
	} {
		if _, ok := CutData([]byte(tc.msg), tc.typ); ok != tc.ok {
			t.Errorf("CutData(%s, %s) ok = %v", tc.msg, tc.typ, ok)
		}
	}
	// Trailing members make data invalid JSON: the caller falls back.
	data, ok = CutData([]byte(`{"v":1,"type":"entries","data":{"entries":[]},"x":1}`), TypeEntries)
	if !ok || json.Valid(data) {
		t.Errorf("data %s should be cut but invalid", data)
	}
}
