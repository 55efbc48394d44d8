//go:build linux

package edm

import (
	"syscall"
	"unsafe"
)

// madvHugepage is MADV_HUGEPAGE (Linux).
const madvHugepage = 14

// adviseHuge asks the kernel to back the 2 MiB-aligned interior of the
// size bytes at p with huge pages. Lookups touch the tables at random: with
// 4 KiB pages nearly every one is a TLB miss as well as a cache miss. The
// advice is best effort: where transparent huge pages are off nothing
// changes.
func adviseHuge(p unsafe.Pointer, size uintptr) {
	const huge = 2 << 20
	start := (uintptr(p) + huge - 1) &^ (huge - 1)
	end := (uintptr(p) + size) &^ (huge - 1)
	if end <= start {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start)
	_ = syscall.Madvise(b, madvHugepage)
}
