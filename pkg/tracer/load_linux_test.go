package tracer

import (
	"errors"
	"os"
	"testing"
)

// requireTracer returns a loaded tracer, or skips where the machine truly
// cannot trace (not root, no BTF): the reason is New's own.
func requireTracer(t *testing.T) *Tracer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	tr, err := New(Options{Logf: t.Logf})
	if err != nil {
		if errors.Is(err, ErrUnavailable) && os.Getenv("SHARK_REQUIRE_EBPF") == "" {
			t.Skipf("%v", err)
		}
		t.Fatalf("New: %+v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestLoad(t *testing.T) {
	tr := requireTracer(t)
	st := tr.Stats()
	if st.Events != 0 || st.Binaries != 0 {
		t.Errorf("fresh tracer stats = %+v", st)
	}
}
