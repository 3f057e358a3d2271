package redis_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/redis"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
)

// dissectFile runs a capture through the whole engine (detection,
// reassembly, this dissector, JSON rendering) and decodes the entries.
func dissectFile(t *testing.T, name string) []*entry.Entry {
	t.Helper()
	src, err := capture.Open(filepath.Join("..", "..", "..", "testdata", name))
	if err != nil {
		t.Skip(err)
	}
	defer src.Close()
	var out bytes.Buffer
	reg := dissect.NewRegistry(dissect.DefaultOptions(), redis.Protocol())
	renderJSON := func(dst []byte, e *entry.Entry) []byte { return append(render.AppendJSON(dst, e), '\n') }
	if _, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{Registry: reg, Render: renderJSON}); err != nil {
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

// TestCapture compares the entries of testdata/redis.pcap (recorded by
// hack/record-protocols-a.sh) with the commands redis-server counted
// (INFO commandstats) and the messages the subscriber printed.
func TestCapture(t *testing.T) {
	var want struct {
		Redis struct {
			Commands map[string]int `json:"commands"`
			Pushes   map[string]int `json:"pushes"`
		} `json:"redis"`
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "redis.expected.json"))
	if err != nil {
		t.Skip(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	es := dissectFile(t, "redis.pcap")
	commands, pushes := map[string]int{}, map[string]int{}
	pipelined := map[string]int{} // SET entries of each flow, by key
	for _, e := range es {
		if e.Proto != entry.ProtoRedis {
			t.Errorf("entry of %s: %s", e.Proto, e.Status)
			continue
		}
		if e.Error != "" {
			t.Errorf("%s %s: %s", e.Method, e.Path, e.Error)
		}
		if e.Status == "push" {
			pushes[e.Method]++
			continue
		}
		commands[e.Method]++
		if e.Method == "SET" && e.Path != "" && e.Path[0] >= '0' && e.Path[0] <= '9' {
			pipelined[e.FlowID]++
		}
	}
	if diff := cmp.Diff(want.Redis.Commands, commands); diff != "" {
		t.Errorf("commands (-server +dissected):\n%s", diff)
	}
	if diff := cmp.Diff(want.Redis.Pushes, pushes); diff != "" {
		t.Errorf("pushes (-subscriber +dissected):\n%s", diff)
	}
	// redis-cli --pipe wrote 500 SETs on one connection, mostly in full
	// segments: each is an entry.
	found := false
	for _, n := range pipelined {
		found = found || n == 500
	}
	if !found {
		t.Errorf("no connection with the 500 pipelined SETs: %v", pipelined)
	}
}

// TestCaptureDetails checks some entries of the capture in full.
func TestCaptureDetails(t *testing.T) {
	es := dissectFile(t, "redis.pcap")
	seen := map[string]bool{}
	for _, e := range es {
		r := e.Redis
		switch {
		case e.Method == "LPUSH" && e.Path == "user:1":
			seen["wrongtype"] = e.Status == "WRONGTYPE" && r.Type == "error"
		case e.Method == "GET" && e.Path == "user:missing":
			seen["nil"] = e.Status == "nil" && r.Reply == "(nil)"
		case e.Method == "ZSCORE":
			seen["resp3"] = r.Protocol == 3 && r.Type == "double" && r.Reply == "1.5"
		case e.Method == "EXEC":
			seen["exec"] = e.Status == "array" && r.Reply == `[11, "OK"]` || r.Reply == "[12, \"OK\"]"
		case e.Method == "message" && e.Path == "sport":
			seen["push"] = r.Channel == "sport" && r.Reply == "score 1"
		case e.Method == "PING" && r.Protocol == 2:
			seen["inline"] = e.Status == "simple" && r.Reply == "PONG"
		}
	}
	for _, k := range []string{"wrongtype", "nil", "resp3", "exec", "push", "inline"} {
		if !seen[k] {
			t.Errorf("%s: not seen as expected", k)
		}
	}
}

// TestFilter checks that tap --filter selects on the Redis fields.
func TestFilter(t *testing.T) {
	es := dissectFile(t, "redis.pcap")
	for expr, want := range map[string]int{
		`redis.command == "GET"`:                            103,
		`redis.command == "SUBSCRIBE" && size.response > 0`: 1,
		`redis.channel == "news"`:                           5,
		`redis.protocol == 3 && redis.type == "map"`:        7, // HELLO 3 replies, and HGETALL
		`status == "WRONGTYPE"`:                             1,
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
