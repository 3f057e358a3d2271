package http1_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http1"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
)

// TestCaptures runs the recorded captures of real clients and servers
// (testdata/README.md) through the engine with this dissector alone, and
// compares the exchanges found with what the clients logged. h2c upgrades
// count as HTTP/1 exchanges answered 101.
func TestCaptures(t *testing.T) {
	for _, file := range []string{"http1.pcap", "http1-pipeline-head.pcap", "http1-midstream.pcap", "h2c.pcapng", "mixed.pcapng"} {
		name := strings.TrimSuffix(file, filepath.Ext(file))
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "..", "testdata")
			var want struct {
				HTTP1 struct {
					Exchanges map[string]int `json:"exchanges"`
				} `json:"http1"`
			}
			b, err := os.ReadFile(filepath.Join(dir, name+".expected.json"))
			if err != nil {
				t.Skip(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			src, err := capture.Open(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var out bytes.Buffer
			reg := dissect.NewRegistry(dissect.DefaultOptions(), http1.Protocol())
			render := func(dst []byte, e *entry.Entry) []byte {
				j, _ := json.Marshal(e)
				return append(append(dst, j...), '\n')
			}
			if _, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{Registry: reg, Render: render}); err != nil {
				t.Fatal(err)
			}

			got := map[string]int{}
			sc := bufio.NewScanner(&out)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var e entry.Entry
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatal(err)
				}
				if e.Proto != entry.ProtoHTTP {
					continue
				}
				if e.Error != "" {
					t.Errorf("%s %s: error %q", e.Method, e.Path, e.Error)
					continue
				}
				got[e.Method+" "+e.Path+" "+e.Status]++
			}
			if diff := cmp.Diff(want.HTTP1.Exchanges, got); diff != "" {
				t.Errorf("exchanges (-logged +dissected):\n%s", diff)
			}
		})
	}
}
