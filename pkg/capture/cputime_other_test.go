//go:build !unix

package capture

import "time"

func processCPU() time.Duration { return 0 }
