//go:build !amd64

package memring

import "unsafe"

// storeLineNT is a plain copy of one line where no non-temporal store is
// used, and storeFence has nothing to order.
func storeLineNT(dst, src unsafe.Pointer) {
	copy(unsafe.Slice((*byte)(dst), 64), unsafe.Slice((*byte)(src), 64))
}

func storeFence() {}
