package cli

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// pcapngFile is a real capture of the engine's testdata.
func pcapngFile(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/mixed.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// countBlocks counts the packet blocks of a little-endian pcapng file.
func countBlocks(b []byte) int {
	n := 0
	for len(b) >= 12 {
		typ := binary.LittleEndian.Uint32(b)
		l := int(binary.LittleEndian.Uint32(b[4:]))
		if typ == blockEnhancedPacket || typ == blockSimplePacket {
			n++
		}
		b = b[l:]
	}
	return n
}

func TestCopyPcapngWholeAndLimited(t *testing.T) {
	in := pcapngFile(t)
	want := countBlocks(in)
	var out bytes.Buffer
	n, err := copyPcapng(&out, bytes.NewReader(in), 0)
	if err != nil || n != want || !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("copy: %d packets, err %v, identical %v; want %d packets and the same bytes", n, err, bytes.Equal(out.Bytes(), in), want)
	}
	out.Reset()
	n, err = copyPcapng(&out, bytes.NewReader(in), 7)
	if err != nil || n != 7 || countBlocks(out.Bytes()) != 7 || !bytes.HasPrefix(in, out.Bytes()) {
		t.Fatalf("limit 7: %d packets, err %v, %d in output", n, err, countBlocks(out.Bytes()))
	}
}

func TestCopyPcapngRejectsGarbage(t *testing.T) {
	bad := []byte{6, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0} // length 3
	if _, err := copyPcapng(&bytes.Buffer{}, bytes.NewReader(bad), 0); err == nil {
		t.Error("a block of length 3 was accepted")
	}
	in := pcapngFile(t)
	if _, err := copyPcapng(&bytes.Buffer{}, bytes.NewReader(in[:len(in)-5]), 0); err == nil {
		t.Error("a cut block was accepted")
	}
}

func FuzzCopyPcapng(f *testing.F) {
	in := pcapngFile(f)
	f.Add(in[:min(len(in), 4096)], 0)
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d}, 1)
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		var out bytes.Buffer
		n, _ := copyPcapng(&out, bytes.NewReader(b), limit%100)
		if out.Len() > len(b) || n < 0 {
			t.Fatalf("wrote %d bytes of %d, %d packets", out.Len(), len(b), n)
		}
	})
}
