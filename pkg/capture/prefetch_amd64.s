#include "textflag.h"

// func prefetch(addr uintptr): the line at addr and the one after.
TEXT ·prefetch(SB), NOSPLIT, $0-8
	MOVQ addr+0(FP), AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	RET
