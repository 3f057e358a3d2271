package capture

// prefetch asks the CPU to bring the two cache lines from addr closer (a
// record header and the packet headers after it). It never faults,
// whatever addr is: an address, not a pointer, for the one past a buffer's
// end is no pointer the collector may see.
//
//go:noescape
func prefetch(addr uintptr)
