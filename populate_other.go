//go:build !linux

package bigqueue

// populate is not available: the writer takes page faults as it goes.
func populate([]byte) bool { return false }

// unmapAheadWorks says whether unmapAhead does anything.
const unmapAheadWorks = false

// unmapAhead does nothing off Linux: what MADV_DONTNEED does to a shared
// mapping there is not the same promise.
func unmapAhead([]byte) {}
