package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

func TestWritersRoundTrip(t *testing.T) {
	pkts := []capture.Packet{
		pkt(t0, rawPacket(6, ap("10.0.0.1:1000"), ap("10.0.0.2:80"), capture.TCPSyn, 0)),
		pkt(t0.Add(time.Nanosecond), rawPacket(17, ap("[fd00::1]:53"), ap("[fd00::2]:5353"), 0, 33)),
		pkt(t0.Add(time.Second), rawPacket(6, ap("10.0.0.2:80"), ap("10.0.0.1:1000"), capture.TCPAck, 1)),
	}
	pkts[2].Length = 9000 // cut by a snap length
	for _, f := range []Format{FormatPcapng, FormatPcap} {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, f)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := w.AddInterface(capture.Interface{Name: "shop/cart-1", LinkType: capture.LinkRaw, SnapLen: 65535})
			b, _ := w.AddInterface(capture.Interface{Name: "shop/front-2", LinkType: capture.LinkRaw})
			for i := range pkts {
				id := a
				if i == 1 {
					id = b
				}
				if err := w.WritePacket(id, &pkts[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.WritePacket(7, &pkts[0]); err == nil {
				t.Error("wrote to an undeclared interface")
			}
			w.Flush()
			path := tempFile(t, "x."+string(f))
			os.WriteFile(path, buf.Bytes(), 0o600)
			got, ifaces := readAll(t, path)
			if len(got) != len(pkts) {
				t.Fatalf("%d packets", len(got))
			}
			for i := range pkts {
				want := pkts[i]
				if f == FormatPcapng && i == 1 {
					want.Interface = 1
				}
				if diff := cmp.Diff(want, got[i]); diff != "" {
					t.Errorf("packet %d (-want +got):\n%s", i, diff)
				}
			}
			if f == FormatPcapng {
				names := []string{ifaces[0].Name, ifaces[1].Name}
				if diff := cmp.Diff([]string{"shop/cart-1", "shop/front-2"}, names); diff != "" {
					t.Error(diff)
				}
			}
		})
	}
	var buf bytes.Buffer
	pw := NewPcapWriter(&buf)
	pw.AddInterface(capture.Interface{LinkType: capture.LinkRaw})
	if _, err := pw.AddInterface(capture.Interface{LinkType: capture.LinkEthernet}); !errors.Is(err, ErrMixedLinks) {
		t.Errorf("mixed links: %v", err)
	}
}

// TestLimitUnderFlood writes 1 GB through a 32 MiB store and checks the
// disk never holds more than the limit plus one segment.
func TestLimitUnderFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GB")
	}
	dir := t.TempDir()
	const limit = 32 << 20
	s := openStore(t, Options{Dir: dir, Limit: limit})
	seg := s.Options().SegmentSize
	id := s.AddInterface(capture.Interface{Name: "ns/flood", LinkType: capture.LinkRaw})
	batch := make([]capture.Packet, 256)
	var written int64
	ts := t0
	for i := 0; written < 1<<30; i++ {
		for j := range batch {
			ts = ts.Add(time.Microsecond)
			src := ap(fmt.Sprintf("10.1.%d.%d:%d", (i>>8)&255, i&255, 1024+j))
			batch[j] = pkt(ts, rawPacket(6, src, ap("10.2.0.1:80"), capture.TCPAck, 1400))
			written += int64(len(batch[j].Data))
		}
		s.Write(id, batch)
		if i%16 == 0 {
			if n := dirBytes(t, dir); n > limit+seg {
				t.Fatalf("after %d MB: %d bytes on disk, limit %d + segment %d", written>>20, n, limit, seg)
			}
		}
		if st := s.Stats(); st.Bytes > limit+int64(len(batch[0].Data))+64 {
			t.Fatalf("accounted %d bytes, limit %d", st.Bytes, limit)
		}
	}
	st := s.Stats()
	if st.Errors != 0 || st.Evicted == 0 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	// The newest packets are still there and export cleanly.
	var out bytes.Buffer
	es, err := s.Export(context.Background(), &out, Query{From: ts.Add(-time.Millisecond)})
	if err != nil || es.Packets < 900 || es.Packets > 1001 {
		t.Errorf("export of the last ms: %+v %v", es, err)
	}
}

