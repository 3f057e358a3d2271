package dissect

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// lineProto is a toy protocol: the client sends "HELLO ...", the server
// answers "WORLD ...". Its parser logs what it is fed.
type lineParser struct {
	conn *Conn
	log  *[]string
}

func (p *lineParser) Data(dir Dir, b []byte, _ time.Time) {
	*p.log = append(*p.log, fmt.Sprintf("%s:%s", dir, b))
}
func (p *lineParser) Gap(dir Dir, n int) { *p.log = append(*p.log, fmt.Sprintf("%s:gap %d", dir, n)) }
func (p *lineParser) End(time.Time)      { *p.log = append(*p.log, "end") }
func (p *lineParser) Datagram(dir Dir, b []byte, ts time.Time) {
	p.Data(dir, b, ts)
}

func lineProto(log *[]string, conns *[]*Conn) Protocol {
	return Protocol{
		Name:  "line",
		Ports: []uint16{7777},
		Detect: func(b []byte) (Verdict, bool) {
			for _, sig := range []string{"HELLO", "WORLD"} {
				n := min(len(b), len(sig))
				if string(b[:n]) != sig[:n] {
					continue
				}
				if n < len(sig) {
					return Maybe, false
				}
				return Yes, sig == "HELLO"
			}
			return No, false
		},
		NewStream: func(c *Conn, _ Emitter) StreamParser {
			*conns = append(*conns, c)
			return &lineParser{conn: c, log: log}
		},
		NewDatagram: func(c *Conn, _ Emitter) DatagramParser {
			*conns = append(*conns, c)
			return &lineParser{conn: c, log: log}
		},
	}
}

var (
	ephemeral = netip.MustParseAddrPort("10.1.0.1:51000")
	service   = netip.MustParseAddrPort("10.1.0.2:7777")
	ts0       = time.Unix(1700000000, 0)
)

type collected struct{ entries []*entry.Entry }

func (c *collected) Emit(e *entry.Entry) { c.entries = append(c.entries, e) }

func TestDetectReplaysHeldBytesInOrder(t *testing.T) {
	var log []string
	var conns []*Conn
	reg := NewRegistry(DefaultOptions(), lineProto(&log, &conns))
	// Mid-stream: A is the server (it spoke first in the capture).
	h := reg.NewConn(FlowInfo{Transport: "tcp", A: service, B: ephemeral, ID: "f"}, &collected{}, nil)
	h.Data(true, []byte("WO"), ts0)
	h.Data(false, []byte("HEL"), ts0)
	if len(log) != 0 {
		t.Fatalf("parser fed before detection: %v", log)
	}
	h.Data(true, []byte("RLD 1"), ts0)
	h.Gap(false, 3)
	h.Data(false, []byte("LO 2"), ts0)
	h.End(ts0, "fin")
	want := []string{"response:WO", "request:HEL", "response:RLD 1", "request:gap 3", "request:LO 2", "end"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("parser log (-want +got):\n%s", diff)
	}
	if len(conns) != 1 || conns[0].Client != ephemeral || conns[0].Server != service {
		t.Errorf("conn = %+v, want client %v server %v", conns[0], ephemeral, service)
	}
	if h.Proto() != "line" {
		t.Errorf("proto = %q", h.Proto())
	}
}

