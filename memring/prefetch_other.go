//go:build !amd64

package memring

import "unsafe"

func prefetchBuffers(part unsafe.Pointer, bufs *uint32, n int, shift uint) {}

func prefetchRange(p unsafe.Pointer, n uintptr) {}
