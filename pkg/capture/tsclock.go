package capture

import (
	"fmt"
	"math/bits"
	"time"
)

// tsClock converts pcapng timestamps of one interface to time.Time. The
// resolution (if_tsresol) is 10^-exp seconds, or 2^-exp when binary; the
// offset (if_tsoffset) is added in seconds.
type tsClock struct {
	binary bool
	exp    uint8
	offset int64
	perSec uint64 // decimal: units per second
	mul    uint64 // decimal: nanoseconds = remainder * mul / div
	div    uint64
}

func (c *tsClock) init() error {
	if c.binary {
		if c.exp > 63 {
			return fmt.Errorf("timestamp resolution 2^-%d is out of range: %w", c.exp, ErrCorrupt)
		}
		return nil
	}
	if c.exp > 19 { // 10^20 does not fit in 64 bits
		return fmt.Errorf("timestamp resolution 10^-%d is out of range: %w", c.exp, ErrCorrupt)
	}
	c.perSec, c.mul, c.div = pow10(c.exp), 1, 1
	if c.exp <= 9 {
		c.mul = pow10(9 - c.exp)
	} else {
		c.div = pow10(c.exp - 9)
	}
	return nil
}

func pow10(n uint8) uint64 {
	v := uint64(1)
	for range n {
		v *= 10
	}
	return v
}

func (c *tsClock) time(ts uint64) time.Time {
	var sec, ns uint64
	switch {
	case c.binary:
		sec = ts >> c.exp
		frac := ts & (1<<c.exp - 1)
		hi, lo := bits.Mul64(frac, 1e9)
		ns = hi<<(64-c.exp) | lo>>c.exp // exact floor(frac * 1e9 / 2^exp)
	case c.perSec == 1e6: // the default; constant divisors are cheap
		sec, ns = ts/1e6, ts%1e6*1e3
	case c.perSec == 1e9:
		sec, ns = ts/1e9, ts%1e9
	default:
		sec = ts / c.perSec
		ns = ts % c.perSec * c.mul / c.div
	}
	return time.Unix(int64(sec)+c.offset, int64(ns)).UTC()
}
