package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// FuzzWriterRoundTrip writes arbitrary packets and interface names as
// pcapng and pcap, and reads them back with pkg/capture.
func FuzzWriterRoundTrip(f *testing.F) {
	f.Add("shop/cart-7d9f", []byte{0x45, 0, 0, 20}, int64(1700000000123456789), 4)
	f.Add("", []byte{}, int64(0), 0)
	f.Add("ns/"+string(make([]byte, 300)), make([]byte, 1500), int64(-1), 1<<20)
	f.Fuzz(func(t *testing.T, name string, data []byte, ns int64, extra int) {
		if len(data) > 1<<16 {
			return
		}
		p := capture.Packet{Timestamp: time.Unix(0, ns).UTC(), Length: len(data) + max(extra, 0)%(1<<16), LinkType: capture.LinkRaw, Data: data}
		for _, format := range []Format{FormatPcapng, FormatPcap} {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, format)
			if err != nil {
				t.Fatal(err)
			}
			id, err := w.AddInterface(capture.Interface{Name: name, LinkType: capture.LinkRaw})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WritePacket(id, &p); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			src, err := capture.NewReader(&buf)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			var got capture.Packet
			if err := src.Next(&got); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if !bytes.Equal(got.Data, data) || got.Length != p.Length {
				t.Fatalf("%s: data %d/%d bytes, want %d/%d", format, len(got.Data), got.Length, len(data), p.Length)
			}
			if format == FormatPcapng {
				if !got.Timestamp.Equal(p.Timestamp) && ns >= 0 {
					t.Fatalf("timestamp %v, want %v", got.Timestamp, p.Timestamp)
				}
				// pkg/capture's reader keeps 128 bytes of a name.
				if in := src.Interfaces()[0]; len(name) <= 128 && in.Name != name && !bytes.ContainsRune([]byte(name), 0) {
					t.Fatalf("name %q, want %q", in.Name, name)
				}
			}
		}
	})
}
