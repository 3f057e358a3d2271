package store

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/all"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/render"
)

// TestFlowIDMatchesAssembler dissects real captures with the engine, stores
// the same packets, and checks that every entry's flow (flow_id, src, dst)
// is found in the store and exports exactly the packets of its connection.
func TestFlowIDMatchesAssembler(t *testing.T) {
	for _, file := range []string{"../../testdata/http1.pcap", "../../testdata/mixed.pcapng", "../../testdata/dns.pcap", "../../testdata/grpc.pcap"} {
		t.Run(file, func(t *testing.T) {
			entries := dissectFile(t, file)
			if len(entries) == 0 {
				t.Fatal("no entries")
			}
			s, perTuple := storeFile(t, file)
			checked := map[string]bool{}
			for _, e := range entries {
				if checked[e.FlowID] {
					continue
				}
				checked[e.FlowID] = true
				transport := "tcp"
				if e.DNS != nil {
					transport = e.DNS.Transport
				} else if e.Conn != nil {
					transport = e.Conn.Transport
				}
				a := netip.AddrPortFrom(netip.MustParseAddr(e.Src.IP), uint16(e.Src.Port))
				b := netip.AddrPortFrom(netip.MustParseAddr(e.Dst.IP), uint16(e.Dst.Port))
				var buf bytes.Buffer
				st, err := s.Export(context.Background(), &buf, Query{Flow: &Flow{ID: e.FlowID, Transport: transport, A: a, B: b}})
				if err != nil {
					t.Fatal(err)
				}
				if !st.FlowFound {
					t.Errorf("%s entry %s: flow %s not found", e.Proto, e.ID, e.FlowID)
					continue
				}
				// These captures hold one connection per pair of ends.
				if want := perTuple[tupleKey(protoOf(transport), a.Addr(), a.Port(), b.Addr(), b.Port())]; transport == "tcp" && st.Packets != want {
					t.Errorf("%s entry %s: exported %d packets, the connection has %d", e.Proto, e.ID, st.Packets, want)
				}
			}
		})
	}
}

func protoOf(transport string) uint8 {
	if transport == "udp" {
		return capture.IPProtoUDP
	}
	return capture.IPProtoTCP
}

func dissectFile(t *testing.T, path string) []entry.Entry {
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out bytes.Buffer
	_, err = pipeline.Run(context.Background(), src, &out, pipeline.Options{
		Registry: all.Registry(dissect.DefaultOptions()),
		Render:   render.AppendJSON,
	})
	if err != nil {
		t.Fatal(err)
	}
	var entries []entry.Entry
	dec := json.NewDecoder(&out)
	for dec.More() {
		var e entry.Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	return entries
}

// storeFile writes a capture into a store and counts its packets per flow.
func storeFile(t *testing.T, path string) (*Store, map[uint64]uint64) {
	s := openStore(t, Options{Limit: 256 << 20})
	src, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dec := capture.NewDecoder(capture.DecoderOptions{MaxFragmentBytes: -1})
	counts := map[uint64]uint64{}
	ids := map[int]int{}
	var p capture.Packet
	var f capture.Frame
	for src.Next(&p) == nil {
		id, ok := ids[p.Interface]
		if !ok {
			iface := src.Interfaces()[p.Interface]
			iface.Name = "test/pod"
			id = s.AddInterface(iface)
			ids[p.Interface] = id
		}
		s.Write(id, []capture.Packet{p})
		if dec.Decode(&p, &f) {
			counts[tupleKey(f.Proto, f.Src, f.SrcPort, f.Dst, f.DstPort)]++
		}
	}
	return s, counts
}
