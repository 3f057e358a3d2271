package worker

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// BenchmarkCapturePath measures what a capture goroutine and the mux do
// per packet: copy 1500-byte packets into batches, queue them, and hand
// them to the pipeline's reader.
func BenchmarkCapturePath(b *testing.B) {
	data, p, tbl, q, m := capturePathSetup()
	var out capture.Packet
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var cur *batch
	for i := 0; i < b.N; i++ {
		if cur != nil && !cur.fits(len(data)) {
			cur.refs.Store(1)
			q <- cur
			cur = nil
			drain(b, m, q, &out)
		}
		if cur == nil {
			cur = getBatch(0)
		}
		cur.add(&p, tbl.load().skipDissect(1, data))
	}
}

// BenchmarkAnnotate measures naming the pods of an entry's ends.
func BenchmarkAnnotate(b *testing.B) {
	var pods []*podInfo
	for i := 0; i < 50; i++ {
		p := &podInfo{index: i, namespace: "shop", pod: "pod", netns: uint64(i)}
		a := []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i), 1})}
		p.ips.Store(&a)
		pods = append(pods, p)
	}
	tbl := buildTable(pods, pods)
	e := &entry.Entry{Src: entry.Endpoint{IP: "10.9.9.9", Port: 4000}, Dst: entry.Endpoint{IP: "10.0.7.1", Port: 80}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.Dst.Pod = ""
		tbl.annotate(e, 7, "node-1")
	}
	if e.Dst.Pod != "pod" {
		b.Fatal("not annotated")
	}
}

// BenchmarkCapturePathAlias is BenchmarkCapturePath for batches that alias
// a ring block instead of copying: what the reader does while the
// consumers keep up.
func BenchmarkCapturePathAlias(b *testing.B) {
	data, p, tbl, q, m := capturePathSetup()
	var out capture.Packet
	blk := &fakeBlock{}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var cur *batch
	var rb *ringBlock
	for i := 0; i < b.N; i++ {
		if cur != nil && !cur.aliasFits(len(data)) {
			cur.refs.Store(1)
			q <- cur
			cur = nil
			rb.release()
			drain(b, m, q, &out)
		}
		if cur == nil {
			rb = &ringBlock{blk: blk}
			rb.refs.Store(1)
			cur = getRingBatch(0, rb)
		}
		cur.alias(&p, tbl.load().skipDissect(1, data))
	}
}

// drain reads every queued batch through the mux, as dissection does.
func drain(b *testing.B, m *mux, q chan *batch, out *capture.Packet) {
	for len(q) > 0 || m.cur != nil {
		if err := m.Next(out); err != nil {
			b.Fatal(err)
		}
		if m.cur != nil && m.i == len(m.cur.pkts) {
			m.cur.release()
			m.cur = nil
		}
	}
}

// capturePathSetup is what the capture path benchmarks share: a 1500-byte
// IPv4 packet, a one-pod table, and a mux over a batch queue.
func capturePathSetup() ([]byte, capture.Packet, *tableStore, chan *batch, *mux) {
	data := make([]byte, 1500)
	data[0] = 0x45
	p := capture.Packet{Timestamp: time.Unix(1, 0), Length: len(data), LinkType: capture.LinkRaw, Data: data}
	tbl := &tableStore{}
	tbl.p.Store(buildTable([]*podInfo{{index: 0}}, nil))
	q := make(chan *batch, 64)
	return data, p, tbl, q, newMux(q, tbl.load)
}
