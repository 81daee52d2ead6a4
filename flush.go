package bigqueue

import "time"

// Flush makes every Enqueue and Dequeue before it durable: they survive a
// crash of the machine, not only of the process. It syncs the arenas
// written since the last flush, then the consumer files, then the index
// that points into them, and then deletes the arenas every consumer has
// read past. It also returns an error of work done in the background (the
// periodic flush, reclaiming after a Dequeue) that was not reported yet.
func (q *MmapQueue) Flush() error {
	q.syncBehind()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.reader {
		return q.syncConsumers() // a reader's own consumers, nothing else
	}
	return joinErrors(q.takeAsyncError(), q.flushLocked())
}

// keepAsyncError keeps err, the error of work done off a caller's path,
// for the next Flush or Close, unless one is kept already.
func (q *MmapQueue) keepAsyncError(err error) {
	if q.asyncErr == nil {
		q.asyncErr = err
	}
}

// takeAsyncError returns and clears the kept background error.
func (q *MmapQueue) takeAsyncError() error {
	err := q.asyncErr
	q.asyncErr = nil
	return err
}

// flushLocked syncs the arenas written since the last flush and their
// directory entries, then reclaims (positions, index, retired arenas); the
// arenas an earlier Dequeue retired are gone when it returns.
func (q *MmapQueue) flushLocked() error {
	q.mutOps = 0
	am := q.s.am
	if q.tail.pos > q.syncedTail.pos {
		// From the old tail to the new one, and the header slot the
		// writer cleared after it.
		last, _ := q.s.arenaOf(q.tail.pos - 1)
		err := q.s.spans(q.syncedTail.pos, q.tail.pos, func(id int64, lo, hi int) error {
			if id == last {
				hi = min(hi+headerSize, q.s.size)
			}
			return am.sync(id, lo, hi)
		})
		if err != nil {
			return errorf("flush: %w", err)
		}
	}
	if err := am.syncDir(); err != nil {
		return errorf("flush: %w", err)
	}
	if err := q.s.idx.sync(); err != nil {
		return errorf("flush: %w", err)
	}
	if err := q.reclaim(q.tail, false); err != nil {
		return errorf("flush: %w", err)
	}
	if err := q.s.idx.compact(); err != nil {
		return errorf("flush: %w", err)
	}
	if err := am.waitReaped(); err != nil {
		return errorf("flush: %w", err)
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
		q.syncBehind()
		q.mu.Lock()
		if !q.closed {
			if err := q.flushLocked(); err != nil {
				q.keepAsyncError(errorf("periodic flush: %w", err))
			}
		}
		q.mu.Unlock()
	}
}
