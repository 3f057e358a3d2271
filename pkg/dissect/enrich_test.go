package dissect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// TestEnrich checks that a protocol with only an Enrich hook sees every
// entry, after its id is set and before it is passed on, and that it does
// not take part in detection.
func TestEnrich(t *testing.T) {
	var seen []string
	emitting := Protocol{
		Name: "emitting",
		Detect: func(b []byte) (Verdict, bool) {
			return Yes, true
		},
		NewStream: func(c *Conn, emit Emitter) StreamParser {
			return &emitParser{c: c, emit: emit}
		},
	}
	upper := Protocol{Name: "upper", Enrich: func(e *entry.Entry) {
		seen = append(seen, e.ID)
		if e.Method == "get" {
			e.Method, e.Proto = "GET", "enriched"
		}
	}}
	reg := NewRegistry(DefaultOptions(), upper, emitting)
	var got []string
	h := reg.NewConn(FlowInfo{Transport: "tcp",
		A: netip.MustParseAddrPort("10.0.0.1:4000"), B: netip.MustParseAddrPort("10.0.0.2:80"),
		Opener: OpenerA, ID: "f"}, EmitFunc(func(e *entry.Entry) {
		got = append(got, e.ID+" "+e.Proto+" "+e.Method)
	}), nil)
	ts := time.Unix(1, 0)
	h.Data(true, []byte("get"), ts)
	h.Data(true, []byte("put"), ts)
	h.End(ts, "fin")
	if diff := cmp.Diff([]string{"f-1 enriched GET", "f-2 emitting put"}, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"f-1", "f-2"}, seen); diff != "" {
		t.Errorf("enrich saw (-want +got):\n%s", diff)
	}
}

// emitParser emits one entry per Data call, its method the bytes.
type emitParser struct {
	c    *Conn
	emit Emitter
}

func (p *emitParser) Data(_ Dir, b []byte, ts time.Time) {
	e := p.c.NewEntry("emitting", ts)
	e.Method = string(b)
	p.emit.Emit(e)
}
func (p *emitParser) Gap(Dir, int)  {}
func (p *emitParser) End(time.Time) {}