func TestDetectUnknownIsSummarised(t *testing.T) {
	var log []string
	var conns []*Conn
	reg := NewRegistry(DefaultOptions(), lineProto(&log, &conns))
	out := &collected{}
	c := netip.MustParseAddrPort("10.1.0.1:51000")
	s := netip.MustParseAddrPort("10.1.0.2:9999")
	h := reg.NewConn(FlowInfo{Transport: "tcp", A: c, B: s, Opener: OpenerA, ID: "abc"}, out, nil)
	h.Data(true, []byte("\x00\x01binary"), ts0)
	if h.Counting() {
		t.Error("Counting before detection gave up")
	}
	h.Data(false, bytes.Repeat([]byte("z"), 100), ts0.Add(2*time.Millisecond))
	if !h.Counting() {
		t.Error("not Counting once no protocol claimed the flow")
	}
	// The assembler counts the rest instead of reassembling it.
	h.Count(true, 4, 1, ts0.Add(3*time.Millisecond))
	h.End(ts0.Add(5*time.Millisecond), "rst")
	if len(log) != 0 {
		t.Errorf("parser fed for unknown bytes: %v", log)
	}
	if len(out.entries) != 1 {
		t.Fatalf("entries = %d, want 1 summary", len(out.entries))
	}
	e := out.entries[0]
	want := &entry.Entry{
		V: entry.Version, ID: "abc-1", TS: ts0.UTC(), ElapsedUS: 3000, Proto: entry.ProtoTCP, Status: "rst",
		Src:    entry.Endpoint{IP: "10.1.0.1", Port: 51000},
		Dst:    entry.Endpoint{IP: "10.1.0.2", Port: 9999},
		Size:   entry.Size{Request: 12, Response: 100},
		Source: entry.SourceFile, FlowID: "abc",
		Conn: &entry.ConnInfo{Transport: "tcp", ClientBytes: 12, ServerBytes: 100,
			ClientPackets: 2, ServerPackets: 1, End: "rst"},
	}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

func TestDetectWaitsForTheOtherSide(t *testing.T) {
	var log []string
	var conns []*Conn
	reg := NewRegistry(DefaultOptions(), lineProto(&log, &conns))
	h := reg.NewConn(FlowInfo{Transport: "tcp", A: ephemeral, B: netip.MustParseAddrPort("10.1.0.2:1234"), ID: "f"}, &collected{}, nil)
	// A's bytes are nothing we know, but the server may still greet.
	h.Data(true, []byte("???"), ts0)
	h.Data(false, []byte("WORLD"), ts0)
	if h.Proto() != "line" {
		t.Fatalf("proto = %q, want line", h.Proto())
	}
	if diff := cmp.Diff([]string{"request:???", "response:WORLD"}, log); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestDetectPortWithInconclusiveContent(t *testing.T) {
	var log []string
	var conns []*Conn
	reg := NewRegistry(DefaultOptions(), lineProto(&log, &conns))
	// "HEL" is only a Maybe, but the server port is the protocol's.
	h := reg.NewConn(FlowInfo{Transport: "tcp", A: ephemeral, B: service, ID: "f"}, &collected{}, nil)
	h.Data(true, []byte("HEL"), ts0)
	h.End(ts0, "eof")
	if h.Proto() != "line" || len(conns) != 1 || conns[0].Server != service {
		t.Fatalf("proto %q conns %v: want line with server %v", h.Proto(), conns, service)
	}
}

func TestDetectGivesUpAfterBound(t *testing.T) {
	var log []string
	var conns []*Conn
	reg := NewRegistry(DefaultOptions(), lineProto(&log, &conns))
	out := &collected{}
	h := reg.NewConn(FlowInfo{Transport: "tcp", A: ephemeral, B: netip.MustParseAddrPort("10.1.0.2:1234"), ID: "f"}, out, nil)
	big := []byte(strings.Repeat("x", 1000))
	for i := 0; i < 10; i++ {
		h.Data(true, big, ts0)
	}
	if h.state != unknown {
		t.Fatalf("still detecting after %d bytes", 10*len(big))
	}
	if len(h.held[0]) != 0 {
		t.Errorf("held bytes not released")
	}
	h.End(ts0, "fin")
	if len(out.entries) != 1 || out.entries[0].Size.Request != 10000 {
		t.Errorf("summary = %+v, want 10000 request bytes", out.entries)
	}
}

func TestDetectUDP(t *testing.T) {
	var log []string
	var conns []*Conn
	reg := NewRegistry(DefaultOptions(), lineProto(&log, &conns))
	h := reg.NewConn(FlowInfo{Transport: "udp", A: service, B: ephemeral, ID: "u"}, &collected{}, nil)
	h.Datagram(true, []byte("WORLD a"), ts0)
	h.Datagram(false, []byte("HELLO b"), ts0)
	h.End(ts0, "timeout")
	if diff := cmp.Diff([]string{"response:WORLD a", "request:HELLO b", "end"}, log); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestIDsAreFlowScoped(t *testing.T) {
	out := &collected{}
	reg := NewRegistry(DefaultOptions())
	h := reg.NewConn(FlowInfo{Transport: "tcp", A: ephemeral, B: service, ID: "0123"}, out, nil)
	h.Emit(&entry.Entry{})
	h.Emit(&entry.Entry{})
	if out.entries[0].ID != "0123-1" || out.entries[1].ID != "0123-2" {
		t.Errorf("ids = %q, %q", out.entries[0].ID, out.entries[1].ID)
	}
}

// idRecorder is a Recycler: it keeps copies of the ids only.
type idRecorder struct{ ids []string }

func (r *idRecorder) RecyclesEntries()    {}
func (r *idRecorder) Emit(e *entry.Entry) { r.ids = append(r.ids, strings.Clone(e.ID)) }

// TestRecyclerIDs: ids built in the handler's own buffer for a Recycler
// are right, each valid while its entry is emitted.
func TestRecyclerIDs(t *testing.T) {
	var log []string
	var conns []*Conn
	reg := NewRegistry(DefaultOptions(), lineProto(&log, &conns))
	out := &idRecorder{}
	c := netip.MustParseAddrPort("10.1.0.1:51000")
	s := netip.MustParseAddrPort("10.1.0.2:9999")
	h := reg.NewConn(FlowInfo{Transport: "tcp", A: c, B: s, Opener: OpenerA, ID: "abc"}, out, nil)
	for i := range 12 {
		h.Emit(&entry.Entry{Path: strconv.Itoa(i)})
	}
	want := []string{"abc-1", "abc-2", "abc-3", "abc-4", "abc-5", "abc-6", "abc-7", "abc-8", "abc-9", "abc-10", "abc-11", "abc-12"}
	if diff := cmp.Diff(want, out.ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if len(conns) != 0 || !h.recycles {
		t.Errorf("recycles = %v", h.recycles)
	}
}
