package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

func TestHeaderOnlySet(t *testing.T) {
	var h headerOnly
	a, b := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:9999")
	frame := func(src, dst netip.AddrPort, flags uint8, payload string) (*capture.Frame, uint64) {
		f := &capture.Frame{Proto: capture.IPProtoTCP, Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Flags: flags, Payload: []byte(payload)}
		return f, flowHash(f)
	}
	if h.strip(frame(a, b, capture.TCPAck, "x")) {
		t.Error("stripped before the flow was counted")
	}
	h.set(b, a, true)
	h.set(a, b, true) // the same flow
	if h.n.Load() != 1 {
		t.Errorf("n = %d, want 1", h.n.Load())
	}
	if !h.strip(frame(a, b, capture.TCPAck, "x")) || !h.strip(frame(b, a, capture.TCPAck, "y")) {
		t.Error("a counted flow's data not stripped, both ways")
	}
	if h.strip(frame(a, b, capture.TCPAck, "")) {
		t.Error("stripped a packet without payload")
	}
	if h.strip(frame(a, b, capture.TCPSyn, "")) || h.n.Load() != 0 || h.strip(frame(a, b, capture.TCPAck, "x")) {
		t.Error("a SYN on the ports did not end stripping")
	}
	h.set(a, b, false) // the shard ends the old flow later: no effect
	if h.n.Load() != 0 {
		t.Errorf("n = %d after removing twice, want 0", h.n.Load())
	}
}

// TestCountedFlowHeadersOnly: a long flow of an unknown protocol is copied
// to its shard without payload once the shard counts it, its summary is
// still exact, and a later connection on the same ports (after a SYN) is
// dissected from its real bytes.
func TestCountedFlowHeadersOnly(t *testing.T) {
	const packets, size = 20000, 100
	var capt bytes.Buffer
	pc := newTCPPcap(t, &capt)
	ts := time.Unix(1700000000, 0)
	cli, srv := net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 2)
	write := func(fromCli bool, seq, ack uint32, syn, fin bool, payload []byte) {
		ts = ts.Add(10 * time.Microsecond)
		if fromCli {
			pc.write(ts, cli, srv, 40000, 9999, seq, ack, syn, fin, string(payload))
		} else {
			pc.write(ts, srv, cli, 9999, 40000, seq, ack, syn, fin, string(payload))
		}
	}
	// An unknown binary protocol, then a line protocol on the same ports.
	write(true, 99, 0, true, false, nil)
	write(false, 899, 100, true, false, nil)
	seq := uint32(100)
	blob := bytes.Repeat([]byte{0, 1, 2, 0xff}, size/4)
	for range packets {
		write(true, seq, 900, false, false, blob)
		seq += size
	}
	write(true, seq, 900, false, true, nil)
	write(false, 900, seq+1, false, true, nil)
	ts = ts.Add(time.Second)
	write(true, 5000, 0, true, false, nil)
	write(false, 7000, 5001, true, false, nil)
	write(true, 5001, 7001, false, false, []byte("REQ 1\n"))
	write(false, 7001, 5007, false, false, []byte("RES again\n"))

	src, err := capture.NewReader(bytes.NewReader(capt.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	render := func(dst []byte, e *entry.Entry) []byte {
		if c := e.Conn; c != nil {
			return fmt.Appendf(dst, "%s %d/%d bytes %d/%d packets %s\n", e.Proto, c.ClientBytes, c.ServerBytes, c.ClientPackets, c.ServerPackets, c.End)
		}
		return fmt.Appendf(dst, "%s %s %s\n", e.Proto, e.Method, e.Path)
	}
	st, err := Run(context.Background(), src, &out, Options{Registry: lineRegistry(), Render: render, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("tcp %d/0 bytes %d/0 packets fin\nline RES again\n", packets*size, packets)
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if st.HeadersOnly == 0 || st.HeadersOnly >= packets {
		t.Errorf("%d packets copied without payload, want most of the %d counted", st.HeadersOnly, packets)
	}
	t.Logf("%d of %d packets copied without payload", st.HeadersOnly, packets)
	if strings.Contains(out.String(), "\x00") {
		t.Error("zeros leaked into an entry")
	}
}
