package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/pcapgo"
)

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// samplePackets returns a few frames of lt with distinct timestamps.
func samplePackets(t testing.TB, lt LinkType) []testPacket {
	t.Helper()
	v6 := lt == LinkIPv6
	src, dst := "10.0.0.1", "10.0.0.2"
	if v6 {
		src, dst = "fd00::1", "fd00::2"
	}
	var pkts []testPacket
	for i := range 5 {
		ip := ipBytes(t, seg{v6: v6, udp: i%2 == 1, src: src, dst: dst, sport: 40000, dport: 80, seq: uint32(i), payload: []byte(fmt.Sprintf("payload %d", i))})
		pkts = append(pkts, testPacket{ts: t0.Add(time.Duration(i) * 1234567 * time.Microsecond), data: frame(t, lt, ip, 0)})
	}
	// A frame cut by the snap length.
	last := pkts[len(pkts)-1]
	pkts = append(pkts, testPacket{ts: last.ts.Add(time.Second), data: last.data[:len(last.data)-3], length: len(last.data)})
	return pkts
}

// readPcapgo reads a pcap with gopacket's reader, for comparison.
func readPcapgo(t *testing.T, file []byte) []got {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var out []got
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got{ci.Timestamp, ci.Length, LinkType(r.LinkType()), 0, data})
	}
}

