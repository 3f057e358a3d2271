package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestPcapngMatchesPcapgo writes with pcapgo's NgWriter (two interfaces)
// and compares our reader with pcapgo's NgReader.
func TestPcapngMatchesPcapgo(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: MaxPacketLen},
		pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapgo.NgInterface{Name: "eth1", LinkType: layers.LinkTypeEthernet}); err != nil {
		t.Fatal(err)
	}
	pkts := samplePackets(t, LinkEthernet)
	for i, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: p.wireLen(), InterfaceIndex: i % 2}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}

	r, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var want []got
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, got{ci.Timestamp, ci.Length, LinkEthernet, ci.InterfaceIndex, data})
	}

	src, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(pkts) {
		t.Fatalf("pcapgo read %d packets, want %d", len(want), len(pkts))
	}
	if diff := cmp.Diff(want, ours); diff != "" {
		t.Errorf("our reader vs pcapgo (-pcapgo +ours):\n%s", diff)
	}
	wantIfaces := []Interface{{Name: "eth0", LinkType: LinkEthernet, SnapLen: MaxPacketLen}, {Name: "eth1", LinkType: LinkEthernet}}
	if diff := cmp.Diff(wantIfaces, src.Interfaces()); diff != "" {
		t.Errorf("Interfaces (-want +got):\n%s", diff)
	}
}

// TestPcapngBlocks covers what pcapgo does not write: both byte orders,
// if_tsresol (decimal and binary) and if_tsoffset, SPB, obsolete PB,
// blocks to skip, and a second section in the other byte order.
func TestPcapngBlocks(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(order.String(), func(t *testing.T) {
			other := binary.ByteOrder(binary.BigEndian)
			if order == binary.BigEndian {
				other = binary.LittleEndian
			}
			eth := frame(t, LinkEthernet, ipBytes(t, seg{src: "10.1.1.1", dst: "10.1.1.2", sport: 5, dport: 6, payload: []byte("hello")}), 0)
			raw := ipBytes(t, seg{v6: true, udp: true, src: "fd00::1", dst: "fd00::2", sport: 53, dport: 5353, payload: []byte("dns")})
			sll2 := frame(t, LinkSLL2, raw, 0)

			w := &ngBuilder{o: order.(interface {
				binary.ByteOrder
				binary.AppendByteOrder
			})}
			w.shb()
			w.idb(LinkEthernet, 0, "eth0", -1, 0)          // if 0: default µs
			w.idb(LinkRaw, 128, "tun0\x00", 9, 0)          // if 1: ns, NUL-padded name
			w.idb(LinkSLL2, 0, "", 0x80|20, 0)             // if 2: 2^-20 s
			w.idb(LinkEthernet, 0, "slow", 3, 1_000_000)   // if 3: ms, +1e6 s
			w.block(5, make([]byte, 16))                   // ISB: skipped
			w.block(4, []byte{1, 0, 4, 0, 10, 0, 0, 1, 0}) // NRB: skipped
			w.block(0x40000bad, []byte("custom, copy me")) // custom: skipped
			w.epb(0, 1_700_000_000_123_456, eth, len(eth))
			w.epb(1, 1_700_000_001_123_456_789, raw, len(raw))
			w.epb(2, 1_700_000_002<<20|1<<19, sll2, len(sll2)) // .5 s
			w.epb(3, 1_700_000_003_250, eth[:20], len(eth))
			w.spb(eth, len(eth)) // interface 0, no timestamp: the previous one
			w.pb(1, 1_700_000_004_000_000_001, raw, len(raw))
			first := len(w.Bytes())

			w2 := &ngBuilder{o: other.(interface {
				binary.ByteOrder
				binary.AppendByteOrder
			})}
			w2.shb()
			w2.idb(LinkSLL2, 0, "any", 6, 0)
			w2.epb(0, 1_700_000_005_000_001, sll2, len(sll2))
			file := append(bytes.Clone(w.Bytes()), w2.Bytes()...)

			src, err := NewReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			pkts, err := readAll(t, src)
			if err != nil {
				t.Fatal(err)
			}
			want := []got{
				{time.Unix(1_700_000_000, 123_456_000).UTC(), len(eth), LinkEthernet, 0, eth},
				{time.Unix(1_700_000_001, 123_456_789).UTC(), len(raw), LinkRaw, 1, raw},
				{time.Unix(1_700_000_002, 500_000_000).UTC(), len(sll2), LinkSLL2, 2, sll2},
				{time.Unix(1_701_000_003, 250_000_000).UTC(), len(eth), LinkEthernet, 3, eth[:20]},
				{time.Unix(1_701_000_003, 250_000_000).UTC(), len(eth), LinkEthernet, 0, eth},
				{time.Unix(1_700_000_004, 1).UTC(), len(raw), LinkRaw, 1, raw},
				{time.Unix(1_700_000_005, 1000).UTC(), len(sll2), LinkSLL2, 4, sll2},
			}
			if diff := cmp.Diff(want, pkts); diff != "" {
				t.Errorf("packets (-want +got):\n%s", diff)
			}
			wantIfaces := []Interface{
				{Name: "eth0", LinkType: LinkEthernet},
				{Name: "tun0", LinkType: LinkRaw, SnapLen: 128},
				{LinkType: LinkSLL2},
				{Name: "slow", LinkType: LinkEthernet},
				{Name: "any", LinkType: LinkSLL2},
			}
			if diff := cmp.Diff(wantIfaces, src.Interfaces()); diff != "" {
				t.Errorf("Interfaces (-want +got):\n%s", diff)
			}

			// Cut anywhere inside the first section's last block: ErrTruncated.
			src, _ = NewReader(bytes.NewReader(file[:first-3]))
			pkts, err = readAll(t, src)
			if !errors.Is(err, ErrTruncated) || len(pkts) != 5 {
				t.Errorf("cut file: %d packets, err %v; want 5 and ErrTruncated", len(pkts), err)
			}
		})
	}
}

