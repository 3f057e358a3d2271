package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
)

// A toy line protocol keeps these tests independent of the real dissectors:
// the client sends "REQ <n>\n", the server answers "RES <n>\n", and every
// answer is one entry.
type lineParser struct {
	conn *dissect.Conn
	emit dissect.Emitter
	buf  [2][]byte
}

func (p *lineParser) Data(dir dissect.Dir, b []byte, ts time.Time) {
	p.buf[dir] = append(p.buf[dir], b...)
	for {
		i := bytes.IndexByte(p.buf[dir], '\n')
		if i < 0 {
			return
		}
		line := string(p.buf[dir][:i])
		p.buf[dir] = p.buf[dir][i+1:]
		if dir == dissect.ServerToClient {
			e := p.conn.NewEntry("line", ts)
			e.Method, e.Path, e.Status = "RES", strings.TrimPrefix(line, "RES "), "ok"
			p.emit.Emit(e)
		}
	}
}
func (p *lineParser) Gap(dissect.Dir, int) {}
func (p *lineParser) End(time.Time)        {}

func lineRegistry() *dissect.Registry {
	return dissect.NewRegistry(dissect.DefaultOptions(), dissect.Protocol{
		Name: "line",
		Detect: func(b []byte) (dissect.Verdict, bool) {
			switch {
			case bytes.HasPrefix(b, []byte("REQ ")):
				return dissect.Yes, true
			case bytes.HasPrefix(b, []byte("RES ")):
				return dissect.Yes, false
			}
			return dissect.No, false
		},
		NewStream: func(c *dissect.Conn, emit dissect.Emitter) dissect.StreamParser {
			return &lineParser{conn: c, emit: emit}
		},
	})
}

func renderLine(dst []byte, e *entry.Entry) []byte {
	return fmt.Appendf(dst, "%s %s:%d>%s:%d %s %s %s\n", e.ID, e.Src.IP, e.Src.Port, e.Dst.IP, e.Dst.Port, e.Method, e.Path, e.Status)
}

// synth writes a pcap of nFlows interleaved connections, each with nReq
// exchanges, with some segments swapped out of order.
func synth(t testing.TB, w io.Writer, nFlows, nReq int) {
	pw := newTCPPcap(t, w)
	rng := rand.New(rand.NewSource(7))
	ts := time.Unix(1700000000, 0)
	type conn struct {
		c, s     net.IP
		cp, sp   uint16
		cseq     uint32
		sseq     uint32
		sent     int
		answered int
	}
	var conns []*conn
	for i := 0; i < nFlows; i++ {
		conns = append(conns, &conn{
			c: net.IPv4(10, 0, byte(i>>8), byte(i)), s: net.IPv4(10, 9, 0, 1),
			cp: uint16(30000 + i), sp: 8080, cseq: 100, sseq: 900,
		})
	}
	write := func(src, dst net.IP, sp, dp uint16, seq, ack uint32, syn, fin bool, payload string) {
		ts = ts.Add(50 * time.Microsecond)
		pw.write(ts, src, dst, sp, dp, seq, ack, syn, fin, payload)
	}
	for _, c := range conns {
		write(c.c, c.s, c.cp, c.sp, c.cseq-1, 0, true, false, "")
		write(c.s, c.c, c.sp, c.cp, c.sseq-1, c.cseq, true, false, "")
	}
	for done := 0; done < len(conns); {
		c := conns[rng.Intn(len(conns))]
		if c.answered == nReq {
			continue
		}
		if c.sent == c.answered {
			req := fmt.Sprintf("REQ %d\n", c.sent)
			write(c.c, c.s, c.cp, c.sp, c.cseq, c.sseq, false, false, req)
			c.cseq += uint32(len(req))
			c.sent++
			continue
		}
		res := fmt.Sprintf("RES %d/%d\n", c.cp, c.answered)
		if rng.Intn(10) == 0 && len(res) > 4 {
			// Out of order: the second half first.
			write(c.s, c.c, c.sp, c.cp, c.sseq+4, c.cseq, false, false, res[4:])
			write(c.s, c.c, c.sp, c.cp, c.sseq, c.cseq, false, false, res[:4])
		} else {
			write(c.s, c.c, c.sp, c.cp, c.sseq, c.cseq, false, false, res)
		}
		c.sseq += uint32(len(res))
		c.answered++
		if c.answered == nReq {
			write(c.c, c.s, c.cp, c.sp, c.cseq, c.sseq, false, true, "")
			write(c.s, c.c, c.sp, c.cp, c.sseq, c.cseq+1, false, true, "")
			done++
		}
	}
}

// tcpPcap writes TCP segments over IPv4 as Ethernet frames into a pcap.
type tcpPcap struct {
	t testing.TB
	w *pcapgo.Writer
}

func newTCPPcap(t testing.TB, w io.Writer) *tcpPcap {
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	return &tcpPcap{t: t, w: pw}
}

// write writes one segment at ts; ACK is set but on a client's SYN.
func (p *tcpPcap) write(ts time.Time, src, dst net.IP, sp, dp uint16, seq, ack uint32, syn, fin bool, payload string) {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Ack: ack, SYN: syn, FIN: fin, ACK: !syn || ack != 0, Window: 65535}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		p.t.Fatal(err)
	}
	b := buf.Bytes()
	if err := p.w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		p.t.Fatal(err)
	}
}

