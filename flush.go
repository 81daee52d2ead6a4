package bigqueue

import (
	"errors"
	"fmt"
	"time"
)

// Flush makes every Enqueue and Dequeue before it durable: they survive a
// crash of the machine, not only of the process. It syncs the arenas
// written since the last flush, then the consumer files, then the index
// that points into them, and then deletes the arenas every consumer has
// read past. It also returns an error of the periodic flush that was not
// reported yet.
func (q *MmapQueue) Flush() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	return errors.Join(q.takeBackgroundError(), q.flushLocked())
}

// takeBackgroundError returns and clears the periodic flush's error.
func (q *MmapQueue) takeBackgroundError() error {
	err := q.bgErr
	q.bgErr = nil
	if err != nil {
		return fmt.Errorf("bigqueue: periodic flush: %w", err)
	}
	return nil
}

// flushLocked syncs data before the positions that point to it, and only
// then deletes arenas (bbolt's commit order): after a crash at any step the
// durable positions point only at durable data.
func (q *MmapQueue) flushLocked() error {
	q.mutOps = 0
	// 1. Arenas written since the last flush, and their directory entries.
	if q.tail.pos > q.syncedTail.pos {
		first, _ := q.arenaOf(q.syncedTail.pos)
		last, _ := q.arenaOf(q.tail.pos - 1)
		for id := first; id <= last; id++ {
			if err := q.am.sync(id); err != nil {
				return fmt.Errorf("bigqueue: flush: %w", err)
			}
		}
	}
	if err := q.am.syncDir(); err != nil {
		return fmt.Errorf("bigqueue: flush: %w", err)
	}
	// 2. Consumer positions.
	for _, st := range q.allConsumers() {
		if st.at == st.synced {
			continue
		}
		st.mf.setDurable([4]int64{st.at.pos, st.at.seq})
		if err := st.mf.sync(); err != nil {
			return fmt.Errorf("bigqueue: flush: %w", err)
		}
		st.synced = st.at
	}
	// 3. The index: the tail, and a head moved to the slowest consumer when
	// that frees whole arenas.
	head := q.head
	if q.reclaimable() {
		head = q.slowest()
	}
	if q.tail != q.syncedTail || head != q.syncedHead {
		q.idx.setDurable([4]int64{head.pos, head.seq, q.tail.pos, q.tail.seq})
		if err := q.idx.sync(); err != nil {
			return fmt.Errorf("bigqueue: flush: %w", err)
		}
		q.syncedTail, q.syncedHead = q.tail, head
	}
	// 4. Arenas before the new head: no durable position points into them.
	first, _ := q.arenaOf(q.head.pos)
	last, _ := q.arenaOf(head.pos)
	q.head = head
	for id := first; id < last; id++ {
		if q.am.exists(id) {
			if err := q.am.remove(id); err != nil {
				return fmt.Errorf("bigqueue: flush: %w", err)
			}
		}
	}
	return nil
}

// mutated counts n enqueues or dequeues and asks for a flush when the
// SetPeriodicFlushOps count is reached.
func (q *MmapQueue) mutated(n int64) {
	if q.conf.flushOps <= 0 {
		return
	}
	q.mutOps += n
	if q.mutOps >= q.conf.flushOps {
		select {
		case q.flushReq <- struct{}{}:
		default:
		}
	}
}

// flusher runs the periodic flush until Close. Its errors are kept for the
// next Flush or Close to return.
func (q *MmapQueue) flusher() {
	defer q.wg.Done()
	var tick <-chan time.Time
	if q.conf.flushPeriod > 0 {
		t := time.NewTicker(q.conf.flushPeriod)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-q.quit:
			return
		case <-tick:
		case <-q.flushReq:
		}
		q.mu.Lock()
		if !q.closed {
			if err := q.flushLocked(); err != nil && q.bgErr == nil {
				q.bgErr = err
			}
		}
		q.mu.Unlock()
	}
}
