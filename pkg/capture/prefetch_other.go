//go:build !amd64

package capture

import "unsafe"

func prefetch(unsafe.Pointer) {}