func TestTTL(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	s := openStore(t, Options{Limit: 1 << 20, SegmentSize: 64 << 10, TTL: 10 * time.Second, Now: clock})
	id := s.AddInterface(capture.Interface{Name: "a/b", LinkType: capture.LinkRaw})
	for i := 0; i < 30; i++ {
		now = t0.Add(time.Duration(i) * time.Second)
		p := pkt(now, rawPacket(17, ap("10.0.0.1:1"), ap("10.0.0.2:2"), 0, 100))
		s.Write(id, []capture.Packet{p})
		s.Maintain()
	}
	st := s.Stats()
	if st.Expired == 0 {
		t.Fatalf("nothing expired: %+v", st)
	}
	// Segments roll every TTL/8 (at least 1s): what is left is at most
	// TTL plus one segment's age old.
	if age := now.Sub(st.Oldest); age > 10*time.Second+2*time.Second {
		t.Errorf("oldest packet %v old", age)
	}
	var out bytes.Buffer
	es, err := s.Export(context.Background(), &out, Query{})
	if err != nil {
		t.Fatal(err)
	}
	// Export applies the TTL exactly.
	if es.Packets != 11 {
		t.Errorf("exported %d packets, want 11 (the last 10 s)", es.Packets)
	}
}

// trafficStore writes two pods' traffic: pod a talks to b over two TCP
// connections on the same ports (one after the other), and to a DNS server
// over UDP; pod c is unrelated.
func trafficStore(t *testing.T) (*Store, []string) {
	s := openStore(t, Options{Limit: 4 << 20, SegmentSize: 64 << 10})
	a := s.AddInterface(capture.Interface{Name: "shop/a", LinkType: capture.LinkRaw})
	b := s.AddInterface(capture.Interface{Name: "shop/b", LinkType: capture.LinkRaw})
	c := s.AddInterface(capture.Interface{Name: "other/c", LinkType: capture.LinkRaw})
	cli, srv := ap("10.0.0.1:40000"), ap("10.0.0.2:8080")
	ts := t0
	var ids []string
	conn := func() {
		ids = append(ids, FlowID("tcp", cli, srv, ts))
		steps := []struct {
			fromCli bool
			flags   uint8
			n       int
		}{
			{true, capture.TCPSyn, 0}, {false, capture.TCPSyn | capture.TCPAck, 0}, {true, capture.TCPAck, 0},
			{true, capture.TCPAck | capture.TCPPsh, 100}, {false, capture.TCPAck | capture.TCPPsh, 500},
			{true, capture.TCPFin | capture.TCPAck, 0}, {false, capture.TCPFin | capture.TCPAck, 0}, {true, capture.TCPAck, 0},
		}
		for _, st := range steps {
			src, dst := cli, srv
			if !st.fromCli {
				src, dst = srv, cli
			}
			data := rawPacket(6, src, dst, st.flags, st.n)
			// Both pods see every packet: a as sender or receiver, b too.
			s.Write(a, []capture.Packet{pkt(ts, data)})
			s.Write(b, []capture.Packet{pkt(ts.Add(20*time.Microsecond), data)})
			ts = ts.Add(time.Millisecond)
		}
	}
	conn()
	for i := 0; i < 5; i++ {
		s.Write(a, []capture.Packet{pkt(ts, rawPacket(17, ap("10.0.0.1:5353"), ap("10.0.0.53:53"), 0, 40))})
		s.Write(c, []capture.Packet{pkt(ts, rawPacket(17, ap("10.9.0.1:5353"), ap("10.9.0.53:53"), 0, 40))})
		ts = ts.Add(time.Millisecond)
	}
	ts = ts.Add(time.Second)
	conn()
	return s, ids
}

func export(t *testing.T, s *Store, q Query) (ExportStats, []capture.Packet, []capture.Interface) {
	t.Helper()
	var buf bytes.Buffer
	st, err := s.Export(context.Background(), &buf, q)
	if err != nil {
		t.Fatal(err)
	}
	path := tempFile(t, "out.pcapng")
	os.WriteFile(path, buf.Bytes(), 0o600)
	pkts, ifaces := readAll(t, path)
	if uint64(len(pkts)) != st.Packets {
		t.Fatalf("stats say %d packets, file has %d", st.Packets, len(pkts))
	}
	return st, pkts, ifaces
}

