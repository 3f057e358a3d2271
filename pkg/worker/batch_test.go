package worker

import (
	"sync"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// fakeBlock counts its releases.
type fakeBlock struct {
	mu       sync.Mutex
	released int
}

func (f *fakeBlock) Release() {
	f.mu.Lock()
	f.released++
	f.mu.Unlock()
}

func (f *fakeBlock) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.released
}

// TestRingBatches: a block split over batches, each shared by two
// consumers, goes back once, after the last consumer of the last batch,
// however the releases interleave.
func TestRingBatches(t *testing.T) {
	for round := range 50 {
		blk := &fakeBlock{}
		rb := &ringBlock{blk: blk}
		rb.refs.Store(1) // the reader's, during the walk
		data := make([]byte, 1500)
		p := capture.Packet{Timestamp: time.Unix(1, 0), Length: 1500, Data: data}
		var batches []*batch
		b := getRingBatch(0, rb)
		for i := range 3*batchPackets + 7 {
			if !b.aliasFits(len(data)) {
				batches = append(batches, b)
				b = getRingBatch(0, rb)
			}
			b.alias(&p, i%5 == 0)
		}
		batches = append(batches, b)
		var wg sync.WaitGroup
		for _, b := range batches {
			if b.size > batchBytes || len(b.pkts) > batchPackets {
				t.Fatalf("batch of %d packets, %d bytes", len(b.pkts), b.size)
			}
			if &b.pkts[0].Data[0] != &data[0] {
				t.Fatal("the batch copied the packet")
			}
			b.refs.Store(2)
			for range 2 {
				wg.Add(1)
				go func() { defer wg.Done(); b.release() }()
			}
		}
		if round%2 == 0 {
			wg.Wait() // consumers first, the reader's reference last
		}
		if n := blk.count(); n != 0 {
			t.Fatalf("released %d times while the reader still walks it", n)
		}
		rb.release()
		wg.Wait()
		if n := blk.count(); n != 1 {
			t.Fatalf("released %d times, want once", n)
		}
	}
}

// TestCopiedBatchHasNoBlock: batches of copies never release a block.
func TestCopiedBatchHasNoBlock(t *testing.T) {
	b := getBatch(3)
	p := capture.Packet{Data: []byte{0x45, 1, 2, 3}}
	b.add(&p, false)
	p.Data[1] = 9
	if b.ring != nil || b.pkts[0].Data[1] != 1 || b.iface != 3 {
		t.Fatalf("copied batch: ring %v, data %v", b.ring, b.pkts[0].Data)
	}
	b.refs.Store(1)
	b.release()
}
