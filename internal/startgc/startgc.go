// Package startgc keeps the garbage collector off while the program's
// packages initialise, and Restore turns it back on.
//
// The Kubernetes client packages allocate several megabytes in their init
// functions (API scheme registration). With the collector's small starting
// heap goal, that alone ran collection cycles before main, and their scan of
// the data and bss segments turned later writes there into copy-on-write
// faults: together about a third of the start-up of `tap --read` on a small
// file. Import this package first, for its init, from a main package.
package startgc

import "runtime/debug"

// percent is GOGC as the runtime read it from the environment.
var percent = debug.SetGCPercent(-1)

// Restore gives the collector back its configured percentage. Call it at
// the start of main.
func Restore() { debug.SetGCPercent(percent) }
