package benchmarks

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	diskqueue "github.com/nsqio/go-diskqueue"
)

// github.com/nsqio/go-diskqueue, the queue inside nsqd. One goroutine owns
// the files: Put hands the message to it and waits until it is written (one
// write(2) per message); reads are delivered on an unbuffered channel
// (ReadChan) by the same goroutine, which reads one message ahead.
//
// Options are nsqd's defaults where they apply: 100 MiB per file, minimum
// message size 0. The maximum message size is the workload's size. The
// library has no explicit sync: it fsyncs the data file and rewrites its
// metadata file (write, fsync, rename) every syncEvery operations, where reads
// and writes both count, or every syncTimeout if there was activity, and on
// every file roll or removal. Non-durable workloads set syncEvery and
// syncTimeout out of reach; the durable workload sets syncEvery to 100.

func init() {
	register(Impl{
		Name:   "diskqueue",
		Label:  "nsqio/go-diskqueue",
		Module: "github.com/nsqio/go-diskqueue",
		Open:   openDiskqueue,
	})
}

const (
	diskqueueBytesPerFile = 100 << 20 // nsqd --max-bytes-per-file
	diskqueueSyncOff      = 1 << 62   // never reached: no count-based fsync
	diskqueueTimeoutOff   = time.Hour // never reached within a run
	// diskqueueStall is how long Dequeue waits for a message the queue said
	// it holds before it reports the message as lost.
	diskqueueStall = 30 * time.Second
)

func openDiskqueue(dir string, cfg Config) (Queue, error) {
	syncEvery := int64(diskqueueSyncOff)
	if cfg.Durable {
		syncEvery = 100
	}
	a := &diskqueueAdapter{abort: make(chan struct{}), done: make(chan struct{})}
	a.q = diskqueue.New("q", dir, diskqueueBytesPerFile, 0, int32(cfg.MsgSize),
		syncEvery, diskqueueTimeoutOff, a.logf)
	a.avail.Store(a.q.Depth())
	go a.watchdog()
	return a, nil
}

// diskqueueAdapter turns the channel into a non-blocking Dequeue without a
// timer per call: avail counts the messages Put has written and no Dequeue has
// claimed yet. A Dequeue that claims one may block on ReadChan, because the
// queue's goroutine will deliver exactly that many messages. If one never
// comes (the library dropped it), the watchdog aborts the waiters after
// diskqueueStall and Dequeue fails loudly instead of hanging.
type diskqueueAdapter struct {
	q        diskqueue.Interface
	avail    atomic.Int64
	waiting  atomic.Int64 // Dequeues blocked on ReadChan
	received atomic.Int64 // messages delivered on ReadChan

	abortOnce sync.Once
	abort     chan struct{} // closed by the watchdog or Close
	done      chan struct{} // closed by Close to stop the watchdog
	closeOnce sync.Once

	errMu  sync.Mutex
	libErr error // first ERROR or FATAL the library logged
}

var errDiskqueueAborted = errors.New("go-diskqueue: a message counted by Put was never delivered on ReadChan")

func (a *diskqueueAdapter) logf(lvl diskqueue.LogLevel, f string, args ...interface{}) {
	if lvl < diskqueue.WARN {
		return
	}
	msg := fmt.Sprintf(f, args...)
	fmt.Fprintf(os.Stderr, "go-diskqueue %s: %s\n", lvl, msg)
	if lvl >= diskqueue.ERROR {
		a.errMu.Lock()
		if a.libErr == nil {
			a.libErr = fmt.Errorf("go-diskqueue logged %s: %s", lvl, msg)
		}
		a.errMu.Unlock()
	}
}

func (a *diskqueueAdapter) loggedErr() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.libErr
}

func (a *diskqueueAdapter) watchdog() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, since := a.received.Load(), time.Now()
	for {
		select {
		case <-a.done:
			return
		case now := <-t.C:
			if n := a.received.Load(); n != last || a.waiting.Load() == 0 {
				last, since = n, now
				continue
			}
			if now.Sub(since) > diskqueueStall {
				a.abortOnce.Do(func() { close(a.abort) })
				return
			}
		}
	}
}

func (a *diskqueueAdapter) Enqueue(m []byte) error {
	// Put returns once the queue's goroutine has written m, so m is free again.
	if err := a.q.Put(m); err != nil {
		return err
	}
	a.avail.Add(1)
	return nil
}

func (a *diskqueueAdapter) Dequeue() ([]byte, error) {
	for {
		n := a.avail.Load()
		if n <= 0 {
			if err := a.loggedErr(); err != nil {
				return nil, err
			}
			return nil, ErrEmpty
		}
		if a.avail.CompareAndSwap(n, n-1) {
			break
		}
	}
	a.waiting.Add(1)
	defer a.waiting.Add(-1)
	select {
	case m := <-a.q.ReadChan():
		a.received.Add(1)
		return m, nil
	case <-a.abort:
		if err := a.loggedErr(); err != nil {
			return nil, errors.Join(errDiskqueueAborted, err)
		}
		return nil, errDiskqueueAborted
	}
}

// Sync is a no-op: go-diskqueue has no sync call. In the durable workload the
// queue was opened with syncEvery = 100 and syncs on its own.
func (a *diskqueueAdapter) Sync() error { return nil }

func (a *diskqueueAdapter) Close() error {
	var err error
	a.closeOnce.Do(func() {
		close(a.done)
		a.abortOnce.Do(func() { close(a.abort) })
		err = a.q.Close()
	})
	return err
}
