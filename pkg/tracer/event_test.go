package tracer

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleEvents() []Event {
	comm := [16]byte{}
	copy(comm[:], "curl")
	return []Event{
		{
			Mono: 123456789, CgroupID: 42, Conn: 0x7f00deadbeef, PID: 1000, TID: 1001, FD: 5, Netns: 4026531840,
			Len: 78, Offset: 0, Dir: Sent, Lib: OpenSSL, Comm: comm,
			Local:  netip.MustParseAddrPort("10.0.0.1:51000"),
			Remote: netip.MustParseAddrPort("10.0.0.2:443"),
			Data:   []byte("GET /hello HTTP/1.1\r\nHost: example\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"),
		},
		{
			Mono: 9, PID: 7, TID: 8, FD: -1, Len: 40000, Offset: 16384, Dir: Received, Lib: GoTLS, Truncated: false,
			Data: make([]byte, 16384),
		},
		{
			PID: 1, TID: 1, FD: 3, Len: 5, Dir: Received, Lib: GoTLS,
			Local:  netip.MustParseAddrPort("[fd00::1]:8443"),
			Remote: netip.MustParseAddrPort("[fd00::2]:40000"),
			Data:   []byte("hello"),
		},
		{PID: 1, TID: 1, FD: 3, Len: 100000, Offset: 49152, Truncated: true, Data: []byte("x")},
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for _, want := range sampleEvents() {
		b := want.AppendEncode(nil)
		var got Event
		if err := got.Decode(b); err != nil {
			t.Fatalf("Decode(%s): %v", want.Command(), err)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := sampleEvents()[0].AppendEncode(nil)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShortEvent},
		{"header cut", good[:HeaderSize-1], ErrShortEvent},
		{"data cut", good[:len(good)-1], ErrBadEvent},
		{"data_len over MaxData", mutate(func(b []byte) []byte { b[48], b[49] = 0xff, 0xff; return b }), ErrBadEvent},
		{"bad direction", mutate(func(b []byte) []byte { b[50] = 7; return b }), ErrBadEvent},
		{"bad family", mutate(func(b []byte) []byte { b[52] = 99; return b }), ErrBadEvent},
		{"data past len", mutate(func(b []byte) []byte { b[40], b[41] = 1, 0; return b }), ErrBadEvent},
	} {
		var e Event
		if err := e.Decode(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: Decode = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestLast(t *testing.T) {
	for _, tc := range []struct {
		len, off, n uint32
		want        bool
	}{
		{100, 0, 100, true},
		{20000, 0, 16384, false},
		{20000, 16384, 3616, true},
		{100000, 49152, 16384, true}, // truncated: the fourth chunk is the last
	} {
		e := Event{Len: tc.len, Offset: tc.off, Data: make([]byte, tc.n)}
		if got := e.Last(); got != tc.want {
			t.Errorf("Last(len %d off %d n %d) = %v", tc.len, tc.off, tc.n, got)
		}
	}
}

// FuzzDecode: no input panics, and Data never exceeds MaxData nor leaves
// the record.
func FuzzDecode(f *testing.F) {
	for _, e := range sampleEvents() {
		f.Add(e.AppendEncode(nil))
	}
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if err := e.Decode(b); err != nil {
			return
		}
		if len(e.Data) > MaxData || HeaderSize+len(e.Data) > len(b) {
			t.Fatalf("data of %d bytes from a %d-byte record", len(e.Data), len(b))
		}
		if uint64(e.Offset)+uint64(len(e.Data)) > uint64(e.Len) {
			t.Fatalf("data past the call's length")
		}
		// What decodes encodes back to the same event.
		var again Event
		if err := again.Decode(e.AppendEncode(nil)); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.PID != e.PID || again.Local != e.Local || string(again.Data) != string(e.Data) {
			t.Fatalf("re-decode differs: %+v vs %+v", again, e)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	rec := sampleEvents()[0].AppendEncode(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	var e Event
	for b.Loop() {
		if err := e.Decode(rec); err != nil {
			b.Fatal(err)
		}
	}
}