func TestQueries(t *testing.T) {
	s, ids := trafficStore(t)
	tcpFlow := func(id string) *Flow {
		return &Flow{ID: id, Transport: "tcp", A: ap("10.0.0.2:8080"), B: ap("10.0.0.1:40000")}
	}
	tests := []struct {
		name      string
		q         Query
		packets   uint64
		pods      []string
		flowFound bool
	}{
		{"all", Query{}, 8*4 + 10, []string{"shop/a", "shop/b", "other/c"}, false},
		{"one pod", Query{Pods: []string{"shop/b"}}, 16, []string{"shop/b"}, false},
		{"pods", Query{Pods: []string{"shop/a", "other/c"}}, 16 + 10, []string{"shop/a", "other/c"}, false},
		{"unknown pod", Query{Pods: []string{"x/y"}}, 0, nil, false},
		{"time range", Query{From: t0, To: t0.Add(7*time.Millisecond + 20*time.Microsecond)}, 16, []string{"shop/a", "shop/b"}, false},
		{"first connection by id", Query{Flow: tcpFlow(ids[0])}, 16, []string{"shop/a", "shop/b"}, true},
		{"second connection by id", Query{Flow: tcpFlow(ids[1])}, 16, []string{"shop/a", "shop/b"}, true},
		{"by id, one pod", Query{Flow: tcpFlow(ids[1]), Pods: []string{"shop/a"}}, 8, []string{"shop/a"}, true},
		{"ends only", Query{Flow: &Flow{A: ap("10.0.0.1:40000"), B: ap("10.0.0.2:8080")}}, 32, []string{"shop/a", "shop/b"}, false},
		{"unknown id falls back to the ends", Query{Flow: tcpFlow("0123456789abcdef")}, 32, []string{"shop/a", "shop/b"}, false},
		{"ends and time", Query{Flow: &Flow{A: ap("10.0.0.1:40000"), B: ap("10.0.0.2:8080")}, To: t0.Add(time.Second)}, 16, []string{"shop/a", "shop/b"}, false},
		{"udp flow", Query{Flow: &Flow{Transport: "udp", A: ap("10.0.0.53:53"), B: ap("10.0.0.1:5353")}}, 5, []string{"shop/a"}, false},
		{"wrong transport", Query{Flow: &Flow{Transport: "udp", A: ap("10.0.0.1:40000"), B: ap("10.0.0.2:8080")}}, 0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, pkts, ifaces := export(t, s, tt.q)
			if st.Packets != tt.packets || st.FlowFound != tt.flowFound {
				t.Errorf("exported %d packets (flow found %v), want %d (%v)", st.Packets, st.FlowFound, tt.packets, tt.flowFound)
			}
			if diff := cmp.Diff(tt.pods, st.Pods); diff != "" {
				t.Errorf("pods (-want +got):\n%s", diff)
			}
			var names []string
			for _, in := range ifaces {
				names = append(names, in.Name)
			}
			if diff := cmp.Diff(tt.pods, names); diff != "" {
				t.Errorf("file interfaces (-want +got):\n%s", diff)
			}
			for i := 1; i < len(pkts); i++ {
				if pkts[i].Timestamp.Before(pkts[i-1].Timestamp.Add(-time.Millisecond)) {
					t.Errorf("packet %d goes back in time", i)
				}
			}
		})
	}
	for _, bad := range []Query{
		{Flow: &Flow{A: ap("10.0.0.1:1")}},
		{Flow: &Flow{Transport: "sctp", A: ap("10.0.0.1:1"), B: ap("10.0.0.1:2")}},
		{Flow: &Flow{ID: "xyz", A: ap("10.0.0.1:1"), B: ap("10.0.0.1:2")}},
		{From: t0, To: t0.Add(-1)},
		{Format: "erf"},
	} {
		if _, err := s.Export(context.Background(), &bytes.Buffer{}, bad); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// TestExportTshark checks that tshark reads an export with the pods'
// interface names and the right packet counts.
func TestExportTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (apt-get install tshark)")
	}
	s, _ := trafficStore(t)
	for _, f := range []Format{FormatPcapng, FormatPcap} {
		path := tempFile(t, "all."+string(f))
		fh, _ := os.Create(path)
		if _, err := s.Export(context.Background(), fh, Query{Format: f}); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		field := "frame.interface_name"
		if f == FormatPcap {
			field = "ip.proto"
		}
		out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", field).Output()
		if err != nil {
			t.Fatalf("tshark: %v\n%s", err, out)
		}
		counts := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			counts[l]++
		}
		want := map[string]int{"shop/a": 21, "shop/b": 16, "other/c": 5}
		if f == FormatPcap {
			want = map[string]int{"6": 32, "17": 10}
		}
		if diff := cmp.Diff(want, counts); diff != "" {
			t.Errorf("%s: tshark counts (-want +got):\n%s", f, diff)
		}
	}
}

