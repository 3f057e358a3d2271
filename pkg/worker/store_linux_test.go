package worker

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/store"
)

func openTestStore(t *testing.T, limit int64) *store.Store {
	t.Helper()
	s, err := store.Open(store.Options{Dir: t.TempDir(), Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.RemoveAll() })
	return s
}

// tsharkCounts returns tshark's packet count per interface name.
func tsharkCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.interface_name").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	counts := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			counts[l]++
		}
	}
	return counts
}

func exportFile(t *testing.T, s *store.Store, q store.Query) (string, store.ExportStats) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := s.Export(context.Background(), f, q)
	if err != nil {
		t.Fatal(err)
	}
	return path, st
}

// TestWorkerStore checks that the store holds every captured packet of
// each pod under the pod's name, and answers "the packets of this entry's
// flow" from the entry alone.
func TestWorkerStore(t *testing.T) {
	requireRoot(t, "tshark")
	env := newEnv(t)
	web := env.pod("shop/web", "v2-systemd")
	api := env.pod("shop/api", "v1-cgroupfs")
	web.httpServer()
	api.httpServer()
	st := openTestStore(t, 64<<20)
	w, out, stop := runWorker(t, Options{Sinks: []Sink{st}}, web.target(), api.target())
	waitFor(t, 3*time.Second, "attach", func() bool { return w.Stats().Attached == 2 })

	for i := 0; i < 3; i++ {
		get(t, env, "http://"+web.ip+":8080/hello")
		get(t, env, "http://"+api.ip+":8080/big")
	}
	// web calls api: both pods see the packets; the store keeps both copies.
	c := env.httpClient(web.ns)
	resp, err := c.Get("http://" + api.ip + ":8080/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CloseIdleConnections()
	waitFor(t, 10*time.Second, "entries", func() bool { return len(out.entries(t)) == 7 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	wst := w.Stats()
	if wst.KernelDrops != 0 || wst.SinkDrops != 0 {
		t.Fatalf("drops: %+v", wst)
	}

	path, es := exportFile(t, st, store.Query{})
	got := tsharkCounts(t, path)
	if got["shop/web"] == 0 || got["shop/api"] == 0 || len(got) != 2 {
		t.Fatalf("interfaces in the export: %v", got)
	}
	if total := got["shop/web"] + got["shop/api"]; uint64(total) != wst.Packets || es.Packets != wst.Packets {
		t.Errorf("export holds %d packets (tshark %v), the worker captured %d", es.Packets, got, wst.Packets)
	}
	// One pod, over the last minute.
	path, _ = exportFile(t, st, store.Query{Pods: []string{"shop/api"}, From: time.Now().Add(-time.Minute)})
	if diff := cmp.Diff(map[string]int{"shop/api": got["shop/api"]}, tsharkCounts(t, path)); diff != "" {
		t.Errorf("one pod (-want +got):\n%s", diff)
	}
	// The packets of each entry's flow, from the entry's flow_id, src and
	// dst (tshark starts slowly: a few entries are enough).
	for _, e := range out.entries(t)[:3] {
		a := netip.AddrPortFrom(netip.MustParseAddr(e.Src.IP), uint16(e.Src.Port))
		b := netip.AddrPortFrom(netip.MustParseAddr(e.Dst.IP), uint16(e.Dst.Port))
		path, fs := exportFile(t, st, store.Query{Flow: &store.Flow{ID: e.FlowID, Transport: "tcp", A: a, B: b}})
		if !fs.FlowFound || fs.Packets < 6 {
			t.Errorf("flow of %s %s: %+v", e.Method, e.Path, fs)
			continue
		}
		o, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(o)), "\n") {
			ports := strings.Fields(l)
			if len(ports) != 2 || !(ports[0] == "8080" && ports[1] == itoa(e.Src.Port) || ports[1] == "8080" && ports[0] == itoa(e.Src.Port)) {
				t.Errorf("flow of %s: packet %q of another flow", e.ID, l)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// metricValue returns the value of a metric without labels.
func metricValue(t *testing.T, w *Worker, name string) float64 {
	t.Helper()
	mfs, err := w.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestWorkerShedsDissectionFirst runs a worker far over its memory budget:
// it stops dissecting, counts what it shed, and still stores every packet.
func TestWorkerShedsDissectionFirst(t *testing.T) {
	requireRoot(t)
	env := newEnv(t)
	web := env.pod("shop/web", "v2-systemd")
	web.httpServer()
	st := openTestStore(t, 16<<20)
	w, out, stop := runWorker(t, Options{Sinks: []Sink{st}, MaxMemory: 1 << 10}, web.target())
	waitFor(t, 3*time.Second, "attach", func() bool { return w.Stats().Attached == 1 })
	waitFor(t, 3*time.Second, "shedding", func() bool { return w.Stats().Shedding })
	// A packet that came before shedding started (the pod's own traffic)
	// was dissected: the reader hands blocks on as soon as they retire.
	early := w.Stats().Packets
	for i := 0; i < 5; i++ {
		get(t, env, "http://"+web.ip+":8080/hello")
	}
	waitFor(t, 5*time.Second, "shed packets counted", func() bool { return w.Stats().ShedPackets >= 30 })
	mfs, err := w.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
	}
	for _, name := range []string{"shark_worker_shed_packets_total", "shark_worker_shed_events_total", "shark_worker_packets_total",
		"shark_worker_kernel_drops_total", "shark_worker_ring_freezes_total", "shark_worker_entries_total", "shark_worker_flows_total",
		"shark_worker_dissection_errors_total", "shark_worker_pod_packets_total", "shark_worker_queue_drops_total",
		"shark_worker_store_bytes", "shark_worker_store_packets_total"} {
		if !found[name] {
			t.Errorf("metric %s missing", name)
		}
	}
	if n := metricValue(t, w, "shark_worker_shedding"); n != 1 {
		t.Errorf("shedding gauge %v", n)
	}
	if n := metricValue(t, w, "shark_worker_memory_budget_bytes"); n != 1<<10 {
		t.Errorf("budget gauge %v", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	wst := w.Stats()
	if n := len(out.entries(t)); n != 0 {
		t.Errorf("%d entries while shedding", n)
	}
	if sst := st.Stats(); sst.Packets != wst.Packets || wst.ShedPackets > wst.Packets || wst.ShedPackets+early < wst.Packets || wst.ShedEvents != 1 {
		t.Errorf("store has %d packets, worker captured %d (%d before shedding) and shed %d (%d events)", sst.Packets, wst.Packets, early, wst.ShedPackets, wst.ShedEvents)
	}
}

// TestWorkerNoDissect stores every packet and dissects none: what sniff
// -w - (raw packets to Wireshark) asks for.
func TestWorkerNoDissect(t *testing.T) {
	requireRoot(t)
	env := newEnv(t)
	web := env.pod("shop/web", "v2-systemd")
	web.httpServer()
	st := openTestStore(t, 16<<20)
	w, out, stop := runWorker(t, Options{Sinks: []Sink{st}, NoDissect: true}, web.target())
	waitFor(t, 3*time.Second, "attach", func() bool { return w.Stats().Attached == 1 })
	for i := 0; i < 5; i++ {
		get(t, env, "http://"+web.ip+":8080/hello")
	}
	waitFor(t, 5*time.Second, "packets stored", func() bool { return st.Stats().Packets >= 30 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	wst := w.Stats()
	if n := len(out.entries(t)); n != 0 {
		t.Errorf("%d entries written with NoDissect", n)
	}
	if len(wst.Entries) != 0 || wst.Assemble.TCPSegments != 0 {
		t.Errorf("dissected with NoDissect: entries %v, %d TCP segments", wst.Entries, wst.Assemble.TCPSegments)
	}
	if sst := st.Stats(); sst.Packets != wst.Packets || wst.ShedPackets != 0 {
		t.Errorf("store has %d packets, worker captured %d (%d shed)", sst.Packets, wst.Packets, wst.ShedPackets)
	}
}

// TestStoreBoundedUnderLiveFlood sends 1 GB into a pod with iperf3 and
// checks that the store never exceeds its limit by more than a segment,
// and that what it holds exports cleanly.
func TestStoreBoundedUnderLiveFlood(t *testing.T) {
	requireRoot(t, "iperf3", "tshark")
	env := newEnv(t)
	srv := env.pod("bench/iperf", "v2-systemd")
	srv.start("iperf3", "-s", "-p", "5201")
	env.waitTCP(env.host, srv.ip+":5201")
	const limit = 32 << 20
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: dir, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer st.RemoveAll()
	seg := st.Options().SegmentSize
	opts := Options{Sinks: []Sink{st}}
	opts.Capture.RingSize = 32 << 20
	w, _, stop := runWorker(t, opts, srv.target())
	waitFor(t, 3*time.Second, "attach", func() bool { return w.Stats().Attached == 1 })

	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if n := dirSize(dir); n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	}()
	o, err := exec.Command("ip", "netns", "exec", env.host, "iperf3", "-c", srv.ip, "-p", "5201", "-n", "1G", "-M", "1400").CombinedOutput()
	close(done)
	if err != nil {
		t.Fatalf("iperf3: %v\n%s", err, o)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	wst, sst := w.Stats(), st.Stats()
	t.Logf("captured %d packets (%d MB), kernel drops %d, not stored (queue full) %d, not dissected %d; store wrote %d MB, evicted %d segments, peak on disk %d MB (limit %d MB, segment %d MB)",
		wst.Packets, wst.Bytes>>20, wst.KernelDrops, wst.SinkDrops, wst.DissectDrops+wst.ShedPackets, sst.WrittenBytes>>20, sst.Evicted, peak.Load()>>20, limit>>20, seg>>20)
	if sst.WrittenBytes < 2*limit || sst.Evicted == 0 { // the ring turned over: the bound was tested
		t.Fatalf("the flood did not reach the store: %+v", sst)
	}
	if p := peak.Load(); p > limit+seg {
		t.Errorf("peak %d bytes on disk, over the limit %d plus a segment %d", p, limit, seg)
	}
	path, es := exportFile(t, st, store.Query{Pods: []string{"bench/iperf"}})
	if got := tsharkCounts(t, path); got["bench/iperf"] != int(es.Packets) || es.Packets == 0 {
		t.Errorf("tshark counts %v, export %d packets", got, es.Packets)
	}
}

func dirSize(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}
