package postgres_test

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

	"github.com/kubectl-shark/kubectl-shark/internal/tshark"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/postgres"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
)

var testdata = filepath.Join("..", "..", "..", "testdata")

// dissectFile runs a capture through the whole engine (detection,
// reassembly, this dissector, JSON rendering); it returns the entries and
// the raw output.
func dissectFile(t *testing.T, name string) ([]*entry.Entry, []byte) {
	t.Helper()
	src, err := capture.Open(filepath.Join(testdata, name))
	if err != nil {
		t.Skip(err)
	}
	defer src.Close()
	var out bytes.Buffer
	reg := dissect.NewRegistry(dissect.DefaultOptions(), postgres.Protocol())
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

type expected struct {
	Postgres struct {
		Queries      int            `json:"queries"`
		Executes     int            `json:"executes"`
		Errors       map[string]int `json:"errors"`
		Transactions map[string]int `json:"pgbench_transactions"`
	} `json:"postgres"`
}

// TestCapture compares the entries of testdata/postgres.pcap (psql and
// pgbench against PostgreSQL 15, recorded by hack/record-protocols-a.sh)
// with what the server logged and what pgbench reported.
func TestCapture(t *testing.T) {
	var want expected
	b, err := os.ReadFile(filepath.Join(testdata, "postgres.expected.json"))
	if err != nil {
		t.Skip(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	es, raw := dissectFile(t, "postgres.pcap")
	if bytes.Contains(raw, []byte("shark-s3cret")) {
		t.Error("the password shows in the output")
	}
	var queries, executes, startups, ssl int
	errs := map[string]int{}
	tx := map[string]int{}
	for _, e := range es {
		pg := e.Postgres
		if e.Proto != entry.ProtoPostgres || pg == nil {
			t.Fatalf("entry of %s", e.Proto)
		}
		if e.Error != "" {
			t.Errorf("%s %s: %s", e.Method, e.Path, e.Error)
		}
		if pg.SQLState != "" {
			errs[pg.SQLState]++
		}
		switch e.Method {
		case "Query":
			if e.Size.Request > 0 { // the first statement of each Query message
				queries++
			}
		case "Execute":
			executes++
		case "Startup":
			startups++
			if e.Status != "ready" || pg.User != "app" || pg.Database != "shop" || pg.Command != "sasl SCRAM-SHA-256" {
				t.Errorf("startup %+v %+v", e, pg)
			}
		case "SSLRequest":
			ssl++
			if e.Status != "refused" {
				t.Errorf("SSLRequest %s", e.Status)
			}
		}
		if strings.HasPrefix(pg.Query, "UPDATE pgbench_accounts") {
			switch {
			case pg.Protocol == "simple":
				tx["simple"]++
			case pg.Statement == "":
				tx["extended"]++
			default:
				tx["prepared"]++
			}
		}
	}
	// The server logs every Query but one that does not parse.
	if got, want := queries, want.Postgres.Queries+want.Postgres.Errors["42601"]; got != want {
		t.Errorf("%d Query messages, server logged %d", got, want)
	}
	if executes != want.Postgres.Executes {
		t.Errorf("%d Executes, server logged %d", executes, want.Postgres.Executes)
	}
	if diff := cmp.Diff(want.Postgres.Errors, errs); diff != "" {
		t.Errorf("errors (-server +dissected):\n%s", diff)
	}
	if diff := cmp.Diff(want.Postgres.Transactions, tx); diff != "" {
		t.Errorf("pgbench transactions (-pgbench +dissected):\n%s", diff)
	}
	if startups == 0 || startups != ssl {
		t.Errorf("%d startups, %d SSLRequests", startups, ssl)
	}
}

// TestTshark compares message counts with Wireshark's pgsql dissector.
func TestTshark(t *testing.T) {
	if !tshark.Available() {
		t.Skip(tshark.ErrNotInstalled)
	}
	file := filepath.Join(testdata, "postgres.pcap")
	if _, err := os.Stat(file); err != nil {
		t.Skip(err)
	}
	rows, err := tshark.Fields(context.Background(), file, "pgsql", "pgsql.type")
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, r := range rows {
		for _, v := range tshark.Split(r[0]) {
			types[v]++
		}
	}
	es, _ := dissectFile(t, "postgres.pcap")
	got := map[string]int{}
	for _, e := range es {
		switch e.Method {
		case "Query":
			if e.Size.Request > 0 {
				got["Simple query"]++
			}
		case "Execute":
			got["Execute"]++
		case "Startup":
			got["Startup message"]++
		case "SSLRequest":
			got["SSL request"]++
		}
		if pg := e.Postgres; pg.Command != "" && e.Method != "Startup" {
			got["Command completion"]++
		}
		if e.Postgres.SQLState != "" {
			got["Error"]++
		}
	}
	want := map[string]int{}
	for _, k := range []string{"Simple query", "Execute", "Startup message", "SSL request", "Command completion", "Error"} {
		want[k] = types[k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-tshark +dissected):\n%s", diff)
	}
}

// TestFilter checks that tap --filter selects on the Postgres fields.
func TestFilter(t *testing.T) {
	es, _ := dissectFile(t, "postgres.pcap")
	for expr, want := range map[string]int{
		`postgres.error != ""`:                                        3,
		`postgres.sqlstate == "42P01"`:                                1,
		`postgres.protocol == "extended" && postgres.statement != ""`: 140,
		`postgres.command.startsWith("INSERT") && postgres.rows == 3`: 1,
		`method == "Startup" && postgres.user == "app"`:               11,
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
