#include "textflag.h"

// PREFETCHW (SI): 0F 0D /1, ModRM 00 001 110. Go's assembler has no
// mnemonic for it; every CPU with the 3dnowprefetch flag (all AMD64 AMD
// parts, Intel since Broadwell) runs it, and older ones run it as a NOP.
#define PREFETCHW_SI BYTE $0x0F; BYTE $0x0D; BYTE $0x0E

// func prefetchBuffers(part unsafe.Pointer, bufs *uint32, n int, shift uint)
TEXT ·prefetchBuffers(SB), NOSPLIT, $0-32
	MOVQ part+0(FP), AX
	MOVQ bufs+8(FP), BX
	MOVQ n+16(FP), DX
	MOVQ shift+24(FP), CX
	TESTQ DX, DX
	JLE bufsdone
bufsloop:
	MOVL (BX), SI
	SHLQ CX, SI
	ADDQ AX, SI
	PREFETCHW_SI
	ADDQ $4, BX
	DECQ DX
	JNZ bufsloop
bufsdone:
	RET

// func prefetchRange(p unsafe.Pointer, n uintptr)
TEXT ·prefetchRange(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), DX
	ADDQ SI, DX
	ANDQ $-64, SI
rangeloop:
	CMPQ SI, DX
	JAE rangedone
	PREFETCHW_SI
	ADDQ $64, SI
	JMP rangeloop
rangedone:
	RET
