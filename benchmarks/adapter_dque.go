package benchmarks

import (
	"errors"
	"fmt"

	"github.com/joncrlsn/dque"
)

// github.com/joncrlsn/dque stores gob-encoded structs in segment files of a
// fixed number of items and keeps the first and the last segment decoded in
// memory. Its default "safe" mode fsyncs on every enqueue and every dequeue;
// turbo mode leaves syncing to the OS, and TurboSync fsyncs the open
// segments on demand. All workloads run in turbo mode; the durable workload
// calls TurboSync every 100 messages.

func init() {
	register(Impl{
		Name:   "dque",
		Label:  "joncrlsn/dque",
		Module: "github.com/joncrlsn/dque",
		Open:   openDque,
	})
}

// dqueItem is the struct dque stores; it only stores structs.
type dqueItem struct{ Data []byte }

func dqueItemBuilder() interface{} { return &dqueItem{} }

// dqueSegmentItems sizes a segment to hold about 4 MiB of payload, and never
// fewer than the 100 items dque's own benchmark uses.
func dqueSegmentItems(msgSize int) int {
	const segmentBytes = 4 << 20
	if msgSize <= 0 || segmentBytes/msgSize < 100 {
		return 100
	}
	return segmentBytes / msgSize
}

func openDque(dir string, cfg Config) (Queue, error) {
	q, err := dque.NewOrOpen("q", dir, dqueSegmentItems(cfg.MsgSize), dqueItemBuilder)
	if err != nil {
		return nil, err
	}
	if err := q.TurboOn(); err != nil {
		_ = q.Close()
		return nil, err
	}
	return &dqueAdapter{q: q}, nil
}

type dqueAdapter struct{ q *dque.DQue }

// Enqueue copies the message: dque keeps the enqueued struct itself in its
// in-memory tail segment and hands that same struct back from Dequeue, so a
// caller reusing its buffer would otherwise change queued messages.
func (a *dqueAdapter) Enqueue(m []byte) error {
	return a.q.Enqueue(&dqueItem{Data: append([]byte(nil), m...)})
}

func (a *dqueAdapter) Dequeue() ([]byte, error) {
	v, err := a.q.Dequeue()
	if errors.Is(err, dque.ErrEmpty) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, err
	}
	it, ok := v.(*dqueItem)
	if !ok {
		return nil, fmt.Errorf("dque returned %T, want *dqueItem", v)
	}
	return it.Data, nil
}

func (a *dqueAdapter) Sync() error  { return a.q.TurboSync() }
func (a *dqueAdapter) Close() error { return a.q.Close() }
