package memring

import "unsafe"

// storeLineNT copies the 64 bytes at src to the 64-byte aligned dst with
// non-temporal stores: the line goes to memory, and every cached copy of
// it (the consumer's) is invalidated without first fetching it.
//
//go:noescape
func storeLineNT(dst, src unsafe.Pointer)

// storeFence orders the non-temporal stores before every later store.
func storeFence()
