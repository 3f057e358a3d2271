package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/all"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
	"github.com/kubectl-shark/kubectl-shark/pkg/tracer"
)

// packetList is a capture.Source over recorded packets.
type packetList struct {
	pkts []capture.Packet
	i    int
}

func (l *packetList) Next(p *capture.Packet) error {
	if l.i >= len(l.pkts) {
		return io.EOF
	}
	*p = l.pkts[l.i]
	l.i++
	return nil
}

func (l *packetList) Interfaces() []capture.Interface {
	return []capture.Interface{{Name: "tls:shop/web", LinkType: capture.LinkRaw, SnapLen: 65535}}
}
func (l *packetList) Close() error { return nil }

// replayEvents runs events through a tlsReplay and the pipeline, and
// returns the entries.
func replayEvents(t *testing.T, evs []tracer.Event, server map[uint32]bool) ([]entry.Entry, *tlsReplay) {
	t.Helper()
	src := &packetList{}
	r := newTLSReplay(func(iface int, ts time.Time, pkt []byte) {
		src.pkts = append(src.pkts, capture.Packet{Timestamp: ts, Length: len(pkt), LinkType: capture.LinkRaw, Interface: iface, Data: bytes.Clone(pkt)})
	})
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range evs {
		r.handle(&evs[i], t0.Add(time.Duration(i)*time.Millisecond), 0, func(ev *tracer.Event) bool { return server[ev.PID] })
	}
	r.expire(t0.Add(time.Hour), t0.Add(time.Second))
	var out bytes.Buffer
	_, err := pipeline.Run(context.Background(), src, &out, pipeline.Options{
		Registry: all.Registry(dissect.DefaultOptions()),
		Render:   appendNDJSON,
		Annotate: r.procs.annotate,
		Shards:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var entries []entry.Entry
	dec := json.NewDecoder(&out)
	for {
		var e entry.Entry
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	return entries, r
}

var (
	cliAP = netip.MustParseAddrPort("10.1.0.5:40123")
	srvAP = netip.MustParseAddrPort("10.1.0.9:8443")
)

// commOf names the processes of the tests' pids.
var commOf = map[uint32]string{1: "curl", 2: "nginx"}

func ev(pid uint32, local, remote netip.AddrPort, dir tracer.Direction, off, n uint32, data string) tracer.Event {
	e := tracer.Event{PID: pid, TID: pid, FD: 7, Conn: uint64(pid) << 8, Netns: 99, Local: local, Remote: remote,
		Dir: dir, Len: n, Offset: off, Data: []byte(data)}
	copy(e.Comm[:], commOf[pid])
	return e
}

type got struct{ Proto, Method, Path, Status, Src, Dst, Error, SrcProc, DstProc string }

func summarize(es []entry.Entry) []got {
	var out []got
	proc := func(p entry.Endpoint) string {
		if p.PID == 0 && p.Process == "" {
			return ""
		}
		return fmt.Sprintf("%s[%d]", p.Process, p.PID)
	}
	for _, e := range es {
		out = append(out, got{e.Proto, e.Method, e.Path, e.Status,
			netip.AddrPortFrom(netip.MustParseAddr(e.Src.IP), uint16(e.Src.Port)).String(),
			netip.AddrPortFrom(netip.MustParseAddr(e.Dst.IP), uint16(e.Dst.Port)).String(), e.Error,
			proc(e.Src), proc(e.Dst)})
	}
	return out
}

func TestTLSReplayHTTP(t *testing.T) {
	req := "GET /hello HTTP/1.1\r\nHost: web\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	req2 := "POST /cart HTTP/1.1\r\nHost: web\r\nContent-Length: 2\r\n\r\n{}"
	resp2 := "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
	// The processes are those the tracer saw: the client's, the
	// server's, or both.
	want := func(cli, srv string) []got {
		return []got{
			{"http", "GET", "/hello", "200", cliAP.String(), srvAP.String(), "", cli, srv},
			{"http", "POST", "/cart", "201", cliAP.String(), srvAP.String(), "", cli, srv},
		}
	}
	for _, tc := range []struct {
		name     string
		evs      []tracer.Event
		server   map[uint32]bool
		cli, srv string
	}{
		{"client traced", []tracer.Event{
			ev(1, cliAP, srvAP, tracer.Sent, 0, uint32(len(req)), req),
			ev(1, cliAP, srvAP, tracer.Received, 0, uint32(len(resp)), resp),
			ev(1, cliAP, srvAP, tracer.Sent, 0, uint32(len(req2)), req2),
			ev(1, cliAP, srvAP, tracer.Received, 0, uint32(len(resp2)), resp2),
		}, nil, "curl[1]", ""},
		{"server traced", []tracer.Event{
			ev(2, srvAP, cliAP, tracer.Received, 0, uint32(len(req)), req),
			ev(2, srvAP, cliAP, tracer.Sent, 0, uint32(len(resp)), resp),
			ev(2, srvAP, cliAP, tracer.Received, 0, uint32(len(req2)), req2),
			ev(2, srvAP, cliAP, tracer.Sent, 0, uint32(len(resp2)), resp2),
		}, map[uint32]bool{2: true}, "", "nginx[2]"},
		{"both ends traced: reported once", []tracer.Event{
			ev(1, cliAP, srvAP, tracer.Sent, 0, uint32(len(req)), req),
			ev(2, srvAP, cliAP, tracer.Received, 0, uint32(len(req)), req),
			ev(2, srvAP, cliAP, tracer.Sent, 0, uint32(len(resp)), resp),
			ev(1, cliAP, srvAP, tracer.Received, 0, uint32(len(resp)), resp),
			ev(1, cliAP, srvAP, tracer.Sent, 0, uint32(len(req2)), req2),
			ev(2, srvAP, cliAP, tracer.Received, 0, uint32(len(req2)), req2),
			ev(2, srvAP, cliAP, tracer.Sent, 0, uint32(len(resp2)), resp2),
			ev(1, cliAP, srvAP, tracer.Received, 0, uint32(len(resp2)), resp2),
		}, map[uint32]bool{2: true}, "curl[1]", "nginx[2]"},
		{"a call split in chunks", []tracer.Event{
			ev(1, cliAP, srvAP, tracer.Sent, 0, uint32(len(req)), req[:10]),
			ev(1, cliAP, srvAP, tracer.Sent, 10, uint32(len(req)), req[10:]),
			ev(1, cliAP, srvAP, tracer.Received, 0, uint32(len(resp)), resp),
			ev(1, cliAP, srvAP, tracer.Sent, 0, uint32(len(req2)), req2),
			ev(1, cliAP, srvAP, tracer.Received, 0, uint32(len(resp2)), resp2),
		}, nil, "curl[1]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, r := replayEvents(t, tc.evs, tc.server)
			if diff := cmp.Diff(want(tc.cli, tc.srv), summarize(es)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if r.stats.conns != 1 {
				t.Errorf("replayed %d connections, want 1", r.stats.conns)
			}
		})
	}
}

// A chunk the tracer lost becomes a gap in the sequence space, which the
// dissector reports as one, rather than bytes shifted into the wrong place:
// both requests are still seen, and the one it cut is flagged.
func TestTLSReplayGap(t *testing.T) {
	req := "GET /a HTTP/1.1\r\nHost: web\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n" + string(bytes.Repeat([]byte("x"), 4000))
	req2 := "GET /b HTTP/1.1\r\nHost: web\r\n\r\n"
	resp2 := "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
	evs := []tracer.Event{
		ev(1, cliAP, srvAP, tracer.Sent, 0, uint32(len(req)), req),
		// The response came in two chunks; the first was lost.
		ev(1, cliAP, srvAP, tracer.Received, 2000, uint32(len(resp)), resp[2000:]),
		ev(1, cliAP, srvAP, tracer.Sent, 0, uint32(len(req2)), req2),
		ev(1, cliAP, srvAP, tracer.Received, 0, uint32(len(resp2)), resp2),
	}
	es, _ := replayEvents(t, evs, nil)
	var paths []string
	for _, e := range es {
		paths = append(paths, e.Path+" "+e.Status+" "+e.Error)
	}
	if len(es) != 2 || es[0].Path != "/a" || es[0].Error != "capture gap" || es[1].Path != "/b" {
		t.Errorf("entries after a gap = %q, want /a with a capture gap, then /b", paths)
	}
}

func TestTLSReplayNoTuple(t *testing.T) {
	e := tracer.Event{PID: 1, Dir: tracer.Sent, Len: 3, Data: []byte("abc")}
	r := newTLSReplay(func(int, time.Time, []byte) { t.Fatal("no packet expected") })
	r.handle(&e, time.Now(), 0, func(*tracer.Event) bool { return false })
	if r.stats.noTuple != 1 {
		t.Errorf("noTuple = %d", r.stats.noTuple)
	}
}

func TestTLSReplayTableBound(t *testing.T) {
	r := newTLSReplay(func(int, time.Time, []byte) {})
	r.max = 2
	for i := range 5 {
		e := ev(uint32(i+1), netip.AddrPortFrom(cliAP.Addr(), uint16(40000+i)), srvAP, tracer.Sent, 0, 1, "x")
		r.handle(&e, time.Now(), 0, func(*tracer.Event) bool { return false })
	}
	if len(r.conns) != 2 || r.stats.tableFull != 3 {
		t.Errorf("conns %d, tableFull %d; want 2, 3", len(r.conns), r.stats.tableFull)
	}
	now := time.Now()
	r.expire(now.Add(time.Hour), now)
	if len(r.conns) != 0 || len(r.flows) != 0 {
		t.Errorf("after expiry: %d conns, %d flows", len(r.conns), len(r.flows))
	}
	// The processes of closed connections outlive them by a grace period
	// (their last entries may be in the pipeline still), then go too.
	if n := len(r.procs.m); n != 2 {
		t.Errorf("process table right after expiry: %d connections, want 2", n)
	}
	r.expire(now.Add(time.Hour), now.Add(tlsProcGrace+time.Second))
	if n := len(r.procs.m); n != 0 {
		t.Errorf("process table a grace period later: %d connections, want 0", n)
	}
}

func TestLineWriters(t *testing.T) {
	var dst bytes.Buffer
	lw := newLineWriters(&dst)
	a, b := lw.writer(), lw.writer()
	a.Write([]byte("one\ntw"))
	b.Write([]byte("ALPHA\nBE"))
	a.Write([]byte("o\n"))
	b.Write([]byte("TA\n"))
	if got, want := dst.String(), "one\nALPHA\ntwo\nBETA\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendTCPPacketDecodes(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"10.0.0.1:1234", "10.0.0.2:443"},
		{"[fd00::1]:1234", "[fd00::2]:443"},
		{"[::ffff:10.0.0.1]:1234", "[::ffff:10.0.0.2]:443"},
	} {
		src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
		pkt := appendTCPPacket(nil, src, dst, 1000, 2000, tcpPSH|tcpACK, []byte("hello"))
		d := capture.NewDecoder(capture.DecoderOptions{})
		var f capture.Frame
		if !d.Decode(&capture.Packet{Data: pkt, Length: len(pkt), LinkType: capture.LinkRaw}, &f) {
			t.Fatalf("%s: not decoded: %+v", tc.src, d.Stats())
		}
		gotSrc, gotDst := netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort)
		if gotSrc != netip.AddrPortFrom(src.Addr().Unmap(), src.Port()) || gotDst != netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()) ||
			string(f.Payload) != "hello" || f.Seq != 1000 || f.Ack != 2000 {
			t.Errorf("%s: decoded %v → %v seq %d ack %d %q", tc.src, gotSrc, gotDst, f.Seq, f.Ack, f.Payload)
		}
	}
}
