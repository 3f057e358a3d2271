package mysql_test

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
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/mysql"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
)

var testdata = filepath.Join("..", "..", "..", "testdata")

// tally is the shape of testdata/mysql.expected.json (hack/protogen-b).
type tally struct {
	Entries  map[string]int   `json:"entries"`
	Counters map[string]int64 `json:"counters"`
}

// dissectFile runs the capture through the engine with this dissector
// alone and returns the MySQL entries.
func dissectFile(t *testing.T, name string) []*entry.Entry {
	t.Helper()
	src, err := capture.Open(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out bytes.Buffer
	reg := dissect.NewRegistry(dissect.DefaultOptions(), mysql.Protocol())
	render := func(dst []byte, e *entry.Entry) []byte {
		j, _ := json.Marshal(e)
		return append(append(dst, j...), '\n')
	}
	if _, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{Registry: reg, Render: render}); err != nil {
		t.Fatal(err)
	}
	var es []*entry.Entry
	dec := json.NewDecoder(&out)
	for dec.More() {
		e := new(entry.Entry)
		if err := dec.Decode(e); err != nil {
			t.Fatal(err)
		}
		if e.Proto == entry.ProtoMySQL {
			es = append(es, e)
		}
	}
	return es
}

// TestCapture compares the entries of testdata/mysql.pcap (the mariadb CLI
// and go-sql-driver/mysql against MariaDB, hack/record-protocols-b.sh) with
// what the clients logged, and with tshark's MySQL dissector.
func TestCapture(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testdata, "mysql.expected.json"))
	if err != nil {
		t.Skip(err)
	}
	var want map[string]tally
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	es := dissectFile(t, "mysql.pcap")
	got := tally{Entries: map[string]int{}, Counters: map[string]int64{}}
	commands := map[string]int{}
	for _, e := range es {
		if e.Error != "" {
			t.Errorf("%s %q: error %q", e.MySQL.Command, e.Path, e.Error)
		}
		got.Entries[strings.TrimSpace(e.MySQL.Command+" "+e.Status)]++
		got.Counters["rows"] += e.MySQL.Rows
		got.Counters["affected"] += e.MySQL.Affected
		if e.MySQL.Command != "Handshake" {
			commands[e.MySQL.Command]++
		}
	}
	if diff := cmp.Diff(want["mysql"], got); diff != "" {
		t.Errorf("entries (-logged +dissected):\n%s", diff)
	}

	if !tshark.Available() {
		t.Skip("tshark not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := tshark.Fields(ctx, filepath.Join(testdata, "mysql.pcap"), "mysql.command", "mysql.command")
	if err != nil {
		t.Fatal(err)
	}
	fromTshark := map[string]int{}
	for _, r := range rows {
		for _, c := range tshark.Split(r[0]) {
			n, _ := strconv.Atoi(c)
			fromTshark[mysql.CommandName(byte(n))]++
		}
	}
	if diff := cmp.Diff(fromTshark, commands); diff != "" {
		t.Errorf("commands (-tshark +dissected):\n%s", diff)
	}
}
