package worker

import (
	"runtime/metrics"
	"sync/atomic"
)

// memoryGauge tells whether the worker is over its memory budget. It
// reads the live heap (what the last GC kept) and the heap in use, and
// sheds above 3/4 of the budget live, or the whole budget in use; it
// resumes below half. The hysteresis keeps it from flapping with each GC.
type memoryGauge struct {
	budget   uint64
	samples  []metrics.Sample
	shedding atomic.Bool
	inUse    atomic.Uint64
	events   atomic.Uint64 // times shedding started
}

func newMemoryGauge(budget int64) *memoryGauge {
	return &memoryGauge{
		budget: uint64(max(budget, 0)),
		samples: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
		},
	}
}

// update samples the runtime and returns whether shedding started (true,
// false) or stopped (false, true).
func (g *memoryGauge) update() (started, stopped bool) {
	metrics.Read(g.samples)
	live, objects := sampleUint(g.samples[0]), sampleUint(g.samples[1])
	g.inUse.Store(objects)
	if g.budget == 0 {
		return false, false
	}
	over := live > g.budget/4*3 || objects > g.budget
	under := live < g.budget/2 && objects < g.budget/4*3
	switch {
	case over && !g.shedding.Load():
		g.shedding.Store(true)
		g.events.Add(1)
		return true, false
	case under && g.shedding.Load():
		g.shedding.Store(false)
		return false, true
	}
	return false, false
}

func sampleUint(s metrics.Sample) uint64 {
	if s.Value.Kind() == metrics.KindUint64 {
		return s.Value.Uint64()
	}
	return 0
}
