package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/assemble"
	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
)

// distinctBuckets returns n flow hashes that fall into different buckets.
func distinctBuckets(n int) []uint64 {
	var hs []uint64
	seen := map[uint64]bool{}
	for h := uint64(1); len(hs) < n; h++ {
		if b := mix(h) % routeBuckets; !seen[b] {
			seen[b] = true
			hs = append(hs, h)
		}
	}
	return hs
}

// Flows that start together are spread evenly, whatever their hashes.
func TestRouterSpreadsNewFlows(t *testing.T) {
	for _, shards := range []int{2, 3, 4} {
		r := newRouter(shards, time.Minute, nil)
		ts := time.Unix(1700000000, 0)
		per := make([]int, shards)
		for _, h := range distinctBuckets(shards * 5) {
			per[r.tcpShard(h, ts)]++
		}
		for i, n := range per {
			if n != 5 {
				t.Errorf("%d shards: shard %d got %d of %d flows: %v", shards, i, n, shards*5, per)
			}
		}
	}
}

// A bucket keeps its shard until its flows have been idle past the
// assemblers' timeout, and is then given to the least busy shard.
func TestRouterReleasesOnlyIdleBuckets(t *testing.T) {
	const idle = 10 * time.Second
	r := newRouter(2, idle, nil)
	t0 := time.Unix(1700000000, 0)
	hs := distinctBuckets(3)
	for i, h := range hs {
		if got := r.tcpShard(h, t0); got != i%2 {
			t.Fatalf("flow %d on shard %d", i, got)
		}
	}
	// Only hs[2], on shard 0, stays busy; hs[0] (shard 0) and hs[1] go quiet.
	for _, d := range []time.Duration{idle, idle + 2*time.Second} {
		now := t0.Add(d)
		r.tcpShard(hs[2], now)
		r.sweep(now)
		if got := r.tcpShard(hs[0], now); got != 0 {
			t.Fatalf("after %v idle: moved to shard %d", d, got)
		}
		r.buckets[mix(hs[0])%routeBuckets].last = t0 // that lookup was not traffic
	}
	now := t0.Add(idle + 3*time.Second)
	r.tcpShard(hs[2], now)
	r.sweep(now)
	if got := r.tcpShard(hs[0], now); got != 1 {
		t.Errorf("released flow went to shard %d, want 1 (the idle one)", got)
	}
}

// portReuseCapture has connections on fixed port pairs that pause for a
// little less than the idle timeout and carry on, then pause for longer and
// carry on again: the assemblers keep the first pause's connections and
// close the second's, which then restart mid-stream with new flow ids.
func portReuseCapture(t *testing.T, idle time.Duration) []byte {
	var buf bytes.Buffer
	pw := newTCPPcap(t, &buf)
	ts := time.Unix(1700000000, 0)
	write := func(src, dst net.IP, sp, dp uint16, seq, ack uint32, syn bool, payload string) {
		ts = ts.Add(time.Millisecond)
		pw.write(ts, src, dst, sp, dp, seq, ack, syn, false, payload)
	}
	const flows = 12
	type conn struct {
		cp         uint16
		cseq, sseq uint32
		n          int
	}
	client, server := net.IPv4(10, 0, 0, 1), net.IPv4(10, 9, 0, 1)
	conns := make([]*conn, flows)
	for i := range conns {
		conns[i] = &conn{cp: uint16(40000 + i), cseq: 100, sseq: 900}
		c := conns[i]
		write(client, server, c.cp, 8080, c.cseq-1, 0, true, "")
		write(server, client, 8080, c.cp, c.sseq-1, c.cseq, true, "")
	}
	exchange := func(from, to int) {
		for round := 0; round < 3; round++ {
			for _, c := range conns[from:to] {
				req, res := fmt.Sprintf("REQ %d\n", c.n), fmt.Sprintf("RES %d/%d\n", c.cp, c.n)
				write(client, server, c.cp, 8080, c.cseq, c.sseq, false, req)
				c.cseq += uint32(len(req))
				write(server, client, 8080, c.cp, c.sseq, c.cseq, false, res)
				c.sseq += uint32(len(res))
				c.n++
			}
		}
	}
	exchange(0, flows)
	// Half pause just short of the timeout, while the other half work on.
	pauseEnd := ts.Add(idle - time.Second)
	for ts.Before(pauseEnd) {
		exchange(flows/2, flows)
		ts = ts.Add(100 * time.Millisecond)
	}
	exchange(0, flows)
	// Now the first half pause well past it, and the second half once more.
	pauseEnd = ts.Add(idle + 5*time.Second)
	for ts.Before(pauseEnd) {
		exchange(flows/2, flows)
		ts = ts.Add(100 * time.Millisecond)
	}
	exchange(0, flows)
	return buf.Bytes()
}

// Output is the same on any number of shards when connections pause
// around the idle timeout and their buckets are released and given out
// again: the router never moves a connection an assembler still holds.
func TestRouterPortReuseMatchesOneShard(t *testing.T) {
	const idle = 5 * time.Second
	capt := portReuseCapture(t, idle)
	run := func(shards int) string {
		src, err := capture.NewReader(bytes.NewReader(capt))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		_, err = Run(context.Background(), src, &out, Options{Registry: lineRegistry(), Render: renderLine, Shards: shards,
			Assemble: assemble.Options{TCPIdle: idle}})
		if err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	want := run(1)
	ids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		ids[strings.SplitN(line, "-", 2)[0]] = true
	}
	// 12 connections, and the 6 that paused past the timeout once more.
	if len(ids) != 18 {
		t.Fatalf("one shard: %d flow ids, want 18", len(ids))
	}
	for _, shards := range []int{2, 3, 4} {
		if got := run(shards); got != want {
			t.Errorf("%d shards: output differs from one shard", shards)
		}
	}
}
