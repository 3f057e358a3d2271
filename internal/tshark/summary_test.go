package tshark

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testdata = "../../testdata"

func requireTshark(t *testing.T) {
	t.Helper()
	if !Available() {
		t.Skip("tshark not on PATH: apt-get install -y tshark to run the oracle tests")
	}
}

func readExpected(t *testing.T, capture string) Summary {
	t.Helper()
	name := strings.SplitN(capture, ".", 2)[0] + ".expected.json"
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatalf("read client log: %v (run hack/record-testdata.sh)", err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// TestSummaryMatchesClientLogs proves the oracle: on every capture, tshark's
// counts equal what the clients that made the traffic logged.
func TestSummaryMatchesClientLogs(t *testing.T) {
	requireTshark(t)
	for _, capture := range []string{
		"http1.pcap", "h2c.pcapng", "grpc.pcap", "dns.pcap", "mixed.pcapng",
		"http1-midstream.pcap", "h2c-midstream.pcap",
		// Not http1-pipeline-head.pcap: tshark 4.0 gives the pipelined
		// HEAD's response the body its Content-Length announces, and so
		// loses the responses after it.
	} {
		t.Run(capture, func(t *testing.T) {
			t.Parallel()
			want := readExpected(t, capture)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := HTTPSummary(ctx, filepath.Join(testdata, capture))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("tshark summary differs from the clients' log (-clients +tshark):\n%s", diff)
			}
		})
	}
}
