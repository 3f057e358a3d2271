//go:build !amd64

package render

// plainRun finds nothing: appendString's word-wise scan does the work.
func plainRun(string) int { return 0 }
