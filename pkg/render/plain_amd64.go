package render

// plainRun returns how many bytes at the start of s need no escaping,
// looking at whole sixteen-byte blocks only: when all of them are plain,
// it returns len(s) rounded down to a block.
//
//go:noescape
func plainRun(s string) int
