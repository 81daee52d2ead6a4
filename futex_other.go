//go:build !linux

package bigqueue

import "time"

// Without futex(2), a reader polls (see pollWait): futexSleep only sleeps.
func futexSleep(_ *uint32, _ uint32, timeout time.Duration) { time.Sleep(timeout) }

func futexWakeAll(*uint32) {}

const haveFutex = false
