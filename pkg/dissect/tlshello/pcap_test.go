package tlshello_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/internal/tshark"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/tlshello"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/filter"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
)

// TestCapture runs testdata/tls.pcap (curl against nginx and openssl
// s_server, hack/record-protocols-b.sh) through the engine with this
// dissector alone: one entry per connection, compared with curl's log, and
// the server names and negotiated suites with tshark's.
func TestCapture(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "testdata")
	b, err := os.ReadFile(filepath.Join(dir, "tls.expected.json"))
	if err != nil {
		t.Skip(err)
	}
	var want map[string]struct {
		Entries  map[string]int   `json:"entries"`
		Counters map[string]int64 `json:"counters"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tls.pcap")
	src, err := capture.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	reg := dissect.NewRegistry(dissect.DefaultOptions(), tlshello.Protocol())
	var out bytes.Buffer
	render := func(dst []byte, e *entry.Entry) []byte {
		j, _ := json.Marshal(e)
		return append(append(dst, j...), '\n')
	}
	if _, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{Registry: reg, Render: render}); err != nil {
		t.Fatal(err)
	}
	entries := map[string]int{}
	counters := map[string]int64{}
	var snis, suites []string
	var all []*entry.Entry
	dec := json.NewDecoder(&out)
	for dec.More() {
		var e entry.Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		all = append(all, &e)
		if e.Proto != entry.ProtoTLS {
			t.Errorf("%s entry", e.Proto)
			continue
		}
		if e.Error != "" {
			t.Errorf("%s: error %q", e.Path, e.Error)
		}
		i := e.TLSInfo
		entries[strings.TrimSpace(e.Method+" "+e.Path+" "+e.Status)]++
		snis = append(snis, i.SNI)
		if i.Cipher != "" {
			counters["cipher."+i.Cipher]++
			suites = append(suites, i.Cipher)
		}
		if i.ALPNSelected != "" {
			counters["alpn."+i.ALPNSelected]++
		}
	}
	w := want["tls"]
	if diff := cmp.Diff(w.Entries, entries); diff != "" {
		t.Errorf("connections (-logged +dissected):\n%s", diff)
	}
	if diff := cmp.Diff(w.Counters, counters); diff != "" {
		t.Errorf("counters (-logged +dissected):\n%s", diff)
	}

	// The fields select entries as `tap --filter` does.
	for _, tc := range []struct {
		expr string
		want int
	}{
		{`tls_hello.sni == "shop.shark.test"`, 2},
		{`tls_hello.version == "TLS1.2" && tls_hello.alpn_selected == "h2"`, 1},
		{`"h2" in tls_hello.alpn && tls_hello.cipher.startsWith("TLS_AES")`, 2},
		{`tls_hello.alert == "protocol_version" && status != "OK"`, 1},
		{`proto == "tls" && tls`, 6},
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
	r := &tshark.Runner{DecodeAs: []string{"tcp.port==4433,tls"}}
	rows, err := r.Fields(ctx, file, "tls.handshake.type == 1", "tls.handshake.extensions_server_name")
	if err != nil {
		t.Fatal(err)
	}
	var tsharkSNIs []string
	for _, row := range rows {
		tsharkSNIs = append(tsharkSNIs, row[0])
	}
	if diff := cmp.Diff(tsharkSNIs, snis); diff != "" {
		t.Errorf("server names (-tshark +dissected):\n%s", diff)
	}
	rows, err = r.Fields(ctx, file, "tls.handshake.type == 2", "tls.handshake.ciphersuite")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(suites) {
		t.Errorf("tshark saw %d server hellos, we %d", len(rows), len(suites))
	}
}
