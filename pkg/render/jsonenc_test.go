package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// Strings chosen to exercise every escaping rule of encoding/json.
var trickyStrings = []string{
	"", "a", "GET", "/api/v1/items?id=1&x=<y>", `quote " and \ backslash`,
	"tab\tnl\ncr\rbs\bff\f", "\x00\x01\x1f\x7f", "héllo wörld ✓", "\u2028\u2029",
	"bad \xff\xfe utf8", "trunc \xe2\x82", "emoji 😀", "\xed\xa0\x80 surrogate", "</script>",
}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return trickyStrings[r.IntN(len(trickyStrings))]
	}
	b := make([]byte, r.IntN(24))
	for i := range b {
		switch r.IntN(4) {
		case 0:
			b[i] = byte(r.IntN(256))
		default:
			b[i] = byte(' ' + r.IntN(95))
		}
	}
	return string(b)
}

// fill sets every field of v at random, by reflection, so that a field
// added to pkg/entry is covered without changing this test.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	if v.Type() == reflect.TypeOf(time.Time{}) {
		ns := r.Int64N(int64(50 * 365 * 24 * time.Hour))
		if r.IntN(4) == 0 {
			ns -= ns % int64(time.Second) // whole seconds: no fraction written
		}
		t := time.Unix(0, ns+int64(1_000_000_000)*1_600_000_000)
		if r.IntN(2) == 0 {
			t = t.In(time.FixedZone("x", 3600*(r.IntN(25)-12)))
		} else {
			t = t.UTC()
		}
		v.Set(reflect.ValueOf(t))
		return
	}
	zero := r.IntN(4) == 0 // zero values exercise omitempty
	switch v.Kind() {
	case reflect.String:
		if !zero {
			v.SetString(randString(r))
		}
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !zero {
			bits := v.Type().Bits()
			v.SetInt(r.Int64() >> (64 - bits))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !zero {
			v.SetUint(r.Uint64() >> (64 - v.Type().Bits()))
		}
	case reflect.Pointer:
		if depth < 4 && !zero {
			p := reflect.New(v.Type().Elem())
			fill(r, p.Elem(), depth+1)
			v.Set(p)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(r, v.Field(i), depth)
		}
	case reflect.Slice:
		if zero {
			if r.IntN(2) == 0 {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0)) // empty, not nil
			}
			return
		}
		s := reflect.MakeSlice(v.Type(), 1+r.IntN(3), 3)
		for i := 0; i < s.Len(); i++ {
			fill(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if zero {
			if r.IntN(2) == 0 {
				v.Set(reflect.MakeMap(v.Type()))
			}
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := r.IntN(40); i >= 0; i-- { // past 16 keys: the heap path
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(r, k, depth+1)
			fill(r, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func randEntry(r *rand.Rand) *entry.Entry {
	e := new(entry.Entry)
	fill(r, reflect.ValueOf(e).Elem(), 0)
	return e
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := 0; i < n; i++ {
		e := randEntry(r)
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got := AppendJSON(nil, e)
		if !bytes.Equal(got, want) {
			t.Fatalf("entry %d differs:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestAppendJSONZeroAndNil(t *testing.T) {
	for _, e := range []*entry.Entry{{}, {TLSInfo: &entry.TLSInfo{}, AMQP: &entry.AMQP{}, HTTP: &entry.HTTP{
		Request: &entry.HTTPRequest{Headers: map[string]string{}}, Response: &entry.HTTPResponse{}}}} {
		want, _ := json.Marshal(e)
		if got := AppendJSON(nil, e); !bytes.Equal(got, want) {
			t.Errorf("got %s\nwant %s", got, want)
		}
	}
	if got := AppendJSON([]byte("x"), nil); string(got) != "xnull" {
		t.Errorf("nil entry: %s", got)
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, a, b string, n int64) {
		e := &entry.Entry{ID: a, Path: b, ElapsedUS: n, TS: time.Unix(0, n).UTC(),
			HTTP: &entry.HTTP{Request: &entry.HTTPRequest{Headers: map[string]string{a: b, b: a}, Body: entry.Body{Data: a + b}}},
			DNS:  &entry.DNS{Answers: []entry.DNSRecord{{Name: a, Data: b}}},
		}
		if y := e.TS.Year(); y < 0 || y > 9999 {
			return // encoding/json refuses these
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSON(nil, e); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}

// benchEntry is a typical HTTP entry with a few headers and a small body.
func benchEntry() *entry.Entry {
	return &entry.Entry{
		V: 1, ID: "01J8Z3Q4K5", TS: time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC), ElapsedUS: 1834,
		Proto: "http", Method: "GET", Path: "/api/v1/cart/items?user=42", Status: "200",
		Src:  entry.Endpoint{IP: "10.244.1.17", Port: 51234, Pod: "frontend-7d9c8b5f6-x2x9k", Namespace: "shop", Node: "node-1", Workload: "frontend"},
		Dst:  entry.Endpoint{IP: "10.244.2.9", Port: 8080, Pod: "cart-5f6d7c8b9-abcde", Namespace: "shop", Node: "node-2", Service: "cart", Workload: "cart"},
		Size: entry.Size{Request: 412, Response: 1893}, Source: "af_packet", Node: "node-1", Worker: "shark-worker-abc", FlowID: "tcp-10.244.1.17:51234-10.244.2.9:8080",
		HTTP: &entry.HTTP{Version: "1.1",
			Request: &entry.HTTPRequest{Method: "GET", Target: "/api/v1/cart/items?user=42", Authority: "cart:8080",
				Headers: map[string]string{"accept": "application/json", "user-agent": "Go-http-client/1.1", "x-request-id": "5f1c0e2a-9b7d", "authorization": "[redacted]"}},
			Response: &entry.HTTPResponse{Status: 200, Reason: "OK",
				Headers: map[string]string{"content-type": "application/json; charset=utf-8", "content-length": "1702", "date": "Sat, 01 Mar 2025 12:00:00 GMT"},
				Body:    entry.Body{Size: 1702, Data: `{"items":[{"id":1,"name":"socks","qty":2},{"id":7,"name":"shoes & laces","qty":1}],"total":"59.90"}`}},
		},
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	e := benchEntry()
	buf := AppendJSON(nil, e)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], e)
	}
}

func BenchmarkEncodingJSON(b *testing.B) {
	e := benchEntry()
	buf, _ := json.Marshal(e)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		json.Marshal(e)
	}
}

// TestAppendTime: the UTC fast path writes what time.Time.MarshalJSON
// does, for every length of fraction and at the edges of the year range.
func TestAppendTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{
		time.Date(2026, 11, 21, 14, 23, 9, 342454000, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1999, 9, 9, 9, 9, 9, 100000000, time.UTC),
		time.Date(2025, 3, 1, 12, 0, 0, 1, time.UTC),
		time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600)),
		time.Unix(1700000000, 5).Local(),
		{},
	}
	for range 20000 {
		times = append(times, time.Unix(r.Int64N(253402300799), r.Int64N(1e9)).UTC())
		times = append(times, time.Unix(r.Int64N(4e9), r.Int64N(1e6)*1000).UTC())
	}
	for _, tm := range times {
		want, err := tm.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTime(nil, tm); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
	}
}

// BenchmarkAppendString writes a body-sized string of JSON lines, with a
// quote every few bytes, as captured bodies are.
func BenchmarkAppendString(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 400; i++ {
		fmt.Fprintf(&sb, "{\"seq\":%d,\"event\":\"tick\"}\n", i)
	}
	s := sb.String()
	buf := appendString(nil, s)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendString(buf[:0], s)
	}
}

// TestAppendStringEveryByte puts each byte value (and a two-byte rune,
// U+2028, an invalid sequence) at every position of strings that span one
// to three 8-byte words, after and before other specials: the word-wise
// scan must stop exactly where the byte-wise one would.
func TestAppendStringEveryByte(t *testing.T) {
	var inserts []string
	for b := range 256 {
		inserts = append(inserts, string([]byte{byte(b)}))
	}
	inserts = append(inserts, "é", "\u2028", "\xe2\x80", "\x01\x7f<")
	for _, fill := range []string{"abcdefgh", `a"b\c<&>`, "\x00\x1f\x20\x80"} {
		for n := 0; n <= 40; n++ {
			base := strings.Repeat(fill, 16)[:n]
			for pos := 0; pos <= n; pos++ {
				for _, ins := range inserts {
					s := base[:pos] + ins + base[pos:]
					want, _ := json.Marshal(s)
					if got := appendString(nil, s); !bytes.Equal(got, want) {
						t.Fatalf("%q: got %s, want %s", s, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkAppendStringText writes plain text lines, as the bench
// capture's downloads are: long runs with nothing to escape.
func BenchmarkAppendStringText(b *testing.B) {
	s := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n", 64)
	buf := appendString(nil, s)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = appendString(buf[:0], s)
	}
}

// BenchmarkAppendStringShort writes header-sized values.
func BenchmarkAppendStringShort(b *testing.B) {
	vals := []string{"application/json; charset=utf-8", "1702", "Sat, 01 Mar 2025 12:00:00 GMT", "keep-alive", "10.244.1.17"}
	var buf []byte
	for b.Loop() {
		buf = buf[:0]
		for _, v := range vals {
			buf = appendString(buf, v)
		}
	}
}

// BenchmarkAppendJSONGolden renders the entries of the recorded captures'
// golden outputs: real header sets, bodies and endpoints.
func BenchmarkAppendJSONGolden(b *testing.B) {
	var entries []*entry.Entry
	size := 0
	for _, name := range []string{"http1.pcap.json", "h2c.pcapng.json", "grpc.pcap.json", "dns.pcap.json", "mixed.pcapng.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", name))
		if err != nil {
			b.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			e := new(entry.Entry)
			if err := json.Unmarshal(line, e); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			entries = append(entries, e)
			size += len(line) - 1
		}
	}
	var buf []byte
	b.SetBytes(int64(size))
	b.ReportMetric(float64(len(entries)), "entries")
	for b.Loop() {
		for _, e := range entries {
			buf = AppendJSON(buf[:0], e)
		}
	}
}