func runOn(t *testing.T, capt []byte, shards int) (string, Stats) {
	t.Helper()
	src, err := capture.NewReader(bytes.NewReader(capt))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st, err := Run(context.Background(), src, &out, Options{Registry: lineRegistry(), Render: renderLine, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), st
}

func TestEveryExchangeOnceAndDeterministic(t *testing.T) {
	const flows, reqs = 150, 20
	var capt bytes.Buffer
	synth(t, &capt, flows, reqs)
	want, st := runOn(t, capt.Bytes(), 1)
	if n := strings.Count(want, "\n"); n != flows*reqs {
		t.Fatalf("entries = %d, want %d", n, flows*reqs)
	}
	if st.Entries != flows*reqs || st.Written != flows*reqs || st.Assemble.TCPFlows != flows {
		t.Errorf("stats = %+v", st)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		f := strings.Fields(line)
		if seen[f[3]] {
			t.Fatalf("exchange %s twice", f[3])
		}
		seen[f[3]] = true
	}
	for _, shards := range []int{1, 2, 3, 8} {
		got, _ := runOn(t, capt.Bytes(), shards)
		if got != want {
			t.Errorf("output with %d shards differs from 1 shard", shards)
		}
	}
}

func TestTruncatedCaptureKeepsEntriesBeforeTheCut(t *testing.T) {
	var capt bytes.Buffer
	synth(t, &capt, 5, 10)
	cut := capt.Bytes()[:capt.Len()-7]
	src, err := capture.NewReader(bytes.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = Run(context.Background(), src, &out, Options{Registry: lineRegistry(), Render: renderLine})
	if !errors.Is(err, capture.ErrTruncated) {
		t.Fatalf("err = %v, want ErrTruncated", err)
	}
	if n := strings.Count(out.String(), "\n"); n != 50 {
		t.Errorf("entries = %d, want all 50 before the cut", n)
	}
}

// TestLiveStreamsBeforeEOF feeds a pipe and expects entries while it is
// still open, as `tcpdump -w - | kubectl shark tap --read -` does.
func TestLiveStreamsBeforeEOF(t *testing.T) {
	var capt bytes.Buffer
	synth(t, &capt, 1, 3)
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		src, err := capture.NewReader(pr)
		if err != nil {
			done <- err
			return
		}
		_, err = Run(context.Background(), src, outW, Options{Registry: lineRegistry(), Render: renderLine, Live: true, FlushInterval: 20 * time.Millisecond})
		outW.Close()
		done <- err
	}()
	go pw.Write(capt.Bytes()) // the pipe stays open: no EOF
	lines := bufio.NewScanner(outR)
	got := 0
	deadline := time.AfterFunc(10*time.Second, func() { outR.CloseWithError(errors.New("timeout")) })
	for got < 3 && lines.Scan() {
		got++
	}
	deadline.Stop()
	if got != 3 {
		t.Fatalf("got %d entries before EOF, want 3 (%v)", got, lines.Err())
	}
	pw.Close()
	for lines.Scan() {
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestContextCancelStopsCleanly(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	var capt bytes.Buffer
	synth(t, &capt, 1, 1)
	go pw.Write(capt.Bytes()[:24]) // just the file header
	src, err := capture.NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Run(ctx, src, io.Discard, Options{Registry: lineRegistry(), Render: renderLine, Live: true}); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorStopsTheRun(t *testing.T) {
	var capt bytes.Buffer
	synth(t, &capt, 50, 50)
	src, err := capture.NewReader(bytes.NewReader(capt.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), src, failingWriter{}, Options{Registry: lineRegistry(), Render: renderLine})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the write error", err)
	}
}

func TestFlowHashIsSymmetric(t *testing.T) {
	f := capture.Frame{SrcPort: 1234, DstPort: 80}
	f.Src = mustAddr("10.0.0.1")
	f.Dst = mustAddr("10.0.0.2")
	r := capture.Frame{Src: f.Dst, Dst: f.Src, SrcPort: 80, DstPort: 1234}
	for n := 1; n < 9; n++ {
		if shardOfHash(flowHash(&f), n) != shardOfHash(flowHash(&r), n) {
			t.Errorf("n=%d: directions on different shards", n)
		}
	}
}

func BenchmarkPipeline(b *testing.B) {
	var capt bytes.Buffer
	synth(b, &capt, 200, 100)
	b.SetBytes(int64(capt.Len()))
	b.ReportAllocs()
	for b.Loop() {
		src, _ := capture.NewReader(bytes.NewReader(capt.Bytes()))
		if _, err := Run(context.Background(), src, io.Discard, Options{Registry: lineRegistry(), Render: renderLine}); err != nil {
			b.Fatal(err)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestFlowHashBalancesLoopbackFlows: flows that differ only in an even
// ephemeral port (Linux's connect() prefers even ones), as on loopback, must
// spread evenly over the shards, and neighbouring ports independently: a
// client opens its busiest connections back to back, so runs of neighbours
// on one shard load it far more than the others.
func TestFlowHashBalancesLoopbackFlows(t *testing.T) {
	lo := mustAddr("127.0.0.1")
	for _, n := range []int{2, 3, 4} {
		for _, step := range []int{2, 4} {
			const flows = 4000
			count := make([]int, n)
			same, prev := 0, -1
			for i := range flows {
				f := capture.Frame{Src: lo, Dst: lo, SrcPort: uint16(33000 + i*step), DstPort: 8080}
				s := shardOfHash(flowHash(&f), n)
				count[s]++
				if s == prev {
					same++
				}
				prev = s
			}
			for i, c := range count {
				if want := flows / n; c < want*9/10 || c > want*11/10 {
					t.Errorf("n=%d step=%d: shard %d got %d of %d flows, want %d ±10%%", n, step, i, c, flows, want)
				}
			}
			if want := flows / n; same < want*8/10 || same > want*12/10 {
				t.Errorf("n=%d step=%d: %d neighbouring ports on the same shard, want about %d", n, step, same, want)
			}
		}
	}
}
