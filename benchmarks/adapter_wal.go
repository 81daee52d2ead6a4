package benchmarks

import (
	"sync"
	"sync/atomic"

	"github.com/tidwall/wal"
)

// github.com/tidwall/wal is a write-ahead log, not a queue; used as one the
// way its README suggests: Write at LastIndex+1, Read the oldest index,
// TruncateFront to drop what was read.
//
// Options are wal.DefaultOptions (binary format, 20 MB segments, 2 cached
// segments, Read returns a copy) with two changes: NoSync (the default fsyncs
// every Write) and AllowEmpty (so a fully read log can be truncated to empty).
// The durable workload keeps NoSync and calls Log.Sync every 100 messages.
//
// TruncateFront rewrites the rest of the current segment into a new file and
// fsyncs it, so calling it after every read would copy up to a segment per
// message. The adapter keeps the read position in memory and truncates once
// a segment's worth of bytes (20 MB) has been read since the last truncation:
// disk use stays bounded and the cost is at most one extra segment copy per
// segment read. Messages read but not yet truncated would be delivered again
// after a restart (at least once), as with bigqueue's unflushed dequeues.

func init() {
	register(Impl{
		Name:   "wal",
		Label:  "tidwall/wal",
		Module: "github.com/tidwall/wal",
		Open:   openWal,
	})
}

func openWal(dir string, _ Config) (Queue, error) {
	opts := *wal.DefaultOptions
	opts.NoSync = true
	opts.AllowEmpty = true
	l, err := wal.Open(dir, &opts)
	if err != nil {
		return nil, err
	}
	first, err := l.FirstIndex()
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	last, err := l.LastIndex()
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	a := &walAdapter{log: l, head: first, truncateBytes: opts.SegmentSize}
	a.last.Store(last)
	return a, nil
}

type walAdapter struct {
	log *wal.Log

	wmu  sync.Mutex    // serializes writers, so indexes are handed out in order
	last atomic.Uint64 // highest index written; readers never pass it

	rmu           sync.Mutex // protects head and unTruncated
	head          uint64     // next index to read
	unTruncated   int        // bytes read since the last TruncateFront
	truncateBytes int        // truncate once this many bytes were read
}

func (a *walAdapter) Enqueue(m []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	idx := a.last.Load() + 1
	if err := a.log.Write(idx, m); err != nil {
		return err
	}
	a.last.Store(idx)
	return nil
}

func (a *walAdapter) Dequeue() ([]byte, error) {
	a.rmu.Lock()
	defer a.rmu.Unlock()
	if a.head > a.last.Load() {
		return nil, ErrEmpty
	}
	m, err := a.log.Read(a.head)
	if err != nil {
		return nil, err
	}
	a.head++
	a.unTruncated += len(m)
	if a.unTruncated >= a.truncateBytes {
		if err := a.log.TruncateFront(a.head); err != nil {
			return nil, err
		}
		a.unTruncated = 0
	}
	return m, nil
}

func (a *walAdapter) Sync() error  { return a.log.Sync() }
func (a *walAdapter) Close() error { return a.log.Close() }
