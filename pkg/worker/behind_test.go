package worker

import (
	"testing"
	"time"
)

func TestBehindGauge(t *testing.T) {
	// A 64 MiB ring at 640 MB/s lasts about 100 ms: shed past ~25 ms of
	// lag, resume under ~6 ms.
	g := newBehindGauge(64<<20, 5*time.Millisecond)
	now := time.Unix(1000, 0)
	step := func(lag time.Duration) bool {
		now = now.Add(10 * time.Millisecond)
		return g.update(now.Add(-lag), 6_400_000, now) // 640 MB/s
	}
	for i := 0; i < 30; i++ {
		if step(time.Millisecond) {
			t.Fatalf("shedding at 1ms of lag (step %d)", i)
		}
	}
	if !step(40 * time.Millisecond) {
		t.Fatal("not shedding at 40ms of lag")
	}
	if !step(15 * time.Millisecond) {
		t.Fatal("stopped shedding at 15ms: no hysteresis")
	}
	if step(2 * time.Millisecond) {
		t.Fatal("still shedding once caught up")
	}
	if g.events != 1 {
		t.Errorf("%d events", g.events)
	}

	// At a trickle the ring lasts long: seconds of lag are fine, up to
	// maxLag.
	g = newBehindGauge(64<<20, 25*time.Millisecond)
	now = time.Unix(2000, 0)
	for i := 0; i < 100; i++ {
		now = now.Add(100 * time.Millisecond)
		if g.update(now.Add(-time.Second), 1000, now) {
			t.Fatalf("shedding a trickle at step %d", i)
		}
	}
	now = now.Add(100 * time.Millisecond)
	if !g.update(now.Add(-3*time.Second), 1000, now) {
		t.Fatal("not shedding past maxLag")
	}
}
