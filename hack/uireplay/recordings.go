package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/store"
)

// The recordings are loopback captures: every endpoint is 127.0.0.1. The
// replay names them as a worker names pods after enrichment: the server
// by its port, the client by the recording, so that the service map has
// a known shape.
var servers = map[int]workload{
	53:    {"kube-system", "coredns", "coredns-5d78c9869d-x7p2q"},
	8080:  {"shop", "catalog", "catalog-7c9f8d6b5-2kq4m"},
	8081:  {"shop", "inventory", "inventory-6f7d9c5b8-r8t2n"},
	8082:  {"shop", "orders", "orders-84b6f9c7d-l5v9w"},
	50051: {"shop", "payments", "payments-5b8d7f6c9-h3j6k"},
}

// clients names the client of each recording, by the prefix of its name.
var clients = []struct {
	prefix string
	w      workload
}{
	{"dns", workload{"shop", "frontend", "frontend-6d9b7c8f5-a1b2c"}},
	{"http1", workload{"shop", "frontend", "frontend-6d9b7c8f5-a1b2c"}},
	{"grpc", workload{"shop", "checkout", "checkout-59c8d7b6f-d4e5f"}},
	{"h2c", workload{"shop", "checkout", "checkout-59c8d7b6f-d4e5f"}},
	{"", workload{"shop", "loadgen", "loadgen-7f6e5d4c3-g7h8i"}}, // mixed, and any other
}

type workload struct{ namespace, name, pod string }

func (w workload) fill(ep *entry.Endpoint, node string) {
	ep.Namespace, ep.Workload, ep.Pod, ep.Node = w.namespace, w.name, w.pod, node
}

// clientOf names the client workload of a recording by its file name.
func clientOf(file string) workload {
	for _, c := range clients {
		if strings.HasPrefix(filepath.Base(file), c.prefix) {
			return c.w
		}
	}
	panic("unreachable: the last prefix is empty")
}

// recording is one golden file: its entries, named, and the capture they
// were dissected from.
type recording struct {
	name    string
	capture string
	client  workload
	entries []entry.Entry
}

// loadRecordings reads testdata/golden/*.json (NDJSON entries of our
// engine) and pairs each with its capture in testdata/.
func loadRecordings(testdata, node, worker string) ([]recording, error) {
	files, err := filepath.Glob(filepath.Join(testdata, "golden", "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var recs []recording
	for _, f := range files {
		capName := strings.TrimSuffix(filepath.Base(f), ".json")
		rec := recording{name: capName, capture: filepath.Join(testdata, capName), client: clientOf(capName)}
		if _, err := os.Stat(rec.capture); err != nil {
			return nil, fmt.Errorf("%s: no capture beside it: %w", f, err)
		}
		if rec.entries, err = readEntries(f); err != nil {
			return nil, err
		}
		for i := range rec.entries {
			e := &rec.entries[i]
			rec.client.fill(&e.Src, node)
			if s, ok := servers[e.Dst.Port]; ok {
				s.fill(&e.Dst, node)
			}
			e.Node, e.Worker, e.Source = node, worker, entry.SourceAFPacket
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("no recordings in %s/golden", testdata)
	}
	return recs, nil
}

func readEntries(path string) ([]entry.Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []entry.Entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e entry.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// fillStore writes each recording's packets into the worker's ring store,
// on an interface named after the recording's client pod, as a worker
// captures in the client pod's network namespace.
func fillStore(s *store.Store, recs []recording) error {
	for _, r := range recs {
		if err := storeCapture(s, r.capture, r.client.namespace+"/"+r.client.pod); err != nil {
			return fmt.Errorf("%s: %w", r.capture, err)
		}
	}
	return nil
}

func storeCapture(s *store.Store, path, pod string) error {
	src, err := capture.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	ids := map[capture.LinkType]int{}
	var p capture.Packet
	for {
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		id, ok := ids[p.LinkType]
		if !ok {
			id = s.AddInterface(capture.Interface{Name: pod, LinkType: p.LinkType, SnapLen: 262144})
			ids[p.LinkType] = id
		}
		s.Write(id, []capture.Packet{p})
	}
}