func TestPcapMatchesPcapgo(t *testing.T) {
	for _, lt := range []LinkType{LinkEthernet, LinkSLL, LinkSLL2, LinkRaw, LinkIPv4, LinkIPv6, LinkNull, LinkLoop} {
		for _, nanos := range []bool{false, true} {
			for _, big := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/nanos=%v/big=%v", lt, nanos, big), func(t *testing.T) {
					file := writePcap(t, lt, nanos, samplePackets(t, lt))
					if big {
						file = swapPcap(t, file)
					}
					src, err := NewReader(bytes.NewReader(file))
					if err != nil {
						t.Fatal(err)
					}
					defer src.Close()
					ours, err := readAll(t, src)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(readPcapgo(t, file), ours); diff != "" {
						t.Errorf("our reader vs pcapgo (-pcapgo +ours):\n%s", diff)
					}
					want := []Interface{{LinkType: lt, SnapLen: MaxPacketLen}}
					if diff := cmp.Diff(want, src.Interfaces()); diff != "" {
						t.Errorf("Interfaces (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

func TestPcapTimestampResolution(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
	pkts := []testPacket{{ts: ts, data: frame(t, LinkRaw, ipBytes(t, seg{src: "1.2.3.4", dst: "5.6.7.8", sport: 1, dport: 2}), 0)}}
	for _, tc := range []struct {
		nanos bool
		want  time.Time
	}{
		{false, ts.Truncate(time.Microsecond)},
		{true, ts},
	} {
		src, err := NewReader(bytes.NewReader(writePcap(t, LinkRaw, tc.nanos, pkts)))
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		if err := src.Next(&p); err != nil {
			t.Fatal(err)
		}
		if !p.Timestamp.Equal(tc.want) || p.Timestamp.Location() != time.UTC {
			t.Errorf("nanos=%v: timestamp %v, want %v in UTC", tc.nanos, p.Timestamp, tc.want)
		}
	}
}

// TestPcapModified reads the record layout of Kuznetzov's patched libpcap.
func TestPcapModified(t *testing.T) {
	data := frame(t, LinkEthernet, ipBytes(t, seg{src: "1.2.3.4", dst: "5.6.7.8", sport: 1, dport: 2}), 0)
	le := binary.LittleEndian
	b := le.AppendUint32(nil, pcapMagicModified)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, uint32(LinkEthernet))
	for i := range 2 {
		b = le.AppendUint32(b, uint32(1700000000+i))
		b = le.AppendUint32(b, 250000)
		b = le.AppendUint32(b, uint32(len(data)))
		b = le.AppendUint32(b, uint32(len(data)))
		b = append(b, make([]byte, 8)...) // ifindex, protocol, pkt_type, pad
		b = append(b, data...)
	}
	src, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{time.Unix(1700000000, 250000000).UTC(), len(data), LinkEthernet, 0, data},
		{time.Unix(1700000001, 250000000).UTC(), len(data), LinkEthernet, 0, data},
	}
	if diff := cmp.Diff(want, pkts); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPcapTruncated(t *testing.T) {
	pkts := samplePackets(t, LinkEthernet)
	file := writePcap(t, LinkEthernet, false, pkts)
	firstRecordEnd := pcapFileHeaderLen + pcapRecordLen + len(pkts[0].data)
	for _, tc := range []struct {
		name    string
		n       int
		packets int
		wantErr error // nil: clean io.EOF
	}{
		{"whole file", len(file), len(pkts), nil},
		{"at a record boundary", firstRecordEnd, 1, nil},
		{"header only", pcapFileHeaderLen, 0, nil},
		{"inside the file header", 10, 0, ErrTruncated},
		{"inside a record header", firstRecordEnd + 7, 1, ErrTruncated},
		{"inside record data", firstRecordEnd + pcapRecordLen + 5, 1, ErrTruncated},
		{"one byte short", len(file) - 1, len(pkts) - 1, ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewReader(bytes.NewReader(file[:tc.n]))
			if err != nil {
				if tc.wantErr == nil || !errors.Is(err, tc.wantErr) {
					t.Fatalf("NewReader: %v, want %v", err, tc.wantErr)
				}
				return
			}
			got, err := readAll(t, src)
			if len(got) != tc.packets {
				t.Errorf("read %d packets, want %d", len(got), tc.packets)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Errorf("error %v, want clean EOF", err)
				}
				return
			}
			if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v, want ErrTruncated and io.ErrUnexpectedEOF", err)
			}
			// The error is sticky.
			if err2 := src.Next(&Packet{}); err2 != err {
				t.Errorf("second Next: %v, want the same error", err2)
			}
		})
	}
}

func TestNotCapture(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"capture.pcap", "PK\x03\x04\x14\x00\x00\x00\x08\x00", `capture.pcap: not a pcap or pcapng capture (starts with "PK\x03\x04\x14\x00\x00\x00")`},
		{"empty.pcap", "", `empty.pcap: not a pcap or pcapng capture (the input is empty)`},
		{"short.pcap", "\xd4\xc3", `short.pcap: not a pcap or pcapng capture (starts with "\xd4\xc3")`},
		{"text.pcap", "12:00:01.000 IP 10.0.0.1 > 10.0.0.2", `text.pcap: not a pcap or pcapng capture (starts with "12:00:01")`},
		{"badbom.pcapng", "\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x01\x02\x03\x04", "badbom.pcapng: pcapng section header at offset 0 has byte-order magic 0x04030201, want 0x1a2b3c4d: not a pcap or pcapng capture"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if !errors.Is(err, ErrNotCapture) {
				t.Fatalf("Open: %v, want ErrNotCapture", err)
			}
			if got := strings.TrimPrefix(err.Error(), dir+"/"); got != tc.want {
				t.Errorf("error:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestPcapUnsupportedLink(t *testing.T) {
	for _, tc := range []struct {
		lt   LinkType
		want string
	}{
		{189, "unsupported link type 189 (USB_LINUX)"},
		{4000, "unsupported link type 4000"},
	} {
		file := writePcap(t, tc.lt, false, nil)
		_, err := NewReader(bytes.NewReader(file))
		if !errors.Is(err, ErrUnsupportedLink) || err.Error() != tc.want {
			t.Errorf("link %d: error %v, want %q wrapping ErrUnsupportedLink", tc.lt, err, tc.want)
		}
	}
}

func TestPcapLinkTypeNormalized(t *testing.T) {
	ip := ipBytes(t, seg{src: "1.2.3.4", dst: "5.6.7.8", sport: 1, dport: 2})
	for _, raw := range []uint32{12, 14, uint32(LinkEthernet) | 0x10000000 /* FCS bits */} {
		file := writePcap(t, LinkRaw, false, []testPacket{{ts: t0, data: ip}})
		binary.LittleEndian.PutUint32(file[20:], raw)
		src, err := NewReader(bytes.NewReader(file))
		if err != nil {
			t.Fatalf("link field %#x: %v", raw, err)
		}
		want := LinkRaw
		if raw&0xffff == uint32(LinkEthernet) {
			want = LinkEthernet
		}
		if got := src.Interfaces()[0].LinkType; got != want {
			t.Errorf("link field %#x: link type %v, want %v", raw, got, want)
		}
	}
}

func TestPcapAbsurdLength(t *testing.T) {
	file := writePcap(t, LinkEthernet, false, samplePackets(t, LinkEthernet)[:1])
	binary.LittleEndian.PutUint32(file[pcapFileHeaderLen+8:], 0x7fffffff)
	src, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err = src.Next(&Packet{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v, want ErrCorrupt", err)
	}
	if want := "pcap record 1 at offset 24 claims 2147483647 captured bytes, more than the 262144 a packet may have: capture is corrupt"; err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes for a bogus record", grew)
	}
}

// TestStreamingPipe checks that a packet is returned as soon as its record
// is complete, while the writer keeps the stream open (tcpdump -U -w -).
func TestStreamingPipe(t *testing.T) {
	for _, format := range []string{"pcap", "pcapng"} {
		t.Run(format, func(t *testing.T) {
			pkts := samplePackets(t, LinkEthernet)
			var header, records []byte
			if format == "pcap" {
				file := writePcap(t, LinkEthernet, false, pkts[:1])
				header, records = file[:pcapFileHeaderLen], file[pcapFileHeaderLen:]
			} else {
				w := &ngBuilder{o: binary.LittleEndian}
				w.shb()
				w.idb(LinkEthernet, 0, "eth0", -1, 0)
				header = bytes.Clone(w.Bytes())
				w.Reset()
				w.epb(0, uint64(t0.UnixMicro()), pkts[0].data, len(pkts[0].data))
				records = w.Bytes()
			}
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() {
				pw.Write(header)
				pw.Write(records[:5]) // a record in two writes
				time.Sleep(10 * time.Millisecond)
				pw.Write(records[5:])
				// Keep the pipe open: the reader must not wait for more.
			}()
			src, err := NewReader(pr)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			var p Packet
			go func() { done <- src.Next(&p) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p.Data, pkts[0].data) {
					t.Errorf("packet data differs")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Next did not return a complete record while the stream stayed open")
			}
		})
	}
}

func TestGzip(t *testing.T) {
	file := writePcap(t, LinkEthernet, false, samplePackets(t, LinkEthernet))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(file)
	zw.Close()
	src, err := NewReader(bytes.NewReader(z.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAll(t, src)
	if err != nil || len(pkts) != 6 {
		t.Errorf("read %d packets, err %v; want 6, nil", len(pkts), err)
	}

	// One layer only: each would cost another read buffer.
	var zz bytes.Buffer
	zw = gzip.NewWriter(&zz)
	zw.Write(z.Bytes())
	zw.Close()
	_, err = NewReader(&zz)
	if !errors.Is(err, ErrNotCapture) || !strings.HasPrefix(err.Error(), `gzip-compressed: not a pcap or pcapng capture (starts with "\x1f\x8b`) {
		t.Errorf("gzip in gzip: %v, want ErrNotCapture", err)
	}
}

func TestOpenFileAndStdin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcap")
	if err := os.WriteFile(path, writePcap(t, LinkEthernet, true, samplePackets(t, LinkEthernet)), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if pkts, err := readAll(t, src); err != nil || len(pkts) != 6 {
		t.Errorf("read %d packets, err %v; want 6, nil", len(pkts), err)
	}
	if err := src.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := src.Next(&Packet{}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close: %v, want os.ErrClosed", err)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()
	src, err = Open("-")
	if err != nil {
		t.Fatal(err)
	}
	if pkts, err := readAll(t, src); err != nil || len(pkts) != 6 {
		t.Errorf("stdin: read %d packets, err %v; want 6, nil", len(pkts), err)
	}

	if _, err := Open(filepath.Join(t.TempDir(), "missing.pcap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing): %v, want os.ErrNotExist", err)
	}
}
