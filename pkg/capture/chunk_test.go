package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// bigPcap writes a pcap of several read chunks whose records, of many
// sizes, straddle the chunks' ends.
func bigPcap(t *testing.T) ([]byte, []testPacket) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	var pkts []testPacket
	ts := time.Unix(1700000000, 0)
	for size := 0; size < 3*readBufferSize+readBufferSize/2; {
		data := make([]byte, 60+rng.Intn(9000))
		if rng.Intn(50) == 0 {
			data = make([]byte, MaxPacketLen) // the largest record
		}
		rng.Read(data)
		pkts = append(pkts, testPacket{ts: ts, data: data})
		ts = ts.Add(time.Millisecond)
		size += pcapRecordLen + len(data)
	}
	return writePcap(t, LinkEthernet, false, pkts), pkts
}

// readers read a capture in the ways a source meets: a file, a whole
// buffer, a byte at a time, a few bytes at a time with the error early.
func readers(t *testing.T, file []byte) map[string]func() (Source, error) {
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]func() (Source, error){
		"file": func() (Source, error) {
			src, err := Open(path)
			if err != nil {
				// Open names the path; the others cannot.
				err = errors.New(strings.TrimPrefix(err.Error(), path+": "))
			} else if m, ok := src.(Mapper); !ok || !m.Mapped() {
				t.Error("Open read the file instead of mapping it")
			}
			return src, err
		},
		"buffer":   func() (Source, error) { return NewReader(bytes.NewReader(file)) },
		"one byte": func() (Source, error) { return NewReader(iotest.OneByteReader(bytes.NewReader(file))) },
		"halves": func() (Source, error) {
			return NewReader(iotest.DataErrReader(iotest.HalfReader(bytes.NewReader(file))))
		},
	}
}

// readEvery reads file every way and checks that all read the same
// packets, and the same error; it returns what they read.
func readEvery(t *testing.T, file []byte) ([]got, error) {
	t.Helper()
	var first []got
	var firstErr error
	firstName := ""
	for name, open := range readers(t, file) {
		var pkts []got
		src, err := open()
		if err == nil {
			pkts, err = readAll(t, src)
			src.Close()
		}
		if firstName == "" {
			first, firstErr, firstName = pkts, err, name
			continue
		}
		if len(pkts) != len(first) {
			t.Errorf("%s: %d packets, %s: %d", name, len(pkts), firstName, len(first))
		}
		for i := range min(len(pkts), len(first)) {
			// cmp.Diff walks bytes one by one: compare them apart.
			if !bytes.Equal(pkts[i].Data, first[i].Data) {
				t.Fatalf("%s: packet %d differs from %s's", name, i, firstName)
			}
			a, b := pkts[i], first[i]
			a.Data, b.Data = nil, nil
			if diff := cmp.Diff(b, a); diff != "" {
				t.Errorf("%s: packet %d differs from %s's:\n%s", name, i, firstName, diff)
			}
		}
		if fmt.Sprint(err) != fmt.Sprint(firstErr) {
			t.Errorf("%s: error %q, %s: %q", name, err, firstName, firstErr)
		}
	}
	return first, firstErr
}

