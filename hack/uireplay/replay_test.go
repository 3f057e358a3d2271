package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/hub/hubtest"
	"github.com/kubectl-shark/kubectl-shark/pkg/wire"
)

// startRun runs the command and returns the addresses it prints.
func startRun(t *testing.T, args ...string) (dashboard *url.URL, control string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-testdata", filepath.Join("..", "..", "testdata")}, args...), pw, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	sc := bufio.NewScanner(pr)
	for (dashboard == nil || control == "") && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Dashboard: "); ok {
			u, err := url.Parse(v)
			if err != nil {
				t.Fatal(err)
			}
			dashboard = u
		}
		if v, ok := strings.CutPrefix(sc.Text(), "Control: "); ok {
			control = v
		}
	}
	go io.Copy(io.Discard, pr)
	return dashboard, control
}

// TestReplay checks what the browser tests rely on: entries named as the
// shop's workloads come through a real hub with the printed token, the
// pcap of an entry's flow holds that flow's packets, and the hub comes
// back on the same address after a restart.
func TestReplay(t *testing.T) {
	dash, control := startRun(t, "-rate", "200")
	token := dash.Query().Get("token")
	if len(token) != 64 {
		t.Fatalf("token %q in %s, want 64 hex digits", token, dash)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := hubtest.Subscribe(ctx, dash.Host, token, `proto == "http" && method == "POST"`, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := sub.NextEntry(ctx, new(uint64))
	if err != nil {
		t.Fatal(err)
	}
	if e.Src.Workload != "frontend" && e.Src.Workload != "loadgen" || e.Dst.Workload != "catalog" || e.Dst.Namespace != "shop" || e.Node != node {
		t.Errorf("entry %s named %+v → %+v on %q, want a shop client → shop/catalog on %s", e.ID, e.Src, e.Dst, e.Node, node)
	}

	q := url.Values{"flow": {e.FlowID}, "transport": {"tcp"}, "a": {hostPort(e.Src)}, "b": {hostPort(e.Dst)}}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+dash.Host+wire.PathPcap+"?"+q.Encode(), nil)
	wire.SetToken(req.Header, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pcap: %s", resp.Status)
	}
	src, err := capture.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var p capture.Packet
	var n int
	dec := capture.NewDecoder(capture.DecoderOptions{})
	var f capture.Frame
	for {
		if err := src.Next(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		if !dec.Decode(&p, &f) || !(int(f.SrcPort) == e.Src.Port && int(f.DstPort) == e.Dst.Port || int(f.SrcPort) == e.Dst.Port && int(f.DstPort) == e.Src.Port) {
			t.Errorf("packet %d is not of the flow %d ⇄ %d", n, e.Src.Port, e.Dst.Port)
		}
	}
	if n < 4 {
		t.Errorf("the flow's pcap has %d packets, want its handshake, request and response", n)
	}

	// Restart: the same address answers again, the worker comes back.
	resp2, err := http.Post(control+"/restart?down=200ms", "", nil)
	if err != nil || resp2.StatusCode != http.StatusOK {
		t.Fatalf("restart: %v %v", err, resp2)
	}
	resp2.Body.Close()
	sub2, err := hubtest.Subscribe(ctx, dash.Host, token, "", nil)
	if err != nil {
		t.Fatalf("subscribe after the restart: %v", err)
	}
	if _, err := sub2.NextEntry(ctx, new(uint64)); err != nil {
		t.Fatalf("no entry after the restart: %v", err)
	}
}

func hostPort(ep entry.Endpoint) string {
	return net.JoinHostPort(ep.IP, strconv.Itoa(ep.Port))
}
