package capture

import "unsafe"

// prefetch asks the CPU to bring the two cache lines from p closer (a
// record header and the packet headers after it). It never faults,
// whatever p points at.
//
//go:noescape
func prefetch(p unsafe.Pointer)