func TestChunkedReadsMatch(t *testing.T) {
	file, pkts := bigPcap(t)
	got, err := readEvery(t, file)
	if err != nil || len(got) != len(pkts) {
		t.Fatalf("read %d packets (%v), want %d", len(got), err, len(pkts))
	}
	for i, p := range pkts {
		if !bytes.Equal(got[i].Data, p.data) || !got[i].TS.Equal(p.ts) {
			t.Fatalf("packet %d differs from the one written", i)
		}
	}
	firstRecordEnd := pcapFileHeaderLen + pcapRecordLen + len(pkts[0].data)
	for _, n := range []int{len(file) - 1, len(file) - 20, readBufferSize, readBufferSize + 1, 2*readBufferSize - 3, firstRecordEnd, firstRecordEnd + 5, 30} {
		t.Run(fmt.Sprintf("first %d bytes", n), func(t *testing.T) {
			got, err := readEvery(t, file[:n])
			if n != firstRecordEnd && !errors.Is(err, ErrTruncated) {
				t.Errorf("error %v, want ErrTruncated", err)
			}
			for i := range got {
				if !bytes.Equal(got[i].Data, pkts[i].data) {
					t.Fatalf("packet %d differs from the one written", i)
				}
			}
		})
	}
	t.Run("pcapng with a block larger than a chunk", func(t *testing.T) {
		pkt := frame(t, LinkEthernet, ipBytes(t, seg{src: "10.1.1.1", dst: "10.1.1.2", sport: 5, dport: 6}), 0)
		w := &ngBuilder{o: binary.LittleEndian}
		w.shb()
		w.idb(LinkEthernet, 0, "eth0", -1, 0)
		w.epb(0, 1, pkt, len(pkt))
		w.block(0x0000000a, make([]byte, 2*readBufferSize+readBufferSize/3))
		for i := range 2000 {
			w.epb(0, uint64(2+i), bytes.Repeat(pkt, 1+i%7), len(pkt))
		}
		if got, err := readEvery(t, w.Bytes()); err != nil || len(got) != 2001 {
			t.Errorf("read %d packets (%v), want 2001", len(got), err)
		}
		readEvery(t, w.Bytes()[:w.Len()-9])
	})
	t.Run("gzip", func(t *testing.T) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(file)
		zw.Close()
		if got, err := readEvery(t, z.Bytes()); err != nil || len(got) != len(pkts) {
			t.Errorf("read %d packets (%v), want %d", len(got), err, len(pkts))
		}
	})
}

// TestRegionsOutliveNext: a retained region keeps its bytes past
// later calls to Next, across windows, and the reader lets go of its own.
func TestRegionsOutliveNext(t *testing.T) {
	file, _ := bigPcap(t)
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := readAll(t, mustReader(t, file))
	if err != nil {
		t.Fatal(err)
	}
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	type kept struct {
		r    *Region
		data []byte
	}
	var all []kept
	regions := map[*Region]bool{}
	var p Packet
	for src.Next(&p) == nil {
		r := src.(Holder).Held()
		if r == nil || !r.Contains(p.Data) {
			t.Fatalf("packet %d: region %v does not hold its data", len(all), r)
		}
		r.Retain()
		regions[r] = true
		all = append(all, kept{r, p.Data})
	}
	if len(regions) < 3 {
		t.Errorf("%d regions, want one per chunk", len(regions))
	}
	for i, k := range all {
		if !bytes.Equal(k.data, want[i].Data) {
			t.Fatalf("packet %d changed after later calls to Next", i)
		}
	}
	for r := range regions {
		if n := r.refs.Load(); n < 1 {
			t.Errorf("region has %d references, want those retained only", n)
		}
	}
	for _, k := range all {
		k.r.Release()
	}
	for r := range regions {
		if n := r.refs.Load(); n != 0 || r.mem != nil {
			t.Errorf("region still has %d references after every release", n)
		}
	}
}

func mustReader(t *testing.T, file []byte) Source {
	t.Helper()
	src, err := NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// A mapped file that grows while it is read is read on, as read(2) would:
// tcpdump -w may still be writing it.
func TestMappedFileGrows(t *testing.T) {
	file, pkts := bigPcap(t)
	half := pcapFileHeaderLen
	n := 0
	for half < len(file)/2 {
		half += pcapRecordLen + len(pkts[n].data)
		n++
	}
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, file[:half], 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var p Packet
	for i := range n - 1 {
		if err := src.Next(&p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(file[half:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for i := n - 1; i < len(pkts); i++ {
		if err := src.Next(&p); err != nil {
			t.Fatalf("packet %d of %d, after the file grew: %v", i, len(pkts), err)
		}
		if !bytes.Equal(p.Data, pkts[i].data) {
			t.Fatalf("packet %d differs from the one written", i)
		}
	}
	if err := src.Next(&p); err != io.EOF {
		t.Errorf("after the last packet: %v, want EOF", err)
	}
}
