#include "textflag.h"

// func prefetch(p unsafe.Pointer): the line at p and the one after.
TEXT ·prefetch(SB), NOSPLIT, $0-8
	MOVQ p+0(FP), AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	RET
