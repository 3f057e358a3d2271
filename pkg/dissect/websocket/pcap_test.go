package websocket_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/internal/tshark"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http1"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/websocket"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
)

// wsPort is the WebSocket server's port in testdata/websocket.pcap.
const wsPort = 8765

// TestCapture runs testdata/websocket.pcap (gorilla/websocket client and
// server, one connection plain and one with permessage-deflate,
// hack/record-protocols-b.sh) through the engine with HTTP/1 and this
// upgrade hook, compares the messages with the client's log, and the
// frames with tshark's.
func TestCapture(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "testdata")
	b, err := os.ReadFile(filepath.Join(dir, "websocket.expected.json"))
	if err != nil {
		t.Skip(err)
	}
	var want map[string]struct {
		Entries map[string]int `json:"entries"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "websocket.pcap")
	src, err := capture.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	proto := http1.NewProtocol(map[string]http1.UpgradeFunc{"websocket": websocket.NewUpgraded})
	reg := dissect.NewRegistry(dissect.DefaultOptions(), proto)
	var out bytes.Buffer
	render := func(dst []byte, e *entry.Entry) []byte {
		j, _ := json.Marshal(e)
		return append(append(dst, j...), '\n')
	}
	if _, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{Registry: reg, Render: render}); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]int{"http": {}, "websocket": {}}
	frames := map[string]int{} // by opcode number, as tshark shows them
	compressed := 0
	var all []*entry.Entry
	dec := json.NewDecoder(&out)
	for dec.More() {
		var e entry.Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		all = append(all, &e)
		if e.Error != "" {
			t.Errorf("%s %s: error %q", e.Method, e.Path, e.Error)
		}
		if e.WS == nil {
			got[e.Proto][e.Method+" "+e.Path+" "+e.Status]++
			continue
		}
		got[e.Proto][strings.TrimSpace(e.Method+" "+e.WS.Dir+" "+e.Status)]++
		n := max(e.WS.Frames, 1)
		frames[opcodes[e.WS.Opcode]]++
		frames["0"] += n - 1
		if e.WS.Compressed {
			compressed++
			if e.WS.Payload.Decoded != "deflate" {
				t.Errorf("compressed %s message not inflated", e.Method)
			}
		}
	}
	for proto, w := range want {
		if diff := cmp.Diff(w.Entries, got[proto]); diff != "" {
			t.Errorf("%s entries (-logged +dissected):\n%s", proto, diff)
		}
	}
	if compressed != 8 { // the data messages of the second connection
		t.Errorf("%d compressed messages, want 8", compressed)
	}

	// The fields select entries as `tap --filter` does.
	for _, tc := range []struct {
		expr string
		want int
	}{
		{`websocket.close_code == 1000 && websocket.dir == "server"`, 2},
		{`proto == "websocket" && method == "TEXT" && websocket.payload.size > 4000`, 2}, // compressed ones are smaller on the wire
		{`websocket.compressed && websocket.payload.decoded == "deflate"`, 8},
		{`websocket.frames > 1`, 1}, // only the plain client fragments
		{`websocket.payload.data.contains("café")`, 4},
		{`path == "/chat" && websocket.opcode == "ping"`, 2},
	} {
		f, err := filter.Compile(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		n := 0
		for _, e := range all {
			if f.Match(e) {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("filter %s: %d entries, want %d", tc.expr, n, tc.want)
		}
	}

	if !tshark.Available() {
		t.Skip("tshark not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &tshark.Runner{DecodeAs: []string{"tcp.port==" + strconv.Itoa(wsPort) + ",http"}}
	rows, err := r.Fields(ctx, file, "websocket", "websocket.opcode")
	if err != nil {
		t.Fatal(err)
	}
	fromTshark := map[string]int{}
	for _, row := range rows {
		for _, op := range tshark.Split(row[0]) {
			fromTshark[op]++
		}
	}
	if diff := cmp.Diff(fromTshark, frames); diff != "" {
		t.Errorf("frames by opcode (-tshark +dissected):\n%s", diff)
	}
}

var opcodes = map[string]string{"text": "1", "binary": "2", "close": "8", "ping": "9", "pong": "10"}
