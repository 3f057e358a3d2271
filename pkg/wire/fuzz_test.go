package wire

import (
	"bytes"
	"testing"
)

// FuzzParsePcapChunk checks the binary chunk parser never panics, returns
// data within bounds that aliases the message, and round-trips.
func FuzzParsePcapChunk(f *testing.F) {
	f.Add(AppendPcapChunk(nil, "0123456789abcdef", []byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0}))
	f.Add(AppendPcapChunk(nil, "a", nil))
	f.Add([]byte{ChunkPcap, 200, 'x'})
	f.Add([]byte{0, 1, 'a', 'b'})
	f.Fuzz(func(t *testing.T, msg []byte) {
		id, data, err := ParsePcapChunk(msg)
		if err != nil {
			return
		}
		if len(id) == 0 || len(id) > MaxIDLen || len(data) > MaxPcapChunk {
			t.Fatalf("out of bounds: id %d bytes, data %d bytes", len(id), len(data))
		}
		if !bytes.Equal(AppendPcapChunk(nil, id, data), msg) {
			t.Fatal("chunk does not round-trip")
		}
	})
}

// FuzzParse checks the envelope parser never panics and that what it
// accepts re-encodes to an envelope it accepts again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"hello","data":{"node":"n1","worker":"w"}}`,
		`{"v":1,"type":"heartbeat"}`,
		`{"v":1,"type":"entries","data":{"entries":[{"v":1,"id":"x","proto":"http"}]}}`,
		`{"v":2,"type":"x"}`,
		`{"v":1,"type":"filter","data":{"expr":"proto == \"dns\""}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		env, err := Parse(msg)
		if err != nil {
			return
		}
		var data any
		if len(env.Data) > 0 {
			data = env.Data
		}
		b, err := Marshal(env.Type, data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(b); err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", b, err)
		}
		var e Entries
		_ = env.Decode(&e)
	})
}
