package benchmarks

import (
	"errors"

	ref "github.com/grandecola/bigqueue"
)

// The reference, github.com/grandecola/bigqueue v0.6.0, with exactly the
// options of this project's adapter: 64 MiB arenas, no periodic flush.

func init() {
	register(Impl{
		Name:   "reference",
		Label:  "grandecola/bigqueue",
		Module: "github.com/grandecola/bigqueue",
		Open: func(dir string, _ Config) (Queue, error) {
			q, err := ref.NewMmapQueue(dir,
				ref.SetArenaSize(64<<20),
				ref.SetPeriodicFlushOps(0),
				ref.SetPeriodicFlushDuration(0),
			)
			if err != nil {
				return nil, err
			}
			return &referenceAdapter{q: q}, nil
		},
	})
}

type referenceAdapter struct{ q *ref.MmapQueue }

func (a *referenceAdapter) Enqueue(m []byte) error { return a.q.Enqueue(m) }

func (a *referenceAdapter) Dequeue() ([]byte, error) {
	m, err := a.q.Dequeue()
	if errors.Is(err, ref.ErrEmptyQueue) {
		return nil, ErrEmpty
	}
	return m, err
}

func (a *referenceAdapter) Sync() error  { return a.q.Flush() }
func (a *referenceAdapter) Close() error { return a.q.Close() }
