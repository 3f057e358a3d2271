//go:build !linux

package pipeline

import "io"

// vecWriter is writev where there is one; elsewhere the merger buffers.
type vecWriter struct{}

func newVecWriter(io.Writer) *vecWriter { return nil }
func (*vecWriter) add([]byte) error     { return nil }
func (*vecWriter) flush() error         { return nil }
