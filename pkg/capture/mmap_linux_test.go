package capture

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A mapped file gives its memory back while it is read, a batch at a time
// behind the oldest window still held, and is unmapped once read to the
// end with nothing held.
func TestMappedFileGivesMemoryBack(t *testing.T) {
	src, n := openFlat(t)
	defer src.Close()
	seg := src.(*pcapReader).s.br.m.seg
	var p Packet
	var held *Region
	for i := 0; ; i++ {
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == n/4 {
			// A packet kept by a consumer holds everything after it.
			held = src.(Holder).Held()
			held.Retain()
		}
	}
	seg.mu.Lock()
	dropped, unmapped := seg.dropped, seg.unmapped
	seg.mu.Unlock()
	if dropped != 0 || unmapped {
		t.Fatalf("with a window held from a quarter in, %d bytes were given back (unmapped %v), want none", dropped, unmapped)
	}
	held.Release()
	seg.mu.Lock()
	unmapped = seg.unmapped
	seg.mu.Unlock()
	if !unmapped {
		t.Error("the file read to its end with nothing held is still mapped")
	}
}

// Without a window held, memory goes back while reading: at most a batch
// and a window stay paged in behind the reader.
func TestMappedFileDropsBehind(t *testing.T) {
	src, n := openFlat(t)
	defer src.Close()
	seg := src.(*pcapReader).s.br.m.seg
	var p Packet
	for i := range n - 1 {
		if err := src.Next(&p); err != nil {
			t.Fatal(err)
		}
		seg.mu.Lock()
		dropped := seg.dropped
		seg.mu.Unlock()
		at := pcapFileHeaderLen + i*(pcapRecordLen+8000)
		if at-dropped > dropBatch+2*windowSize {
			t.Fatalf("at offset %d, only %d bytes were given back", at, dropped)
		}
	}
}

// openFlat maps a capture of three drop batches of 8,000-byte packets,
// and returns it with its packet count.
func openFlat(t *testing.T) (Source, int) {
	var pkts []testPacket
	ts := time.Unix(1700000000, 0)
	for size := 0; size < 3*dropBatch; size += pcapRecordLen + 8000 {
		pkts = append(pkts, testPacket{ts: ts, data: make([]byte, 8000)})
	}
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, writePcap(t, LinkEthernet, false, pkts), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return src, len(pkts)
}
