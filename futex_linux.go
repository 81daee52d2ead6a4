//go:build linux

package bigqueue

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex(2) operations on a word of a shared file mapping: not the PRIVATE
// variants, so that they work between processes.
const (
	futexWait = 0
	futexWake = 1
)

// futexSleep waits until the word at addr no longer holds val, a wake, or
// timeout. Every outcome (EAGAIN, EINTR, ETIMEDOUT) is for the caller to
// look again.
func futexSleep(addr *uint32, val uint32, timeout time.Duration) {
	ts := unix.NsecToTimespec(int64(timeout))
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWakeAll wakes every process waiting on the word at addr.
func futexWakeAll(addr *uint32) {
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(1<<31-1), 0, 0, 0)
}

// haveFutex reports whether futexSleep waits without polling.
const haveFutex = true
