package kafka

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	idOrders   = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	idPayments = [16]byte{0: 9, 1: 9, 15: 1}
)

// scenario is one API at one version: the request and response franz-go's
// kmsg encodes, and the entry expected from them.
type scenario struct {
	req  kmsg.Request
	resp kmsg.Response
	want row
}

func produceScenario(v int16) scenario {
	var p0, p1, pay []byte
	want := row{Topics: []string{"orders", "payments"}, Partitions: 3, ErrorCode: 6, Status: "NOT_LEADER_FOR_PARTITION"}
	if v <= 2 { // message sets of magic 0 and 1
		p0 = cat(legacyMessage(1, "a"), legacyMessage(1, "b"))
		p1, pay = legacyMessage(1, "c"), legacyMessage(0, "d")
		want.Batches, want.Records, want.Compression = 4, 4, "gzip"
	} else {
		p0, p1, pay = batch(3, 4, false, 40), batch(2, 4, false, 30), batch(1, 4, false, 10)
		want.Batches, want.Records, want.Compression = 3, 6, "zstd"
	}
	want.RecordBytes = int64(len(p0) + len(p1) + len(pay))
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = v, -1
	req.Topics = []kmsg.ProduceRequestTopic{
		{Topic: "orders", TopicID: idOrders, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: p0}, {Partition: 1, Records: p1}}},
		{Topic: "payments", TopicID: idPayments, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: pay}}},
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = v
	resp.Topics = []kmsg.ProduceResponseTopic{
		{Topic: "orders", TopicID: idOrders, Partitions: []kmsg.ProduceResponseTopicPartition{{Partition: 0}, {Partition: 1}}},
		{Topic: "payments", TopicID: idPayments, Partitions: []kmsg.ProduceResponseTopicPartition{{Partition: 0, ErrorCode: 6}}},
	}
	return scenario{req, resp, want}
}

func fetchScenario(v int16) scenario {
	data := cat(batch(5, 3, false, 100), batch(1, 0, true, 20))
	partial := batch(9, 3, false, 200)[:60]
	want := row{Topics: []string{"orders"}, Partitions: 2, Status: "OK", Batches: 2, Records: 5, RecordBytes: int64(len(data)), Compression: "lz4"}
	req := kmsg.NewPtrFetchRequest()
	req.Version = v
	req.Topics = []kmsg.FetchRequestTopic{{Topic: "orders", TopicID: idOrders,
		Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: 100}, {Partition: 1}}}}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = v
	resp.Topics = []kmsg.FetchResponseTopic{{Topic: "orders", TopicID: idOrders,
		Partitions: []kmsg.FetchResponseTopicPartition{{Partition: 0, RecordBatches: cat(data, partial)}, {Partition: 1}}}}
	return scenario{req, resp, want}
}

func listOffsetsScenario(v int16) scenario {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = v
	req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "orders", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1}, {Partition: 1, Timestamp: -2}}}}
	resp := kmsg.NewPtrListOffsetsResponse()
	resp.Version = v
	resp.Topics = []kmsg.ListOffsetsResponseTopic{{Topic: "orders", Partitions: []kmsg.ListOffsetsResponseTopicPartition{{Partition: 0}, {Partition: 1, ErrorCode: 1}}}}
	return scenario{req, resp, row{Topics: []string{"orders"}, Partitions: 2, ErrorCode: 1, Status: "OFFSET_OUT_OF_RANGE"}}
}

func metadataScenario(v int16) scenario {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = v
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("orders")}, {Topic: kmsg.StringPtr("payments")}}
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = v
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "localhost", Port: 9092}}
	resp.Topics = []kmsg.MetadataResponseTopic{
		{Topic: kmsg.StringPtr("orders"), TopicID: idOrders, Partitions: []kmsg.MetadataResponseTopicPartition{{Partition: 0, Replicas: []int32{1}, ISR: []int32{1}}, {Partition: 1}}},
		{Topic: kmsg.StringPtr("payments"), TopicID: idPayments, ErrorCode: 3},
	}
	return scenario{req, resp, row{Topics: []string{"orders", "payments"}, ErrorCode: 3, Status: "UNKNOWN_TOPIC_OR_PARTITION"}}
}

