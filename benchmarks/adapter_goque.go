package benchmarks

import (
	"errors"

	"github.com/beeker1121/goque"
)

// github.com/beeker1121/goque stores each message as one LevelDB key
// (goleveldb, default options). Enqueue is a Put and Dequeue a Get plus a
// Delete, all with nil write options: each write reaches the OS through
// LevelDB's journal, so it survives a crash of the process, but goque never
// asks for an fsync and exposes no way to (its *leveldb.DB is unexported).
// The durable workload is therefore reported as n/a for goque.

func init() {
	register(Impl{
		Name:   "goque",
		Label:  "beeker1121/goque",
		Module: "github.com/beeker1121/goque",
		Open:   openGoque,
		Note: "goque has no sync: its LevelDB writes use Sync=false and the DB handle is " +
			"unexported, so nothing can make an enqueue survive a power loss",
	})
}

func openGoque(dir string, cfg Config) (Queue, error) {
	if cfg.Durable {
		return nil, ErrUnsupported
	}
	q, err := goque.OpenQueue(dir)
	if err != nil {
		return nil, err
	}
	return &goqueAdapter{q: q}, nil
}

type goqueAdapter struct{ q *goque.Queue }

// Enqueue needs no copy: LevelDB copies the value into its memtable.
func (a *goqueAdapter) Enqueue(m []byte) error {
	_, err := a.q.Enqueue(m)
	return err
}

func (a *goqueAdapter) Dequeue() ([]byte, error) {
	it, err := a.q.Dequeue()
	if errors.Is(err, goque.ErrEmpty) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, err
	}
	return it.Value, nil
}

func (a *goqueAdapter) Sync() error  { return ErrUnsupported }
func (a *goqueAdapter) Close() error { return a.q.Close() }
