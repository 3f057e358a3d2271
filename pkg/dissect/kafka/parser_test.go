package kafka

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/dissecttest"
)

func TestPairing(t *testing.T) {
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group = 5, "billing"
	syncResp := kmsg.NewPtrSyncGroupResponse()
	syncResp.Version = 5
	fire := produceScenario(9)
	fire.req.(*kmsg.ProduceRequest).Acks = 0
	hb := heartbeatScenario(4)
	md := metadataScenario(12)
	steps := []step{
		// Pipelined: three requests, then their responses out of order.
		cs(0, cat(encodeRequest(sync, 7), encodeRequest(fire.req, 8), encodeRequest(hb.req, 9), encodeRequest(md.req, 10))),
		sc(3, cat(encodeResponse(hb.resp, 9), encodeResponse(syncResp, 7), encodeResponse(hb.resp, 99))),
	}
	for cname, ch := range chunkings() {
		t.Run(cname, func(t *testing.T) {
			es, st := run(steps, ch, nil)
			var got []row
			for _, e := range es {
				got = append(got, rowOf(e))
			}
			want := []row{
				{Method: "Produce", Path: "orders", Status: "noreply", Key: 0, Version: 9, Corr: 8, ClientID: "shark-test",
					Topics: []string{"orders", "payments"}, Partitions: 3, Batches: 3, Records: 6, RecordBytes: 206, Compression: "zstd"},
				{Method: "Heartbeat", Path: "billing", Status: "REBALANCE_IN_PROGRESS", Key: 12, Version: 4, Corr: 9, ClientID: "shark-test",
					GroupID: "billing", ErrorCode: 27, KafkaError: "REBALANCE_IN_PROGRESS"},
				{Method: "SyncGroup", Status: "OK", Key: 14, Version: 5, Corr: 7, ClientID: "shark-test"},
				{Method: "Metadata", Path: "orders", Error: "no response", Key: 3, Version: 12, Corr: 10, ClientID: "shark-test",
					Topics: []string{"orders", "payments"}},
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(row{}, "RecordBytes")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if st.Dropped != 1 { // the response to 99
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestGap checks that decoding resumes after lost bytes: the client at the
// next request header, the broker at the next response to a waiting
// request.
func TestGap(t *testing.T) {
	a, b, c := heartbeatScenario(4), listOffsetsScenario(7), metadataScenario(9)
	reqB := encodeRequest(b.req, 2)
	steps := []step{
		cs(0, encodeRequest(a.req, 1)),
		cs(1, reqB[:20]),
		dissecttest.GapStep(dissect.ClientToServer, 30),
		cs(2, cat(reqB[50:], encodeRequest(c.req, 3))),
		sc(3, encodeResponse(a.resp, 1)),
		sc(4, encodeResponse(b.resp, 2)[:25]),
		dissecttest.GapStep(dissect.ServerToClient, 10),
		sc(5, encodeResponse(c.resp, 3)),
	}
	es, st := run(steps, chunkings()["whole"], nil)
	var got []string
	for _, e := range es {
		got = append(got, e.Method+" "+e.Status+e.Error)
	}
	want := []string{"Heartbeat REBALANCE_IN_PROGRESS", "Metadata UNKNOWN_TOPIC_OR_PARTITION"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if st.Resyncs != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestLargeFetch streams a 20 MB Fetch response in MSS-sized segments:
// every batch is counted and nothing is held.
func TestLargeFetch(t *testing.T) {
	var data []byte
	for range 200 {
		data = append(data, batch(100, 2, false, 100_000)...)
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.Topics = []kmsg.FetchRequestTopic{{Topic: "big", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0}}}}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 11
	resp.Topics = []kmsg.FetchResponseTopic{{Topic: "big", Partitions: []kmsg.FetchResponseTopicPartition{{Partition: 0, RecordBatches: data}}}}
	mss := func(n int) []int {
		var out []int
		for ; n > 1448; n -= 1448 {
			out = append(out, 1448)
		}
		return append(out, n)
	}
	es, _ := run([]step{cs(0, encodeRequest(req, 1)), sc(1, encodeResponse(resp, 1))}, mss, nil)
	if len(es) != 1 {
		t.Fatalf("%d entries", len(es))
	}
	k := es[0].Kafka
	if k.Batches != 200 || k.Records != 20000 || k.RecordBytes != int64(len(data)) || k.Compression != "snappy" {
		t.Errorf("batches %d records %d bytes %d compression %q", k.Batches, k.Records, k.RecordBytes, k.Compression)
	}
}

func TestDetect(t *testing.T) {
	hb := heartbeatScenario(4)
	req := encodeRequest(hb.req, 1)
	tests := []struct {
		name       string
		data       []byte
		want       dissect.Verdict
		fromClient bool
	}{
		{"request", req, dissect.Yes, true},
		{"request header only", req[:14], dissect.Maybe, true},
		{"short", req[:6], dissect.Maybe, true},
		// A response says little: a size and a correlation id. (With a small
		// correlation id it may even read as a request: detection sees the
		// client, who speaks first, in all but mid-connection captures.)
		{"response", encodeResponse(hb.resp, 0x7fff0001), dissect.Maybe, false},
		{"unknown api, or a response", cat([]byte{0, 0, 0, 20, 0x7f, 0, 0, 0}, req[8:]), dissect.Maybe, false},
		{"binary client id, or a response", cat(req[:14], []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), dissect.Maybe, false},
		{"http", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), dissect.No, false},
		{"tls", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), dissect.No, false},
		{"postgres startup", []byte("\x00\x00\x00\x29\x00\x03\x00\x00user\x00app\x00database\x00shop\x00\x00"), dissect.Maybe, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, from := Detect(tt.data)
			if v != tt.want || (v == dissect.Yes && from != tt.fromClient) {
				t.Errorf("Detect = %v, %v; want %v, %v", v, from, tt.want, tt.fromClient)
			}
		})
	}
}
