#include "textflag.h"

// The bounds of plain bytes, 0x1f and 0x7f, then " \ < > &, each in
// every byte of a vector.
DATA plainConsts<>+0(SB)/8, $0x1f1f1f1f1f1f1f1f
DATA plainConsts<>+8(SB)/8, $0x1f1f1f1f1f1f1f1f
DATA plainConsts<>+16(SB)/8, $0x7f7f7f7f7f7f7f7f
DATA plainConsts<>+24(SB)/8, $0x7f7f7f7f7f7f7f7f
DATA plainConsts<>+32(SB)/8, $0x2222222222222222
DATA plainConsts<>+40(SB)/8, $0x2222222222222222
DATA plainConsts<>+48(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA plainConsts<>+56(SB)/8, $0x5c5c5c5c5c5c5c5c
DATA plainConsts<>+64(SB)/8, $0x3c3c3c3c3c3c3c3c
DATA plainConsts<>+72(SB)/8, $0x3c3c3c3c3c3c3c3c
DATA plainConsts<>+80(SB)/8, $0x3e3e3e3e3e3e3e3e
DATA plainConsts<>+88(SB)/8, $0x3e3e3e3e3e3e3e3e
DATA plainConsts<>+96(SB)/8, $0x2626262626262626
DATA plainConsts<>+104(SB)/8, $0x2626262626262626
GLOBL plainConsts<>(SB), RODATA|NOPTR, $112

// func plainRun(s string) int
//
// Sixteen bytes a round (SSE2): a byte is plain when it is within
// [0x20, 0x7e], compared as signed so that bytes from 0x80 fall below,
// and is none of " \ < > &.
TEXT ·plainRun(SB), NOSPLIT, $0-24
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), CX
	ANDQ $~15, CX
	XORQ AX, AX
	MOVOU plainConsts<>+0(SB), X8
	MOVOU plainConsts<>+16(SB), X9
	MOVOU plainConsts<>+32(SB), X10
	MOVOU plainConsts<>+48(SB), X11
	MOVOU plainConsts<>+64(SB), X12
	MOVOU plainConsts<>+80(SB), X13
	MOVOU plainConsts<>+96(SB), X14

loop:
	CMPQ AX, CX
	JAE  done
	MOVOU (SI)(AX*1), X0
	MOVO  X0, X1
	PCMPGTB X8, X1 // b > 0x1f
	MOVO  X9, X2
	PCMPGTB X0, X2 // 0x7f > b
	PAND  X2, X1   // in [0x20, 0x7e]
	MOVO  X0, X3
	PCMPEQB X10, X3
	MOVO  X0, X4
	PCMPEQB X11, X4
	POR   X4, X3
	MOVO  X0, X4
	PCMPEQB X12, X4
	POR   X4, X3
	MOVO  X0, X4
	PCMPEQB X13, X4
	POR   X4, X3
	MOVO  X0, X4
	PCMPEQB X14, X4
	POR   X4, X3   // one of the five
	PANDN X1, X3   // plain: in range and not one of them
	PMOVMSKB X3, DX
	XORL  $0xffff, DX
	JNZ   found
	ADDQ  $16, AX
	JMP   loop

found:
	BSFL DX, DX
	ADDQ DX, AX

done:
	MOVQ AX, ret+16(FP)
	RET
