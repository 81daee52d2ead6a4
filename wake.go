package bigqueue

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// wake.dat lets a writer wake readers in other processes (ReadWait,
// DequeueWait) without their polling, on Linux:
//
//	 0        4          8                                   4096
//	+--------+----------+----------------------------------- -+
//	| seq u32| waiters  |  (zeros)                            |
//	+--------+----------+-------------------------------------+
//
// A reader about to wait adds one to waiters, loads seq, looks at the tail
// once more, and only then sleeps on seq (futex). A writer that has
// published a tail and finds waiters non-zero adds one to seq and wakes
// every sleeper. With sequentially consistent atomics on both sides, either
// the writer sees the waiter, or the waiter's last look sees the tail. The
// file carries no queue state: a missing or damaged one only makes readers
// poll (pollWait).
const (
	wakeName         = "wake.dat"
	wakeSize         = 4096
	wakeSeqOffset    = 0
	wakeWaiterOffset = 4
)

// wakeFile is the mapped wake.dat.
type wakeFile struct {
	data []byte
}

// openWakeFile maps wake.dat of d, creating it when create is set.
func openWakeFile(d qdir, create bool) (*wakeFile, error) {
	flags := unix.O_RDWR
	if create {
		flags |= unix.O_CREAT
	}
	fd, err := openat(d.fd, wakeName, flags)
	if err != nil {
		return nil, errorf("open %s: %w", d.join(wakeName), err)
	}
	defer func() { _ = unix.Close(fd) }()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, errorf("stat %s: %w", d.join(wakeName), err)
	}
	if st.Size < wakeSize {
		if !create {
			return nil, errorf("%s is %d bytes: %w", d.join(wakeName), st.Size, ErrCorrupt)
		}
		if err := unix.Ftruncate(fd, wakeSize); err != nil {
			return nil, errorf("size %s: %w", d.join(wakeName), err)
		}
	}
	data, err := unix.Mmap(fd, 0, wakeSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, errorf("map %s: %w", d.join(wakeName), err)
	}
	return &wakeFile{data: data}, nil
}

func (w *wakeFile) seq() *uint32     { return (*uint32)(unsafe.Pointer(&w.data[wakeSeqOffset])) }
func (w *wakeFile) waiters() *uint32 { return (*uint32)(unsafe.Pointer(&w.data[wakeWaiterOffset])) }

// published is the writer's side: after a tail is published, wake the
// readers that wait, if any. One atomic load when none does.
func (w *wakeFile) published() {
	if w == nil || atomic.LoadUint32(w.waiters()) == 0 {
		return
	}
	atomic.AddUint32(w.seq(), 1)
	futexWakeAll(w.seq())
}

// wakeSleepers wakes a reader's ReadWait and DequeueWait calls, which
// sleep on the shared word (and, harmlessly, other readers', who look and
// sleep again): for Close and DeleteConsumer, which no writer publishes.
func (q *MmapQueue) wakeSleepers() {
	if q.reader && q.wake != nil {
		atomic.AddUint32(q.wake.seq(), 1)
		futexWakeAll(q.wake.seq())
	}
}

// sleep is the reader's side: look (under the caller's rules) and sleep
// until the writer publishes, or timeout. look reports whether there is
// something to read; sleep returns at once when there is.
func (w *wakeFile) sleep(look func() bool, timeout time.Duration) {
	atomic.AddUint32(w.waiters(), 1)
	defer atomic.AddUint32(w.waiters(), ^uint32(0))
	s := atomic.LoadUint32(w.seq())
	if look() {
		return
	}
	futexSleep(w.seq(), s, timeout)
}

// close unmaps the file.
func (w *wakeFile) close() error {
	if w == nil || w.data == nil {
		return nil
	}
	err := unix.Munmap(w.data)
	w.data = nil
	return err
}
