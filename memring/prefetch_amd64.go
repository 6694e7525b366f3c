package memring

import "unsafe"

// prefetchBuffers issues PREFETCHW for the first line of each buffer
// part + bufs[i]<<shift, i < n.
//
//go:noescape
func prefetchBuffers(part unsafe.Pointer, bufs *uint32, n int, shift uint)

// prefetchRange issues PREFETCHW for every line of [p, p+n).
//
//go:noescape
func prefetchRange(p unsafe.Pointer, n uintptr)
