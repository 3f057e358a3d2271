package worker

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubectl-shark/kubectl-shark/pkg/entry"
	"github.com/kubectl-shark/kubectl-shark/pkg/tracer/tracertest"
)

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// TestTLSOverhead measures what TLS tracing costs the traced server: wrk
// against nginx over HTTPS (keep-alive, HTTP/1.1) in a pod namespace, with
// no worker, an AF_PACKET-only worker, and a worker tracing TLS, in
// alternating rounds of one run (the machine may be busy with other work:
// medians of rounds, and nginx's own CPU time per request, which contention
// does not inflate). Both wrk and nginx use OpenSSL, so every request is
// traced at both ends. Run it with SHARK_TLS_OVERHEAD=1.
func TestTLSOverhead(t *testing.T) {
	if os.Getenv("SHARK_TLS_OVERHEAD") == "" {
		t.Skip("set SHARK_TLS_OVERHEAD=1 to measure (about a minute)")
	}
	tracertest.Require(t, "nginx", "wrk")
	requireTLSTracing(t)
	secs := 4
	if n, err := strconv.Atoi(os.Getenv("SHARK_TLS_OVERHEAD_SECONDS")); err == nil && n > 0 {
		secs = n
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("SHARK_TLS_OVERHEAD_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	ns := tracertest.NewNetns(t)
	tracertest.StartNginx(t, ns, 1)
	wrk := func() (rate, cpuPerReq, selfPerReq float64) {
		self0 := selfCPU()
		cpu0 := netnsCPU(t, ns.Ino, "nginx")
		out, err := ns.Command("wrk", "-t1", "-c16", "-d"+strconv.Itoa(secs)+"s", "https://127.0.0.1:8443/hello").CombinedOutput()
		cpu := netnsCPU(t, ns.Ino, "nginx") - cpu0
		self := selfCPU() - self0
		m := wrkRate.FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("wrk: %v\n%s", err, out)
		}
		rate, _ = strconv.ParseFloat(string(m[1]), 64)
		n := rate * float64(secs)
		return rate, cpu.Seconds() * 1e6 / n, self.Seconds() * 1e6 / n
	}
	wrk() // warm up
	type result struct{ rates, cpus, selfs []float64 }
	configs := []string{"alone", "af_packet worker", "TLS tracing worker"}
	res := make([]result, len(configs))
	var last TLSStats
	for range rounds {
		for i, name := range configs {
			var stop func() error
			var w *Worker
			if i > 0 {
				discard := func(dst []byte, e *entry.Entry) []byte { return dst }
				w, _, stop = runWorker(t, Options{TLS: i == 2, Logf: func(string, ...any) {}, Render: discard},
					Target{Netns: ns.Path, Namespace: "bench", Name: "nginx"})
				waitFor(t, 10*time.Second, name, func() bool {
					return w.Stats().Attached == 1 && (i < 2 || w.TLSStats().Binaries > 0)
				})
			}
			r, c, sc := wrk()
			res[i].rates = append(res[i].rates, r)
			res[i].cpus = append(res[i].cpus, c)
			res[i].selfs = append(res[i].selfs, sc)
			if stop != nil {
				if i == 2 {
					last = w.TLSStats()
				}
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	base, baseCPU := median(res[0].rates), median(res[0].cpus)
	var b strings.Builder
	fmt.Fprintf(&b, "nginx over TLS, wrk -t1 -c16, %d rounds of %ds (medians):", rounds, secs)
	for i, name := range configs {
		r, c := median(res[i].rates), median(res[i].cpus)
		fmt.Fprintf(&b, "\n  %-20s %8.0f req/s (%+5.1f%%), nginx CPU %5.1f µs/request (%+5.1f%%), worker CPU %5.1f µs/request; rounds %v",
			name, r, 100*(r/base-1), c, 100*(c/baseCPU-1), median(res[i].selfs), round0(res[i].rates))
	}
	fmt.Fprintf(&b, "\n  last traced round: %d connections, %d chunks replayed, %d ring-full, %d queue drops",
		last.Conns, last.Chunks, last.RingFull, last.QueueDrops)
	t.Log(b.String())
	if last.RingFull != 0 || last.QueueDrops != 0 {
		t.Errorf("traced round lost events: %+v", last)
	}
}

// selfCPU is this process's CPU time: the worker's, in the rounds that
// run one.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func round0(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// netnsCPU sums the user and system time of the processes named comm in
// network namespace ino (uprobe handling counts as the probed process's
// system time).
func netnsCPU(t *testing.T, ino uint64, comm string) time.Duration {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var ticks uint64
	for _, de := range ents {
		if _, err := strconv.Atoi(de.Name()); err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", de.Name(), "ns", "net"), &st) != nil || st.Ino != ino {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		open, close := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if open < 0 || close < open || string(data[open+1:close]) != comm {
			continue
		}
		f := strings.Fields(string(data[close+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseUint(f[11], 10, 64)
		s, _ := strconv.ParseUint(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