func offsetCommitScenario(v int16) scenario {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group = v, "billing"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", TopicID: idOrders,
		Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 10, Metadata: kmsg.StringPtr("m")}, {Partition: 1, Offset: 5}}}}
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = v
	resp.Topics = []kmsg.OffsetCommitResponseTopic{{Topic: "orders", TopicID: idOrders,
		Partitions: []kmsg.OffsetCommitResponseTopicPartition{{Partition: 0}, {Partition: 1, ErrorCode: 22}}}}
	return scenario{req, resp, row{Path: "billing", GroupID: "billing", Topics: []string{"orders"}, Partitions: 2, ErrorCode: 22, Status: "ILLEGAL_GENERATION"}}
}

func offsetFetchScenario(v int16) scenario {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = v, "billing"
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1}}}
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "billing", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", TopicID: idOrders, Partitions: []int32{0, 1}}}}}
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = v
	resp.Topics = []kmsg.OffsetFetchResponseTopic{{Topic: "orders", Partitions: []kmsg.OffsetFetchResponseTopicPartition{{Partition: 0, Offset: 10}, {Partition: 1, Offset: -1}}}}
	resp.Groups = []kmsg.OffsetFetchResponseGroup{{Group: "billing", Topics: []kmsg.OffsetFetchResponseGroupTopic{{Topic: "orders", TopicID: idOrders,
		Partitions: []kmsg.OffsetFetchResponseGroupTopicPartition{{Partition: 0, Offset: 10}, {Partition: 1, Offset: -1}}}}}}
	return scenario{req, resp, row{Path: "billing", GroupID: "billing", Topics: []string{"orders"}, Partitions: 2, Status: "OK"}}
}

func findCoordinatorScenario(v int16) scenario {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorKey, req.CoordinatorKeys = v, "billing", []string{"billing"}
	resp := kmsg.NewPtrFindCoordinatorResponse()
	resp.Version, resp.ErrorCode = v, 15
	resp.Coordinators = []kmsg.FindCoordinatorResponseCoordinator{{Key: "billing", ErrorCode: 15}}
	return scenario{req, resp, row{Path: "billing", GroupID: "billing", ErrorCode: 15, Status: "COORDINATOR_NOT_AVAILABLE"}}
}

func joinGroupScenario(v int16) scenario {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.ProtocolType = v, "billing", "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1, 2}}}
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version, resp.ErrorCode = v, 79
	return scenario{req, resp, row{Path: "billing", GroupID: "billing", ErrorCode: 79, Status: "MEMBER_ID_REQUIRED"}}
}

func heartbeatScenario(v int16) scenario {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.MemberID = v, "billing", "m-1"
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version, resp.ErrorCode = v, 27
	return scenario{req, resp, row{Path: "billing", GroupID: "billing", ErrorCode: 27, Status: "REBALANCE_IN_PROGRESS"}}
}

func apiVersionsScenario(v int16) scenario {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version, req.ClientSoftwareName, req.ClientSoftwareVersion = v, "kgo", "1.22"
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = v
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 0, MaxVersion: 13}, {ApiKey: 1, MaxVersion: 18}}
	want := row{Status: "OK"}
	if v >= 3 {
		want.Path = "kgo"
	}
	return scenario{req, resp, want}
}

// TestVersions runs every decoded API at every version kmsg knows, fed
// whole, byte by byte and in random pieces.
func TestVersions(t *testing.T) {
	makers := map[string]func(int16) scenario{
		"Produce": produceScenario, "Fetch": fetchScenario, "ListOffsets": listOffsetsScenario,
		"Metadata": metadataScenario, "OffsetCommit": offsetCommitScenario, "OffsetFetch": offsetFetchScenario,
		"FindCoordinator": findCoordinatorScenario, "JoinGroup": joinGroupScenario, "Heartbeat": heartbeatScenario,
		"ApiVersions": apiVersionsScenario,
	}
	for name, mk := range makers {
		maxV := mk(0).req.MaxVersion()
		for v := int16(0); v <= maxV; v++ {
			sc0 := mk(v)
			ids := newTopicIDs()
			ids.learn(idOrders, "orders")
			ids.learn(idPayments, "payments")
			want := sc0.want
			want.Method, want.Key, want.Version, want.Corr, want.ClientID = name, sc0.req.Key(), v, 41+int32(v), "shark-test"
			if want.Path == "" && len(want.Topics) > 0 {
				want.Path = want.Topics[0]
			}
			if want.ErrorCode != 0 {
				want.KafkaError = want.Status
			}
			adjust(&want, name, v)
			steps := []step{cs(0, encodeRequest(sc0.req, 41+int32(v))), sc(5, encodeResponse(sc0.resp, 41+int32(v)))}
			for cname, ch := range chunkings() {
				t.Run(fmt.Sprintf("%s/v%d/%s", name, v, cname), func(t *testing.T) {
					es, st := run(steps, ch, ids)
					if len(es) != 1 {
						t.Fatalf("%d entries, stats %+v", len(es), st)
					}
					if diff := cmp.Diff(want, rowOf(es[0])); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
					if es[0].ElapsedUS != 5000 || es[0].Size.Request != int64(len(steps[0].Data)) || es[0].Size.Response != int64(len(steps[1].Data)) {
						t.Errorf("elapsed %d, size %+v", es[0].ElapsedUS, es[0].Size)
					}
				})
			}
		}
	}
}

// adjust accounts for what older versions of an API cannot carry.
func adjust(w *row, name string, v int16) {
	switch {
	case name == "Metadata" && v == 0:
		// v0 has no nullable topic list; kmsg still writes ours.
	case name == "FindCoordinator" && v >= 4:
	case name == "ListOffsets" && v == 0:
	}
}

// TestNames checks the API and error names against franz-go's tables.
func TestNames(t *testing.T) {
	for key := int16(0); int(key) < len(apiNames); key++ {
		if got, want := apiName(key), kmsg.NameForKey(key); !strings.EqualFold(got, want) &&
			!(got == "AlterPartitionReassignments" && want == "AlterPartitionAssignments") {
			t.Errorf("api %d: %q, kmsg %q", key, got, want)
		}
	}
	for code := int16(-1); int(code) <= len(errorNames); code++ {
		if code == 0 {
			continue
		}
		err := kerr.ErrorForCode(code)
		if ke, ok := err.(*kerr.Error); !ok || ke.Message != errorName(code) {
			t.Errorf("error %d: %q, kerr %v", code, errorName(code), err)
		}
	}
}

// TestTopicIDs checks that ids resolve through a Metadata response seen on
// another connection of the same Protocol, and show as ids otherwise.
func TestTopicIDs(t *testing.T) {
	ids := newTopicIDs()
	prod := produceScenario(13)
	prodSteps := []step{cs(0, encodeRequest(prod.req, 1)), sc(1, encodeResponse(prod.resp, 1))}
	es, _ := run(prodSteps, chunkings()["whole"], ids)
	want := []string{base64.RawURLEncoding.EncodeToString(idOrders[:]), base64.RawURLEncoding.EncodeToString(idPayments[:])}
	if diff := cmp.Diff(want, es[0].Kafka.Topics); diff != "" {
		t.Errorf("unresolved (-want +got):\n%s", diff)
	}
	md := metadataScenario(12)
	run([]step{cs(0, encodeRequest(md.req, 2)), sc(1, encodeResponse(md.resp, 2))}, chunkings()["whole"], ids)
	es, _ = run(prodSteps, chunkings()["whole"], ids)
	if diff := cmp.Diff([]string{"orders", "payments"}, es[0].Kafka.Topics); diff != "" {
		t.Errorf("resolved (-want +got):\n%s", diff)
	}
}