func TestConcurrentWriteExport(t *testing.T) {
	s := openStore(t, Options{Limit: 2 << 20, SegmentSize: 64 << 10})
	id := s.AddInterface(capture.Interface{Name: "a/b", LinkType: capture.LinkRaw})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ts := t0
		for ctx.Err() == nil {
			ts = ts.Add(time.Microsecond)
			s.Write(id, []capture.Packet{pkt(ts, rawPacket(6, ap("10.0.0.1:1"), ap("10.0.0.2:2"), capture.TCPAck, 1000))})
		}
	}()
	for i := 0; i < 50; i++ {
		var buf bytes.Buffer
		if _, err := s.Export(ctx, &buf, Query{Pods: []string{"a/b"}}); err != nil {
			t.Fatal(err)
		}
		s.Maintain()
	}
	cancel()
	wg.Wait()
	if st := s.Stats(); st.Errors != 0 {
		t.Errorf("errors: %+v", st)
	}
}

func TestOpenClearsStaleSegments(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "seg-0000000000000001.pcapng")
	other := filepath.Join(dir, "keep.txt")
	os.WriteFile(stale, []byte("old"), 0o600)
	os.WriteFile(other, []byte("x"), 0o600)
	s := openStore(t, Options{Dir: dir})
	defer s.Close()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if diff := cmp.Diff([]string{"keep.txt"}, names); diff != "" {
		t.Error(diff)
	}
	if _, err := Open(Options{Dir: dir, Limit: 100 << 10, SegmentSize: 64 << 10}); err == nil {
		t.Error("accepted a limit smaller than two segments")
	}
}

func TestBloom(t *testing.T) {
	b := newBloom(1 << 20)
	for i := uint64(1); i <= 10000; i++ {
		b.add(i * 0x9e3779b97f4a7c15)
	}
	for i := uint64(1); i <= 10000; i++ {
		if !b.has(i * 0x9e3779b97f4a7c15) {
			t.Fatalf("lost key %d", i)
		}
	}
	fp := 0
	for i := uint64(20000); i < 120000; i++ {
		if b.has(i * 0x51afd7ed558ccd) {
			fp++
		}
	}
	if fp > 6000 { // 10000 keys in 65536 bits, k=3: about 4.9%
		t.Errorf("%d false positives in 100000", fp)
	}
}

// TestLongPodName exports a pod whose namespace/name is longer than what
// pkg/capture's reader keeps of an interface name.
func TestLongPodName(t *testing.T) {
	s := openStore(t, Options{})
	long := strings.Repeat("n", 63) + "/" + strings.Repeat("p", 253)
	id := s.AddInterface(capture.Interface{Name: long, LinkType: capture.LinkRaw})
	other := s.AddInterface(capture.Interface{Name: "a/b", LinkType: capture.LinkRaw})
	s.Write(id, []capture.Packet{pkt(t0, rawPacket(17, ap("10.0.0.1:1"), ap("10.0.0.2:2"), 0, 10))})
	s.Write(other, []capture.Packet{pkt(t0, rawPacket(17, ap("10.0.0.1:1"), ap("10.0.0.2:2"), 0, 10))})
	st, _, _ := export(t, s, Query{Pods: []string{long}})
	if st.Packets != 1 || len(st.Pods) != 1 || st.Pods[0] != long {
		t.Errorf("export %+v", st)
	}
}
