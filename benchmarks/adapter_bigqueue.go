package benchmarks

import (
	"errors"

	bigqueue "github.com/seed-ff72c416/bigqueue"
)

// This project. Same options as the reference adapter (adapter_reference.go):
// 64 MiB arenas and no periodic flush, so the only msync is the one the
// durable workload asks for through Sync.

func init() {
	register(Impl{
		Name:   "bigqueue",
		Label:  "bigqueue (this project)",
		Module: "github.com/seed-ff72c416/bigqueue",
		Open: func(dir string, _ Config) (Queue, error) {
			q, err := openBigqueue(dir)
			if err != nil {
				return nil, err
			}
			return &bigqueueAdapter{q: q}, nil
		},
	})
	register(Impl{
		Name:   "bigqueue-append",
		Label:  "bigqueue, DequeueAppend",
		Module: "github.com/seed-ff72c416/bigqueue",
		Open: func(dir string, _ Config) (Queue, error) {
			q, err := openBigqueue(dir)
			if err != nil {
				return nil, err
			}
			return &bigqueueAppendAdapter{bigqueueAdapter{q: q}}, nil
		},
	})
}

func openBigqueue(dir string) (*bigqueue.MmapQueue, error) {
	return bigqueue.NewMmapQueue(dir,
		bigqueue.SetArenaSize(64<<20),
		bigqueue.SetPeriodicFlushOps(0),
		bigqueue.SetPeriodicFlushDuration(0),
	)
}

type bigqueueAdapter struct{ q *bigqueue.MmapQueue }

func (a *bigqueueAdapter) Enqueue(m []byte) error { return a.q.Enqueue(m) }

func (a *bigqueueAdapter) Dequeue() ([]byte, error) {
	m, err := a.q.Dequeue()
	if errors.Is(err, bigqueue.ErrEmptyQueue) {
		return nil, ErrEmpty
	}
	return m, err
}

func (a *bigqueueAdapter) Sync() error  { return a.q.Flush() }
func (a *bigqueueAdapter) Close() error { return a.q.Close() }

// bigqueueAppendAdapter is the same queue read through DequeueAppend, so each
// consumer reuses its own buffer: the allocation-free read path.
type bigqueueAppendAdapter struct{ bigqueueAdapter }

func (a *bigqueueAppendAdapter) DequeueAppend(dst []byte) ([]byte, error) {
	m, err := a.q.DequeueAppend(dst)
	if errors.Is(err, bigqueue.ErrEmptyQueue) {
		return dst, ErrEmpty
	}
	return m, err
}