func TestTSClock(t *testing.T) {
	for _, tc := range []struct {
		resol byte
		ts    uint64
		want  time.Time
	}{
		{6, 1_500_000_000_999_999, time.Unix(1_500_000_000, 999_999_000)},
		{9, 1_500_000_000_000_000_001, time.Unix(1_500_000_000, 1)},
		{0, 42, time.Unix(42, 0)},
		{3, 1_999, time.Unix(1, 999_000_000)},
		{12, 1_000_000_000_123_456, time.Unix(1000, 123)}, // ps: floor to ns
		{19, 10_000_000_000_000_000_000, time.Unix(1, 0)},
		{0x80 | 0, 7, time.Unix(7, 0)},
		{0x80 | 10, 3<<10 | 512, time.Unix(3, 500_000_000)},
		{0x80 | 30, 1<<30 | 1, time.Unix(1, 0)}, // 0.93 ns floors to 0
		{0x80 | 63, 1<<63 | 1<<62, time.Unix(1, 500_000_000)},
	} {
		c := tsClock{binary: tc.resol&0x80 != 0, exp: tc.resol & 0x7f}
		if err := c.init(); err != nil {
			t.Fatalf("resol %#x: %v", tc.resol, err)
		}
		if got := c.time(tc.ts); !got.Equal(tc.want) {
			t.Errorf("resol %#x, ts %d: %v, want %v", tc.resol, tc.ts, got, tc.want.UTC())
		}
	}
	for _, bad := range []byte{20, 127, 0x80 | 64} {
		c := tsClock{binary: bad&0x80 != 0, exp: bad & 0x7f}
		if err := c.init(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("resol %#x: %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestPcapngErrors(t *testing.T) {
	le := binary.LittleEndian
	pkt := frame(t, LinkEthernet, ipBytes(t, seg{src: "10.1.1.1", dst: "10.1.1.2", sport: 5, dport: 6}), 0)
	start := func() *ngBuilder {
		w := &ngBuilder{o: le}
		w.shb()
		w.idb(LinkEthernet, 0, "eth0", -1, 0)
		return w
	}
	for _, tc := range []struct {
		name    string
		build   func(w *ngBuilder)
		packets int
		want    error
		msg     string // substring of the error
	}{
		{"unsupported link at second IDB", func(w *ngBuilder) {
			w.epb(0, 1, pkt, len(pkt))
			w.idb(189, 0, "usbmon0", -1, 0)
		}, 1, ErrUnsupportedLink, "pcapng interface 1: unsupported link type 189 (USB_LINUX)"},
		{"unknown interface", func(w *ngBuilder) {
			w.epb(1, 1, pkt, len(pkt))
		}, 0, ErrCorrupt, "refers to interface 1, but its section defines 1"},
		{"interfaces are per section", func(w *ngBuilder) {
			w.shb()
			w.epb(0, 1, pkt, len(pkt))
		}, 0, ErrCorrupt, "refers to interface 0, but its section defines 0"},
		{"captured length beyond block", func(w *ngBuilder) {
			start := w.Len()
			w.epb(0, 1, pkt, len(pkt))
			le.PutUint32(w.Bytes()[start+20:], 1000) // its captured length
		}, 0, ErrCorrupt, "claims 1000 captured bytes"},
		{"length not a multiple of 4", func(w *ngBuilder) {
			w.Write(le.AppendUint32(le.AppendUint32(nil, ngBlockEPB), 33))
		}, 0, ErrCorrupt, "has length 33"},
		{"absurd block length", func(w *ngBuilder) {
			w.Write(le.AppendUint32(le.AppendUint32(nil, ngBlockEPB), 0xfffffff0))
		}, 0, ErrCorrupt, "has length 4294967280"},
		{"trailer mismatch", func(w *ngBuilder) {
			w.epb(0, 1, pkt, len(pkt))
			b := w.Bytes()
			le.PutUint32(b[len(b)-4:], 8)
		}, 0, ErrCorrupt, "ends with length 8"},
		{"tsresol out of range", func(w *ngBuilder) {
			w.idb(LinkEthernet, 0, "", 42, 0)
		}, 0, ErrCorrupt, "timestamp resolution 10^-42"},
		{"bad byte order in later section", func(w *ngBuilder) {
			w.block(ngBlockSHB, []byte{1, 2, 3, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
		}, 0, ErrCorrupt, "byte-order magic"},
		{"cut inside a skipped block", func(w *ngBuilder) {
			w.block(0xbad, make([]byte, 4000))
			w.Truncate(w.Len() - 100)
		}, 0, ErrTruncated, "pcapng block at offset"},
		{"cut inside a block header", func(w *ngBuilder) {
			w.epb(0, 1, pkt, len(pkt))
			w.Write([]byte{6, 0, 0})
		}, 1, ErrTruncated, "cut off after 3 of 8 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := start()
			tc.build(w)
			src, err := NewReader(bytes.NewReader(w.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			pkts, err := readAll(t, src)
			if len(pkts) != tc.packets {
				t.Errorf("read %d packets, want %d", len(pkts), tc.packets)
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v\nwant %v containing %q", err, tc.want, tc.msg)
			}
			if strings.Contains(fmt.Sprint(err), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// TestPcapngSkipsHugeBlock skips a block larger than the read buffer.
func TestPcapngSkipsHugeBlock(t *testing.T) {
	pkt := frame(t, LinkEthernet, ipBytes(t, seg{src: "10.1.1.1", dst: "10.1.1.2", sport: 5, dport: 6}), 0)
	w := &ngBuilder{o: binary.LittleEndian}
	w.shb()
	w.idb(LinkEthernet, 0, "eth0", -1, 0)
	w.block(0x0000000a, make([]byte, 3*readBufferSize+4)) // decryption secrets
	w.epb(0, 1, pkt, len(pkt))
	src, err := NewReader(bytes.NewReader(w.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAll(t, src)
	if err != nil || len(pkts) != 1 || !bytes.Equal(pkts[0].Data, pkt) {
		t.Errorf("got %d packets, err %v; want the one after the big block", len(pkts), err)
	}
}
