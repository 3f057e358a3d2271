package amqp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/internal/tshark"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
)

var testdata = filepath.Join("..", "..", "..", "testdata")

// dissectFile runs a capture through the whole engine (detection,
// reassembly, this dissector, JSON rendering) and decodes the entries.
func dissectFile(t *testing.T, name string) ([]*entry.Entry, []byte) {
	t.Helper()
	src, err := capture.Open(filepath.Join(testdata, name))
	if err != nil {
		t.Skip(err)
	}
	defer src.Close()
	var out bytes.Buffer
	reg := dissect.NewRegistry(dissect.DefaultOptions(), Protocol())
	renderJSON := func(dst []byte, e *entry.Entry) []byte { return append(render.AppendJSON(dst, e), '\n') }
	if _, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{Registry: reg, Render: renderJSON}); err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(out.Bytes())
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
	return es, raw
}

// TestCapture compares the entries of testdata/amqp.pcap (amqp091-go and
// amqp-tools against rabbitmq-server, recorded by
// hack/record-protocols-a.sh) with the methods the clients logged.
func TestCapture(t *testing.T) {
	var want struct {
		AMQP struct {
			Methods map[string]int `json:"methods"`
		} `json:"amqp"`
	}
	b, err := os.ReadFile(filepath.Join(testdata, "amqp.expected.json"))
	if err != nil {
		t.Skip(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	es, raw := dissectFile(t, "amqp.pcap")
	if bytes.Contains(raw, []byte("\\u0000guest\\u0000guest")) {
		t.Error("the SASL response shows in the output")
	}
	got := map[string]int{}
	for _, e := range es {
		a := e.AMQP
		if e.Proto != entry.ProtoAMQP || a == nil {
			t.Fatalf("entry of %s", e.Proto)
		}
		if e.Error != "" {
			t.Errorf("%s on %d: %s", e.Method, a.Channel, e.Error)
		}
		got[e.Method]++
	}
	if diff := cmp.Diff(want.AMQP.Methods, got); diff != "" {
		t.Errorf("methods (-clients +dissected):\n%s", diff)
	}
}

// TestCaptureDetails checks entries of the capture in full.
func TestCaptureDetails(t *testing.T) {
	es, _ := dissectFile(t, "amqp.pcap")
	var publishes, deliveries int
	var refused, getOK, getEmpty, tools bool
	for _, e := range es {
		a := e.AMQP
		switch {
		case e.Method == "basic.publish" && a.Exchange == "shop":
			publishes++
			p := a.Properties
			if e.Path != "shop/orders.created" || a.Body == nil || a.Body.Size == 0 || a.Body.Data == "" ||
				p["content-type"] != "application/json" || p["delivery-mode"] != "2" || p["headers.trace-id"] == "" {
				t.Errorf("publish %s %+v %+v", e.Path, a, a.Body)
			}
		case e.Method == "basic.deliver":
			deliveries++
			if a.ConsumerTag != "billing" || a.DeliveryTag == 0 || a.Body == nil || a.Body.Data == "" {
				t.Errorf("deliver %+v", a)
			}
		case e.Method == "queue.declare" && e.Path == "missing":
			refused = e.Status == "404 NOT_FOUND" && a.Reply == "channel.close" && a.ReplyCode == 404
		case e.Method == "basic.get" && e.Status == "basic.get-ok" && a.Queue == "orders":
			getOK = a.Body != nil && a.Body.Size > 0 && a.RoutingKey == "orders.created"
		case e.Method == "basic.get" && e.Status == "basic.get-empty":
			getEmpty = true
		case e.Method == "basic.publish" && e.Path == "/jobs":
			tools = a.Properties["content-type"] == "text/plain" && a.Body != nil && a.Body.Data[:4] == "job "
		}
	}
	if publishes != 11 || deliveries != 10 || !refused || !getOK || !getEmpty || !tools {
		t.Errorf("publishes %d deliveries %d refused %v get-ok %v get-empty %v tools %v", publishes, deliveries, refused, getOK, getEmpty, tools)
	}
}

// TestTshark compares the methods with Wireshark's amqp dissector: every
// method frame that is not a reply is an entry of its own.
func TestTshark(t *testing.T) {
	if !tshark.Available() {
		t.Skip(tshark.ErrNotInstalled)
	}
	file := filepath.Join(testdata, "amqp.pcap")
	if _, err := os.Stat(file); err != nil {
		t.Skip(err)
	}
	rows, err := tshark.Fields(context.Background(), file, "amqp", "amqp.method.class", "amqp.method.method")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, r := range rows {
		classes, ids := tshark.Split(r[0]), tshark.Split(r[1])
		for i := range min(len(classes), len(ids)) {
			c, _ := strconv.Atoi(classes[i])
			m, _ := strconv.Atoi(ids[i])
			k := key(uint16(c), uint16(m))
			if !isReply[k] {
				want[methods[k].name]++
			}
		}
	}
	es, _ := dissectFile(t, "amqp.pcap")
	got := map[string]int{}
	for _, e := range es {
		got[e.Method]++
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("methods (-tshark +dissected):\n%s", diff)
	}
}

// TestFilter checks that tap --filter selects on the AMQP fields.
func TestFilter(t *testing.T) {
	es, _ := dissectFile(t, "amqp.pcap")
	for expr, want := range map[string]int{
		`amqp.method == "basic.publish" && amqp.routing_key == "orders.created"`: 11,
		`amqp.exchange == "shop" && amqp.body.size > 0`:                          11 + 10 + 1,
		`amqp.reply_code == 404`:                                                 2, // the declare, and the close
		`amqp.properties["content-type"] == "text/plain"`:                        3 + 2,
		`path == "/jobs"`: 3,
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
