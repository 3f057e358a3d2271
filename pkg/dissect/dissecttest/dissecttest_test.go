package dissecttest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubectl-shark/kubectl-shark/pkg/dissect"
)

func TestChunkingsCoverEveryByte(t *testing.T) {
	for name, ch := range Chunkings(5) {
		for _, n := range []int{1, 22, 23, 24, 1000} {
			sum := 0
			for _, k := range ch(n) {
				if k < 1 || k > max(n, maxRandomChunk) {
					t.Fatalf("%s(%d): chunk %d", name, n, k)
				}
				sum += k
			}
			if sum != n {
				t.Errorf("%s(%d) sums to %d", name, n, sum)
			}
		}
	}
}

// recorder is a StreamParser that logs its calls.
type recorder struct{ calls []string }

func (r *recorder) Data(d dissect.Dir, b []byte, ts time.Time) {
	r.calls = append(r.calls, d.String()+" "+string(b)+" "+ts.Format("05.000"))
}
func (r *recorder) Gap(d dissect.Dir, n int) { r.calls = append(r.calls, "gap "+d.String()) }
func (r *recorder) End(ts time.Time)         { r.calls = append(r.calls, "end "+ts.Format("05.000")) }

func TestFeed(t *testing.T) {
	var r recorder
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []Step{CS(10, []byte("a"), []byte("b")), GapStep(dissect.ServerToClient, 3), SC(20, []byte("cd"))}
	Feed(&r, steps, Chunkings(0)["bytewise"], t0)
	cli, srv := dissect.ClientToServer.String(), dissect.ServerToClient.String()
	want := []string{cli + " a 00.010", cli + " b 00.010", "gap " + srv, srv + " c 00.020", srv + " d 00.020", "end " + t0.Add(EndAfter).Format("05.000")}
	if diff := cmp.Diff(want, r.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
