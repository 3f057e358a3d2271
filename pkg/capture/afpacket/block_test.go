package afpacket

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// macOff is where the kernel puts a SOCK_DGRAM packet after its header:
// TPACKET_ALIGN(sizeof(tpacket3_hdr)) + 16.
const macOff = 64

// buildBlock lays out pkts in a block of size bytes as the kernel does.
func buildBlock(size int, pkts ...[]byte) []byte {
	blk := make([]byte, size)
	ne.PutUint32(blk[offBlockStatus:], tpStatusUser)
	ne.PutUint32(blk[offNumPkts:], uint32(len(pkts)))
	ne.PutUint32(blk[offFirstPkt:], blockDescLen)
	off := blockDescLen
	for i, p := range pkts {
		h := blk[off:]
		next := (macOff + len(p) + 15) &^ 15
		if i < len(pkts)-1 {
			ne.PutUint32(h[offNextPkt:], uint32(next))
		}
		ne.PutUint32(h[offSec:], uint32(1700000000+i))
		ne.PutUint32(h[offNsec:], uint32(i*1000))
		ne.PutUint32(h[offSnapLen:], uint32(len(p)))
		ne.PutUint32(h[offWireLen:], uint32(len(p)+100))
		ne.PutUint16(h[offMac:], macOff)
		ne.PutUint16(h[offMac+2:], macOff)
		copy(h[macOff:], p)
		off += next
	}
	return blk
}

func walk(blk []byte) (pkts []rawPacket, corrupt bool, lost uint32) {
	w := newWalker(blk)
	var p rawPacket
	for w.next(&p) {
		pkts = append(pkts, p)
	}
	return pkts, w.corrupt, w.lost
}

func TestWalker(t *testing.T) {
	a, b, c := bytes.Repeat([]byte{0x45}, 20), bytes.Repeat([]byte{0x60}, 1500), []byte{0x45, 1, 2}
	good := buildBlock(4096, a, b, c)
	got, corrupt, _ := walk(good)
	if corrupt || len(got) != 3 {
		t.Fatalf("walked %d packets, corrupt %v", len(got), corrupt)
	}
	for i, want := range [][]byte{a, b, c} {
		if !bytes.Equal(got[i].data, want) || got[i].wireLen != len(want)+100 || got[i].sec != uint32(1700000000+i) || got[i].nsec != uint32(i*1000) {
			t.Errorf("packet %d: %d bytes of %d, ts %d.%d", i, len(got[i].data), got[i].wireLen, got[i].sec, got[i].nsec)
		}
		if cap(got[i].data) != len(got[i].data) {
			t.Errorf("packet %d: capacity %d reaches past it", i, cap(got[i].data))
		}
	}

	corruptions := []struct {
		name          string
		mutate        func(blk []byte)
		packets, lost int
	}{
		{"short block", nil, 0, 0}, // no count to read
		{"first offset inside the descriptor", func(b []byte) { ne.PutUint32(b[offFirstPkt:], 8) }, 0, 3},
		{"first offset past the block", func(b []byte) { ne.PutUint32(b[offFirstPkt:], 1<<31) }, 0, 3},
		{"snap length past the block", func(b []byte) { ne.PutUint32(b[blockDescLen+offSnapLen:], 5000) }, 0, 3},
		{"mac offset inside the header", func(b []byte) { ne.PutUint16(b[blockDescLen+offMac:], 4) }, 0, 3},
		{"next offset zero", func(b []byte) { ne.PutUint32(b[blockDescLen+offNextPkt:], 0) }, 0, 3},
		{"next offset past the block", func(b []byte) { ne.PutUint32(b[blockDescLen+offNextPkt:], 4090) }, 0, 3},
		{"more packets than written", func(b []byte) { ne.PutUint32(b[offNumPkts:], 4) }, 2, 2}, // the third has no next
	}
	for _, tt := range corruptions {
		blk := buildBlock(4096, a, b, c)
		if tt.mutate == nil {
			blk = blk[:blockDescLen-1]
		} else {
			tt.mutate(blk)
		}
		got, corrupt, lost := walk(blk)
		if !corrupt || len(got) != tt.packets || int(lost) != tt.lost {
			t.Errorf("%s: %d packets, %d lost, corrupt %v; want %d, %d lost, corrupt", tt.name, len(got), lost, corrupt, tt.packets, tt.lost)
		}
	}
	if got, corrupt, _ := walk(buildBlock(4096)); len(got) != 0 || corrupt {
		t.Errorf("empty block: %d packets, corrupt %v", len(got), corrupt)
	}
}

func FuzzWalker(f *testing.F) {
	f.Add(buildBlock(4096, []byte{0x45, 0, 0, 20}, bytes.Repeat([]byte{1}, 1500)))
	f.Add(buildBlock(256, []byte{0x60}))
	f.Add(buildBlock(128))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, blk []byte) {
		w := newWalker(blk)
		limit := w.left
		var p rawPacket
		n := uint32(0)
		for w.next(&p) {
			n++
			if n > limit {
				t.Fatalf("%d packets, the block says %d", n, limit)
			}
			if len(p.data) > len(blk) || p.wireLen < len(p.data) {
				t.Fatalf("packet of %d bytes (%d on the wire) in a block of %d", len(p.data), p.wireLen, len(blk))
			}
		}
		if diff := cmp.Diff(uint32(0), w.left); diff != "" && !w.corrupt {
			t.Fatalf("walk ended early without corruption: %s", diff)
		}
		if w.corrupt && len(blk) >= blockDescLen && n+w.lost != limit && limit != 0 {
			t.Fatalf("%d packets read and %d lost, the block says %d", n, w.lost, limit)
		}
	})
}
