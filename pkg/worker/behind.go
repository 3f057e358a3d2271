package worker

import "time"

// behindGauge tells a capture when its reader has fallen behind the
// traffic: the packets it reads are old, so its ring is filling up. The
// capture then stops feeding dissection, which frees the CPU the reader
// needs (capture comes before dissection), until it has caught up.
//
// "Old" is relative to how long the ring lasts at the current rate: the
// reader sheds once it lags a quarter of the ring, and resumes below a
// sixteenth, so that it sheds well before the kernel drops anything and
// does not flap.
type behindGauge struct {
	ringBytes float64
	minLag    time.Duration // below this, lag is the ring's own batching

	rate     float64 // bytes per second, smoothed
	winStart time.Time
	winBytes int
	on       bool
	events   uint64
}

const (
	rateWindow = 250 * time.Millisecond
	maxLag     = 2 * time.Second
)

func newBehindGauge(ringBytes int, blockTimeout time.Duration) *behindGauge {
	return &behindGauge{ringBytes: float64(ringBytes), minLag: 2*blockTimeout + 10*time.Millisecond}
}

// update takes a dispatched batch, its newest packet's time and the time
// now, and reports whether the capture is behind.
func (g *behindGauge) update(newest time.Time, bytes int, now time.Time) bool {
	if g.winStart.IsZero() {
		g.winStart = now
	}
	g.winBytes += bytes
	if d := now.Sub(g.winStart); d >= rateWindow {
		r := float64(g.winBytes) / d.Seconds()
		if g.rate == 0 {
			g.rate = r
		} else {
			g.rate = 0.5*g.rate + 0.5*r
		}
		g.winStart, g.winBytes = now, 0
	}
	if g.rate <= 0 {
		return false
	}
	span := time.Duration(g.ringBytes / g.rate * float64(time.Second))
	high := min(max(span/4, g.minLag), maxLag)
	low := high / 4
	lag := now.Sub(newest)
	switch {
	case !g.on && lag > high:
		g.on = true
		g.events++
	case g.on && lag < low:
		g.on = false
	}
	return g.on
}
