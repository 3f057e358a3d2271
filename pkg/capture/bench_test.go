package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

const benchCaptureSize = 50 << 20

// benchFrames returns Ethernet frames in a web-like mix: bare ACKs,
// requests, full-size data segments, some IPv6 and UDP.
func benchFrames(tb testing.TB) [][]byte {
	tb.Helper()
	mk := func(s seg, n int) []byte {
		s.payload = bytes.Repeat([]byte("x"), n)
		return frame(tb, LinkEthernet, ipBytes(tb, s), 0)
	}
	v6 := seg{v6: true, src: "fd00::1", dst: "fd00::2", sport: 443, dport: 51000}
	dns := seg{udp: true, src: "10.0.0.10", dst: "10.0.0.53", sport: 40000, dport: 53}
	return [][]byte{
		mk(tcp4, 0), mk(tcp4, 0), mk(tcp4, 300), mk(tcp4, 1448), mk(tcp4, 1448),
		mk(tcp4, 1448), mk(v6, 0), mk(v6, 1428), mk(v6, 600), mk(dns, 40),
	}
}

var benchFiles struct {
	sync.Once
	pcap, pcapng []byte
	packets      int
}

// benchCaptures builds the same ~50 MB of traffic as pcap and pcapng.
func benchCaptures(tb testing.TB) ([]byte, []byte, int) {
	benchFiles.Do(func() {
		frames := benchFrames(tb)
		var pc, ng bytes.Buffer
		pw := pcapgo.NewWriterNanos(&pc)
		if err := pw.WriteFileHeader(MaxPacketLen, layers.LinkTypeEthernet); err != nil {
			tb.Fatal(err)
		}
		nw, err := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
		if err != nil {
			tb.Fatal(err)
		}
		ts := t0
		for i := 0; pc.Len() < benchCaptureSize; i++ {
			f := frames[i%len(frames)]
			if binary.BigEndian.Uint16(f[12:]) == etherIPv4 && f[14+9] == IPProtoTCP {
				binary.BigEndian.PutUint32(f[14+20+4:], uint32(i)) // vary the seq
			}
			ts = ts.Add(37 * time.Microsecond)
			ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(f), Length: len(f)}
			if err := pw.WritePacket(ci, f); err != nil {
				tb.Fatal(err)
			}
			if err := nw.WritePacket(ci, f); err != nil {
				tb.Fatal(err)
			}
			benchFiles.packets++
		}
		nw.Flush()
		benchFiles.pcap, benchFiles.pcapng = pc.Bytes(), ng.Bytes()
	})
	return benchFiles.pcap, benchFiles.pcapng, benchFiles.packets
}

func reportPerPacket(b *testing.B, packets int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(packets), "ns/pkt")
}

// reportCPU reports MB per CPU second (all threads, GC included): the
// number to trust when other processes compete for the cores.
func reportCPU(b *testing.B, bytes int64, cpu time.Duration) {
	if cpu > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

func readOurs(b *testing.B, file []byte, decode bool) int {
	src, err := NewReader(bytes.NewReader(file))
	if err != nil {
		b.Fatal(err)
	}
	d := NewDecoder(DecoderOptions{})
	var p Packet
	var f Frame
	n := 0
	for {
		if err := src.Next(&p); err == io.EOF {
			return n
		} else if err != nil {
			b.Fatal(err)
		}
		if !decode || d.Decode(&p, &f) {
			n++
		}
	}
}

type zeroCopyReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// readGopacket reads with pcapgo and optionally decodes with gopacket's
// allocation-free DecodingLayerParser, the fastest gopacket path.
func readGopacket(b *testing.B, r zeroCopyReader, decode bool) int {
	var eth layers.Ethernet
	var ip4 layers.IPv4
	var ip6 layers.IPv6
	var tcp layers.TCP
	var udp layers.UDP
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &udp)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	n := 0
	for {
		data, _, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return n
		} else if err != nil {
			b.Fatal(err)
		}
		if decode {
			if err := parser.DecodeLayers(data, &decoded); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
}

func benchRead(b *testing.B, file []byte, packets int, read func() int) {
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if n := read(); n != packets {
			b.Fatalf("read %d packets, want %d", n, packets)
		}
	}
	reportCPU(b, int64(len(file)), processCPU()-cpu)
	reportPerPacket(b, packets)
}

func BenchmarkReadPcap(b *testing.B) {
	file, _, packets := benchCaptures(b)
	b.Run("ours", func(b *testing.B) {
		benchRead(b, file, packets, func() int { return readOurs(b, file, false) })
	})
	b.Run("pcapgo", func(b *testing.B) {
		benchRead(b, file, packets, func() int {
			r, err := pcapgo.NewReader(bytes.NewReader(file))
			if err != nil {
				b.Fatal(err)
			}
			return readGopacket(b, r, false)
		})
	})
}

func BenchmarkReadPcapng(b *testing.B) {
	_, file, packets := benchCaptures(b)
	b.Run("ours", func(b *testing.B) {
		benchRead(b, file, packets, func() int { return readOurs(b, file, false) })
	})
	b.Run("pcapgo", func(b *testing.B) {
		benchRead(b, file, packets, func() int {
			r, err := pcapgo.NewNgReader(bytes.NewReader(file), pcapgo.DefaultNgReaderOptions)
			if err != nil {
				b.Fatal(err)
			}
			return readGopacket(b, r, false)
		})
	})
}

// BenchmarkReadDecode is the offline hot path: read and decode to TCP/UDP.
func BenchmarkReadDecode(b *testing.B) {
	file, _, packets := benchCaptures(b)
	b.Run("ours", func(b *testing.B) {
		benchRead(b, file, packets, func() int { return readOurs(b, file, true) })
	})
	b.Run("gopacket", func(b *testing.B) {
		benchRead(b, file, packets, func() int {
			r, err := pcapgo.NewReader(bytes.NewReader(file))
			if err != nil {
				b.Fatal(err)
			}
			return readGopacket(b, r, true)
		})
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, lt := range []LinkType{LinkEthernet, LinkSLL2, LinkRaw} {
		b.Run(lt.String(), func(b *testing.B) {
			var pkts []Packet
			size := 0
			for _, s := range []seg{tcp4, udp6} {
				data := frame(b, lt, ipBytes(b, s), 0)
				pkts = append(pkts, Packet{Timestamp: t0, LinkType: lt, Length: len(data), Data: data})
				size += len(data)
			}
			d := NewDecoder(DecoderOptions{})
			var f Frame
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				for i := range pkts {
					if !d.Decode(&pkts[i], &f) {
						b.Fatal("Decode = false")
					}
				}
			}
			reportCPU(b, int64(size), processCPU()-cpu)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pkts)), "ns/pkt")
		})
	}
}

func BenchmarkDefrag(b *testing.B) {
	frags := fragmentsOf(b, bigUDP(false), 1480)
	size := 0
	for _, f := range frags {
		size += len(f)
	}
	d := NewDecoder(DecoderOptions{})
	var f Frame
	ts := t0
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for i := len(frags) - 1; i >= 0; i-- { // out of order
			ts = ts.Add(time.Microsecond)
			d.Decode(&Packet{Timestamp: ts, LinkType: LinkRaw, Length: len(frags[i]), Data: frags[i]}, &f)
		}
	}
	if d.Stats().Reassembled == 0 {
		b.Fatal("nothing reassembled")
	}
}
