package pipeline_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/kubectl-shark/kubectl-shark/pkg/capture"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
	"github.com/kubectl-shark/kubectl-shark/pkg/dissect/all"
	"github.com/kubectl-shark/kubectl-shark/pkg/pipeline"
)

// BenchmarkBenchFile runs the whole engine (every dissector, JSON output to
// io.Discard) on the capture hack/bench.sh records, for profiling:
//
//	go test -run - -bench BenchFile -cpuprofile cpu.out ./pkg/pipeline
//
// BENCH_FILE overrides the path; the benchmark is skipped when it is absent.
func BenchmarkBenchFile(b *testing.B) {
	path := os.Getenv("BENCH_FILE")
	if path == "" {
		path = "../../.cache/bench/mixed-220MB-l25.pcap"
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Skipf("no bench capture (make bench records one): %v", err)
	}
	reg := all.Registry(dissect.DefaultOptions())
	shards, _ := strconv.Atoi(os.Getenv("BENCH_SHARDS"))
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		src, err := capture.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		st, err := pipeline.Run(context.Background(), src, io.Discard, pipeline.Options{Registry: reg, Render: ndjson, Shards: shards})
		src.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Written), "entries/op")
	}
}
