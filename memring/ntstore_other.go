//go:build !amd64

package memring

import "unsafe"

const ntLines = false

func storeLineNT(dst, src unsafe.Pointer) {
	copy(unsafe.Slice((*byte)(dst), 64), unsafe.Slice((*byte)(src), 64))
}

func storeFence() {}
