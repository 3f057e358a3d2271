package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// FuzzParser feeds arbitrary bytes as both directions, split and gapped
// as the control byte says, and checks that state and entries stay bounded.
func FuzzParser(f *testing.F) {
	for _, sc := range []scenario{produceScenario(9), produceScenario(2), fetchScenario(13), metadataScenario(12),
		offsetFetchScenario(8), findCoordinatorScenario(4), apiVersionsScenario(3)} {
		f.Add(encodeRequest(sc.req, 3), encodeResponse(sc.resp, 3), uint8(13))
	}
	f.Add(encodeRequest(kmsg.NewPtrSyncGroupRequest(), 1), []byte{0, 0, 0, 4, 0, 0, 0, 1}, uint8(0x80|4))
	f.Fuzz(func(t *testing.T, cli, srv []byte, ctl uint8) {
		Detect(cli)
		Detect(srv)
		var c dissecttest.Collector
		p := newParser(testConn(), &c, newTopicIDs())
		seg := int(ctl&0x3F) + 1
		for i := 0; i < max(len(cli), len(srv)); i += seg {
			if i < len(cli) {
				p.Data(dissect.ClientToServer, cli[i:min(i+seg, len(cli))], t0.Add(time.Duration(i)*time.Millisecond))
			}
			if ctl&0x80 != 0 && i == seg {
				p.Gap(dissect.ServerToClient, 7)
			}
			if i < len(srv) {
				p.Data(dissect.ServerToClient, srv[i:min(i+seg, len(srv))], t0.Add(time.Duration(i+1)*time.Millisecond))
			}
		}
		if len(p.pending) > maxPending {
			t.Fatalf("%d pending", len(p.pending))
		}
		p.End(t0.Add(time.Hour))
		for _, h := range p.half {
			if h != nil {
				t.Fatal("a decoder outlived End")
			}
		}
		// Each entry needs a request of at least 14 bytes.
		if len(c.Entries) > len(cli)/14+1 {
			t.Fatalf("%d entries from %d bytes", len(c.Entries), len(cli))
		}
		for _, e := range c.Entries {
			k := e.Kafka
			if k == nil || len(k.Topics) > maxTopics || len(k.ClientID) > maxString+4 || k.Records < 0 {
				t.Fatalf("unbounded entry %+v", k)
			}
		}
	})
}

func BenchmarkProduce(b *testing.B) {
	sc := produceScenario(11)
	req, resp := encodeRequest(sc.req, 1), encodeResponse(sc.resp, 1)
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	p := newParser(testConn(), dissect.EmitFunc(func(*entry.Entry) {}), newTopicIDs())
	defer p.End(t0)
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Data(dissect.ClientToServer, req, ts)
		p.Data(dissect.ServerToClient, resp, ts)
	}
}

func BenchmarkFetchLarge(b *testing.B) {
	var data []byte
	for range 64 {
		data = append(data, batch(50, 4, false, 16000)...)
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.Topics = []kmsg.FetchRequestTopic{{Topic: "big", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0}}}}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	resp.Topics = []kmsg.FetchResponseTopic{{Topic: "big", Partitions: []kmsg.FetchResponseTopicPartition{{Partition: 0, RecordBatches: data}}}}
	q, r := encodeRequest(req, 1), encodeResponse(resp, 1)
	b.SetBytes(int64(len(q) + len(r)))
	b.ReportAllocs()
	p := newParser(testConn(), dissect.EmitFunc(func(*entry.Entry) {}), newTopicIDs())
	defer p.End(t0)
	for i := 0; b.Loop(); i++ {
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		p.Data(dissect.ClientToServer, q, ts)
		for off := 0; off < len(r); off += 1448 {
			p.Data(dissect.ServerToClient, r[off:min(off+1448, len(r))], ts)
		}
	}
}

func BenchmarkDetect(b *testing.B) {
	q := encodeRequest(heartbeatScenario(4).req, 1)
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		Detect(q)
	}
}
