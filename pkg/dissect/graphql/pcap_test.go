package graphql_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/graphql"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http1"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/http2"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
)

// TestCapture runs testdata/graphql.pcap (curl against a graphql-go server
// over HTTP/1.1 and h2c, hack/record-protocols-b.sh) through the engine
// with the HTTP dissectors and this enricher, and compares the operations
// with what the client logged. Every request is GraphQL: no HTTP entry
// may be left.
func TestCapture(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "testdata")
	b, err := os.ReadFile(filepath.Join(dir, "graphql.expected.json"))
	if err != nil {
		t.Skip(err)
	}
	var want map[string]struct {
		Entries map[string]int `json:"entries"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	src, err := capture.Open(filepath.Join(dir, "graphql.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	reg := dissect.NewRegistry(dissect.DefaultOptions(), http2.Protocol(), http1.Protocol(), graphql.Protocol())
	var out bytes.Buffer
	render := func(dst []byte, e *entry.Entry) []byte {
		j, _ := json.Marshal(e)
		return append(append(dst, j...), '\n')
	}
	if _, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{Registry: reg, Render: render}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	versions := map[string]int{}
	var all []*entry.Entry
	dec := json.NewDecoder(&out)
	for dec.More() {
		var e entry.Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		all = append(all, &e)
		if e.Proto != entry.ProtoGraphQL {
			t.Errorf("%s entry %s %s", e.Proto, e.Method, e.Path)
			continue
		}
		if e.Error != "" {
			t.Errorf("%s %s: error %q", e.Method, e.Path, e.Error)
		}
		got[e.GraphQL.Operation+" "+e.Path+" "+e.Status]++
		versions[e.HTTP.Version]++
	}
	// The fields select entries as `tap --filter` does.
	for _, tc := range []struct {
		expr string
		want int
	}{
		{`graphql.error_count > 0`, 4},
		{`graphql.operation == "mutation" && status == "OK"`, 3},
		{`method == "QUERY" && path == "GetItem" && "item" in graphql.fields`, 1},
		{`graphql.errors.exists(m, m.contains("inventory backend unavailable"))`, 1},
		{`proto == "graphql" && http.version == "2"`, 2},
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

	if diff := cmp.Diff(want["graphql"].Entries, got); diff != "" {
		t.Errorf("operations (-logged +dissected):\n%s", diff)
	}
	if versions["2"] != 2 || versions["1.1"] == 0 {
		t.Errorf("HTTP versions %v, want 2 over h2c and the rest over 1.1", versions)
	}
}
