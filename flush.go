package bigqueue

import (
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
	return joinErrors(q.takeBackgroundError(), q.flushLocked())
}

// takeBackgroundError returns and clears the periodic flush's error.
func (q *MmapQueue) takeBackgroundError() error {
	err := q.bgErr
	q.bgErr = nil
	if err != nil {
		return errorf("periodic flush: %w", err)
	}
	return nil
}

// flushLocked syncs data before the positions that point to it, and only
// then retires arenas (bbolt's commit order): after a crash at any step the
// durable positions point only at durable data.
func (q *MmapQueue) flushLocked() error {
	q.mutOps = 0
	// 1. Arenas written since the last flush, and their directory entries.
	if q.tail.pos > q.syncedTail.pos {
		first, _ := q.arenaOf(q.syncedTail.pos)
		last, _ := q.arenaOf(q.tail.pos - 1)
		for id := first; id <= last; id++ {
			if err := q.am.sync(id); err != nil {
				return errorf("flush: %w", err)
			}
		}
	}
	if err := q.am.syncDir(); err != nil {
		return errorf("flush: %w", err)
	}
	// 2-4. Positions, index, arenas; and the arenas an earlier Dequeue
	// retired are gone when Flush returns.
	if err := q.syncPositions(q.tail, false); err != nil {
		return err
	}
	if err := q.am.waitReaped(); err != nil {
		return errorf("flush: %w", err)
	}
	return nil
}

// syncPositions makes every consumer's position durable, then the index
// with the given durable tail and a head moved to the slowest consumer when
// that frees whole arenas, and then retires the arenas before the head: no
// durable position points into them any more.
//
// The durable tail must be one whose records are on disk. Positions may be
// made durable past it (reclaimLocked does, without syncing arenas): after
// a power loss, recovery cuts the tail back to what is on disk and
// clampConsumers moves a consumer that was past it back to it.
//
// With later set, arenas to delete are unmapped and deleted on another
// goroutine (see arenaManager.retire).
func (q *MmapQueue) syncPositions(durableTail position, later bool) error {
	for _, st := range q.allConsumers() {
		if st.at == st.synced {
			continue
		}
		st.mf.setDurable([4]int64{st.at.pos, st.at.seq})
		if err := st.mf.sync(); err != nil {
			return errorf("flush: %w", err)
		}
		st.synced = st.at
	}
	head := q.head
	if q.reclaimable() {
		head = q.slowest()
	}
	// Records before the head are never read again; a durable tail behind
	// it (consumers that read past the last flush) moves up to it, so that
	// recovery starts from the head.
	if durableTail.pos < head.pos {
		durableTail = head
	}
	if durableTail != q.syncedTail || head != q.syncedHead {
		q.idx.setDurable([4]int64{head.pos, head.seq, durableTail.pos, durableTail.seq})
		if err := q.idx.sync(); err != nil {
			return errorf("flush: %w", err)
		}
		q.syncedTail, q.syncedHead = durableTail, head
	}
	first, _ := q.arenaOf(q.head.pos)
	last, _ := q.arenaOf(head.pos)
	q.head = head
	tailArena, _ := q.arenaOf(q.tail.pos)
	spares := -1 // counted when first needed
	for id := first; id < last; id++ {
		if !q.am.exists(id) {
			continue
		}
		keep := false
		if q.conf.maxDiskUsage <= 0 { // under a disk cap, no spares
			if spares < 0 {
				spares = q.am.spares(tailArena)
			}
			if keep = spares < maxSpares; keep {
				spares++
			}
		}
		if err := q.am.retire(id, tailArena, keep, later); err != nil {
			return errorf("flush: %w", err)
		}
	}
	q.am.startReap()
	return nil
}

// eagerArenaSize is the arena size from which a Dequeue retires the arenas
// every consumer has read past at once, without waiting for a flush. It
// costs two syncs of a small file per arena, and hands a reader's arena back
// to the writer while it is still mapped and its pages are warm: writing a
// page again costs a copy, writing a fresh one a page fault and a new page
// (a consumer that keeps up with 4 MiB messages in 16 MiB arenas ran 7x
// faster). Smaller arenas wait for the next flush, every second by default:
// retiring them on Dequeue as soon as 64 MiB were behind every consumer made
// Dequeue of 128 KiB messages in 4 MiB arenas 30% slower (munmap and unlink
// of 4 MiB files on the other core, measured side by side), for disk that
// the next flush frees anyway.
const eagerArenaSize = 16 << 20

// maybeReclaim retires the arenas every consumer has read past, when they
// are of eagerArenaSize or more. It syncs only the small position files,
// not the arenas. An error is kept for the next Flush or Close: the dequeue
// that triggered it has succeeded.
func (q *MmapQueue) maybeReclaim() {
	if q.conf.arenaSize < eagerArenaSize || q.reclaimableArenas() < 1 {
		return
	}
	if err := q.syncPositions(q.syncedTail, true); err != nil && q.bgErr == nil {
		q.bgErr = err
	}
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
