//go:build !linux

package edm

import "unsafe"

// adviseHuge is a no-op where huge pages cannot be asked for.
func adviseHuge(unsafe.Pointer, uintptr) {}
