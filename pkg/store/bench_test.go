package store

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

func benchBatch(n, size int) []capture.Packet {
	batch := make([]capture.Packet, n)
	ts := t0
	for i := range batch {
		ts = ts.Add(time.Microsecond)
		batch[i] = pkt(ts, rawPacket(6, ap("10.0.0.1:40000"), ap("10.0.0.2:80"), capture.TCPAck, size))
	}
	return batch
}

// BenchmarkWrite measures storing 1500-byte packets in batches of 256.
func BenchmarkWrite(b *testing.B) {
	s := openStore(b, Options{Limit: 64 << 20})
	id := s.AddInterface(capture.Interface{Name: "a/b", LinkType: capture.LinkRaw})
	batch := benchBatch(256, 1460)
	b.SetBytes(int64(256 * len(batch[0].Data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Write(id, batch)
	}
}

// BenchmarkExportPod measures exporting one pod's packets from a full
// store.
func BenchmarkExportPod(b *testing.B) {
	s := openStore(b, Options{Limit: 32 << 20})
	id := s.AddInterface(capture.Interface{Name: "a/b", LinkType: capture.LinkRaw})
	batch := benchBatch(256, 1460)
	for i := 0; i < 64; i++ {
		s.Write(id, batch)
	}
	var buf bytes.Buffer
	b.SetBytes(int64(64 * 256 * len(batch[0].Data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if _, err := s.Export(context.Background(), &buf, Query{Pods: []string{"a/b"}}); err != nil {
			b.Fatal(err)
		}
	}
}
