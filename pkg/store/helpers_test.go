package store

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// rawPacket is a LINKTYPE_RAW IPv4 (or IPv6) TCP or UDP packet of payload
// bytes between two ends.
func rawPacket(proto uint8, src, dst netip.AddrPort, flags uint8, payload int) []byte {
	l4len := 20
	if proto == capture.IPProtoUDP {
		l4len = 8
	}
	l4 := make([]byte, l4len+payload)
	binary.BigEndian.PutUint16(l4[0:], src.Port())
	binary.BigEndian.PutUint16(l4[2:], dst.Port())
	if proto == capture.IPProtoTCP {
		l4[12] = 5 << 4
		l4[13] = flags
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	if src.Addr().Is4() {
		b := make([]byte, 20, 20+len(l4))
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
		b[8], b[9] = 64, proto
		s, d := src.Addr().As4(), dst.Addr().As4()
		copy(b[12:], s[:])
		copy(b[16:], d[:])
		return append(b, l4...)
	}
	b := make([]byte, 40, 40+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6], b[7] = proto, 64
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, l4...)
}

func pkt(ts time.Time, data []byte) capture.Packet {
	return capture.Packet{Timestamp: ts, Length: len(data), LinkType: capture.LinkRaw, Data: data}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func openStore(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.RemoveAll() })
	return s
}

// dirBytes sums the sizes of the segment files on disk.
func dirBytes(t testing.TB, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		n += fi.Size()
	}
	return n
}

// readAll reads a capture and returns its packets (copied) and interfaces.
func readAll(t testing.TB, path string) ([]capture.Packet, []capture.Interface) {
	t.Helper()
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []capture.Packet
	for {
		var p capture.Packet
		err := src.Next(&p)
		if err != nil {
			break
		}
		p.Data = append([]byte(nil), p.Data...)
		out = append(out, p)
	}
	return out, src.Interfaces()
}

func tempFile(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }
