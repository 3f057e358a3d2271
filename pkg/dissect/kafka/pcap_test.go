package kafka_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/internal/tshark"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/kafka"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
)

var testdata = filepath.Join("..", "..", "..", "testdata")

// dissectFile runs a capture through the whole engine (detection,
// reassembly, this dissector, JSON rendering). One shard: Produce and
// Fetch name topics by id, which resolve through a Metadata response seen
// on another connection first, and only one shard keeps that order.
func dissectFile(t *testing.T, name string) []*entry.Entry {
	t.Helper()
	src, err := capture.Open(filepath.Join(testdata, name))
	if err != nil {
		t.Skip(err)
	}
	defer src.Close()
	var out bytes.Buffer
	reg := dissect.NewRegistry(dissect.DefaultOptions(), kafka.Protocol())
	renderJSON := func(dst []byte, e *entry.Entry) []byte { return append(render.AppendJSON(dst, e), '\n') }
	if _, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{Registry: reg, Render: renderJSON, Shards: 1}); err != nil {
		t.Fatal(err)
	}
	var es []*entry.Entry
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		e := new(entry.Entry)
		if err := json.Unmarshal(sc.Bytes(), e); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

type batches struct {
	Batches     int            `json:"batches"`
	Records     int64          `json:"records"`
	Compression map[string]int `json:"compression"`
	Topics      map[string]int `json:"topics"`
}

// TestCapture compares the entries of testdata/kafka.pcap (franz-go's kgo
// against its kfake broker, recorded by hack/record-protocols-a.sh) with
// what kgo's hooks logged: requests and responses by API, and the record
// batches produced and fetched.
func TestCapture(t *testing.T) {
	var want struct {
		Kafka struct {
			Requests  map[string]int `json:"requests"`
			Responses map[string]int `json:"responses"`
			Produced  batches        `json:"produced"`
			Fetched   batches        `json:"fetched"`
		} `json:"kafka"`
	}
	b, err := os.ReadFile(filepath.Join(testdata, "kafka.expected.json"))
	if err != nil {
		t.Skip(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	// kgo names a few APIs in its own case (InitProducerID).
	lower := func(m map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range m {
			out[strings.ToLower(k)] += v
		}
		return out
	}
	requests, responses := map[string]int{}, map[string]int{}
	produced, fetched := batches{Compression: map[string]int{}, Topics: map[string]int{}}, batches{Compression: map[string]int{}}
	for _, e := range dissectFile(t, "kafka.pcap") {
		k := e.Kafka
		if e.Proto != entry.ProtoKafka || k == nil {
			t.Fatalf("entry of %s: %+v", e.Proto, e)
		}
		requests[strings.ToLower(e.Method)]++
		if e.Error == "" {
			responses[strings.ToLower(e.Method)]++
		}
		var acc *batches
		switch e.Method {
		case "Produce":
			acc = &produced
			produced.Topics[k.Topic] += int(k.Records)
		case "Fetch":
			acc = &fetched
		default:
			continue
		}
		acc.Batches += k.Batches
		acc.Records += k.Records
		for _, c := range strings.Split(k.Compression, ",") {
			if c != "" {
				acc.Compression[c]++ // entries using the codec
			}
		}
	}
	// An entry lists the codecs of its batches, not how many used each:
	// compare which codecs were seen. Each producer used one codec, so
	// each Produce entry has batches of one codec, or none.
	seen := func(m map[string]int) map[string]bool {
		out := map[string]bool{}
		for k := range m {
			if k != "none" {
				out[k] = true
			}
		}
		return out
	}
	for _, b := range []struct {
		name      string
		kgo, ours batches
	}{{"produced", want.Kafka.Produced, produced}, {"fetched", want.Kafka.Fetched, fetched}} {
		if b.kgo.Batches != b.ours.Batches || b.kgo.Records != b.ours.Records {
			t.Errorf("%s: kgo %d batches, %d records; dissected %d, %d", b.name, b.kgo.Batches, b.kgo.Records, b.ours.Batches, b.ours.Records)
		}
		if diff := cmp.Diff(seen(b.kgo.Compression), seen(b.ours.Compression)); diff != "" {
			t.Errorf("%s codecs (-kgo +dissected):\n%s", b.name, diff)
		}
	}
	for c, n := range want.Kafka.Produced.Compression {
		if c != "none" && produced.Compression[c] != n {
			t.Errorf("%d Produce batches of %s, kgo wrote %d", produced.Compression[c], c, n)
		}
	}
	if diff := cmp.Diff(want.Kafka.Produced.Topics, produced.Topics); diff != "" {
		t.Errorf("produced records by topic (-kgo +dissected):\n%s", diff)
	}
	if diff := cmp.Diff(lower(want.Kafka.Requests), requests); diff != "" {
		t.Errorf("requests (-kgo +dissected):\n%s", diff)
	}
	if diff := cmp.Diff(lower(want.Kafka.Responses), responses); diff != "" {
		t.Errorf("responses (-kgo +dissected):\n%s", diff)
	}
}

// TestTshark compares the requests' API keys with Wireshark's kafka
// dissector.
func TestTshark(t *testing.T) {
	if !tshark.Available() {
		t.Skip(tshark.ErrNotInstalled)
	}
	file := filepath.Join(testdata, "kafka.pcap")
	if _, err := os.Stat(file); err != nil {
		t.Skip(err)
	}
	rows, err := tshark.Fields(context.Background(), file, "kafka && tcp.dstport == 9092", "kafka.api_key")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, r := range rows {
		for _, v := range tshark.Split(r[0]) {
			want[v]++
		}
	}
	got := map[string]int{}
	for _, e := range dissectFile(t, "kafka.pcap") {
		got[strconv.Itoa(int(e.Kafka.APIKey))]++
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests by api key (-tshark +dissected):\n%s", diff)
	}
}

// TestFilter checks that tap --filter selects on the Kafka fields.
func TestFilter(t *testing.T) {
	es := dissectFile(t, "kafka.pcap")
	for expr, want := range map[string]int{
		`kafka.topic == "orders" && kafka.api == "Produce"`:          10,
		`kafka.compression == "zstd" && kafka.api == "Produce"`:      4,
		`kafka.compression.contains("zstd") && kafka.api == "Fetch"`: 1,
		`kafka.error == "UNKNOWN_TOPIC_OR_PARTITION"`:                1,
		`kafka.group_id == "billing" && method == "OffsetCommit"`:    1,
		`"payments" in kafka.topics && kafka.records > 0`:            11, // 10 Produce, 1 Fetch
	} {
		f, err := filter.Compile(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		n := 0
		for _, e := range es {
			if f.Match(e) {
				n++
			}
		}
		if n != want {
			t.Errorf("%s: %d entries, want %d", expr, n, want)
		}
	}
}
