//go:build unix

package capture

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process used so
// far. Benchmarks report throughput per CPU second too, which stays
// meaningful on a loaded machine where wall-clock numbers do not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
