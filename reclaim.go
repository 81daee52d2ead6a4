package bigqueue

import "sort"

// Reclamation: disk use follows the slowest consumer. An arena every
// consumer has read past is retired once the positions that passed it are
// durable: deleted, or kept as a spare for the writer to reuse (see
// arenaManager.retire). It happens at every flush, on Dequeue for large
// arenas (reclaimOnDequeue), and when an Enqueue would otherwise pass the
// SetMaxDiskUsage cap (reserve).

// reserve checks that the arenas up to position end fit under the disk cap,
// reclaiming arenas that consumers have passed when that makes room.
func (q *MmapQueue) reserve(end int64) error {
	if q.conf.maxDiskUsage <= 0 {
		return nil
	}
	usage := q.diskUsage(end)
	if usage > q.diskLimit() && q.reclaimable() {
		if err := q.flushLocked(); err != nil {
			return errorf("reclaim space: %w", err)
		}
		usage = q.diskUsage(end)
	}
	if usage > q.diskLimit() {
		compacted, err := q.s.idx.compactForRoom()
		if err != nil {
			return errorf("reclaim space: %w", err)
		}
		if compacted {
			usage = q.diskUsage(end)
		}
	}
	if usage > q.diskLimit() && q.conf.dropOldest {
		if err := q.dropOldest(end); err != nil {
			return errorf("drop the oldest arena: %w", err)
		}
		usage = q.diskUsage(end)
	}
	if usage > q.diskLimit() {
		return errorf("enqueue needs %d bytes on disk, limit is %d: %w", usage, q.diskLimit(), ErrQueueFull)
	}
	return nil
}

// diskLimit is the SetMaxDiskUsage cap, but never less than two arenas and
// the meta files: the minimum cap holds two arenas with the meta files of a
// queue without named consumers, and the 4 KiB file of each named consumer
// takes the cap past by that much rather than take an arena's room, so
// that a consumer that keeps up never makes a producer see ErrQueueFull.
func (q *MmapQueue) diskLimit() int64 {
	return max(q.conf.maxDiskUsage, 2*int64(q.conf.arenaSize)+q.metaBytes())
}

// metaBytes is what the queue's files other than arenas take on disk: the
// index, the default consumer's, the wake file, offsets.dat, and a file per
// named consumer (see minDiskUsage).
func (q *MmapQueue) metaBytes() int64 {
	return int64(len(q.consumers)+3)*metaSize + q.s.idx.diskBytes()
}

// couldFit reports whether a message of n bytes fits under the disk cap
// at all: in an empty queue, written at the start of an arena, or where the
// tail is now.
func (q *MmapQueue) couldFit(n int) bool {
	need := func(pos int64) int64 {
		arenas := (q.s.recordEnd(pos, n)-1)/int64(q.s.size) - pos/int64(q.s.size) + 1
		return arenas*int64(q.s.size) + q.metaBytes()
	}
	return min(need(0), need(q.tail.pos)) <= q.diskLimit()
}

// dropOldest makes room for records up to position end under the disk
// cap, with SetDropOldest: it moves the head, and every consumer behind
// it, to the first message of the next arena, and retires the arenas
// before it, until the records fit or only the tail's arena is left.
// Consumers that had not read the dropped messages resume at the oldest
// kept one; the jump shows in the offsets they read.
func (q *MmapQueue) dropOldest(end int64) error {
	for q.diskUsage(end) > q.diskLimit() {
		next := q.s.messageArena(q.head.pos) + 1
		if next > q.s.messageArena(q.tail.pos) {
			return nil // nothing but the tail's arena is left
		}
		head := q.tail
		if e, ok := q.s.idx.atOrAfter(next * int64(q.s.size)); ok && e.pos < q.tail.pos {
			head = e
		}
		for _, st := range q.allConsumers() {
			if q.othersMayHold(st) {
				// Its holder finds it behind the head and moves it; this
				// process's view of it moves now, as learnConsumers would.
				if st.committed.pos < head.pos {
					st.committed, st.synced = head, head
				}
				if st.cursor.pos < head.pos {
					st.cursor = head
				}
				continue
			}
			if st.cursor.pos < head.pos {
				st.cursor = head
			}
			if st.committed.pos < head.pos {
				st.setCommitted(head)
			}
		}
		if err := q.syncConsumers(); err != nil {
			return err
		}
		if err := q.syncIndex(head, q.syncedTail); err != nil {
			return err
		}
		if err := q.retireBefore(head, false); err != nil {
			return err
		}
		if err := q.s.am.waitReaped(); err != nil {
			return err
		}
	}
	return nil
}

// diskUsage is the space the queue's files would take with records written
// up to position end: every arena at its full size plus the meta files.
func (q *MmapQueue) diskUsage(end int64) int64 {
	arenas := int64(q.s.am.count())
	first, _ := q.s.arenaOf(q.tail.pos)
	last, _ := q.s.arenaOf(end - 1)
	for id := first; id <= last; id++ {
		if !q.s.am.exists(id) {
			arenas++
		}
	}
	return arenas*int64(q.conf.arenaSize) + q.metaBytes()
}

// reclaimable reports whether a flush would delete an arena.
func (q *MmapQueue) reclaimable() bool { return q.reclaimableArenas() > 0 }

// reclaimableArenas counts the arenas from the head's up to the one the
// head would move to (nextHead): those every consumer has read past and
// SetRetention does not keep.
func (q *MmapQueue) reclaimableArenas() int64 {
	first := q.s.messageArena(q.head.pos)
	next := q.s.messageArena(q.nextHead().pos)
	return next - first
}

// nextHead returns where the head may move: to the slowest consumer,
// unless SetRetention keeps more. The head stays in its arena, or moves to
// the start of a record in a later one.
func (q *MmapQueue) nextHead() position {
	head := q.slowest()
	switch r := q.conf.retention; {
	case r < 0:
		return q.head
	case r > 0 && q.held(head) < r:
		keep, ok := q.retainFrom(r)
		if !ok || keep.pos <= q.head.pos {
			return q.head
		}
		if keep.pos < head.pos {
			head = keep
		}
	}
	if q.s.messageArena(head.pos) <= q.s.messageArena(q.head.pos) {
		return q.head
	}
	return head
}

// held returns at least how many bytes of messages lie from the record at
// from to the tail: the stream's bytes less a header per record and, for
// each arena end crossed, the headerSize-1 bytes a record may have skipped
// there (counted whether or not it did).
func (q *MmapQueue) held(from position) int64 {
	first, _ := q.s.arenaOf(from.pos)
	last, _ := q.s.arenaOf(q.tail.pos)
	return q.tail.pos - from.pos - headerSize*(q.tail.seq-from.seq) - (headerSize-1)*(last-first)
}

// retainFrom returns where SetRetention(r) keeps messages from: the first
// record of the newest arena from whose start on the messages hold at
// least r bytes (held), found in the offset index. ok is false when no
// arena's does: then every message is kept.
func (q *MmapQueue) retainFrom(r int64) (position, bool) {
	entries := q.s.idx.entries
	// held grows towards the older entries, but for the skipped bytes'
	// allowance: search as if it always grew, then step back to an entry
	// that holds r.
	i := sort.Search(len(entries), func(i int) bool { return q.held(entries[i].start) < r })
	for i > 0 && q.held(entries[i-1].start) < r {
		i--
	}
	if i == 0 {
		return position{}, false
	}
	return entries[i-1].start, true
}

// slowest returns the lowest position a consumer needs: its cursor or its
// committed offset, whichever is behind; the head while a consumer's file
// is damaged (what it needs is unknown, see isDamage).
func (q *MmapQueue) slowest() position {
	if len(q.damaged) > 0 {
		return q.head
	}
	min := q.def.low()
	for _, st := range q.consumers {
		if low := st.low(); low.pos < min.pos {
			min = low
		}
	}
	return min
}

// testHookReclaimLearned, when set, is called by reclaim after it has read
// other processes' consumers, under the reclaim lock.
var testHookReclaimLearned func()

// reclaim makes every consumer's position durable, then the index with the
// given durable tail and a head moved up to the slowest consumer when that
// frees whole arenas, and then retires the arenas before the head: no
// durable position points into them any more. This order (bbolt's commit
// order) means that after a crash at any step the durable positions point
// only at data that is still there.
//
// The durable tail must be one whose records are on disk. Positions may be
// made durable past it (reclaimOnDequeue does, without syncing arenas):
// after a power loss, recovery cuts the tail back to what is on disk and
// clampConsumers moves a consumer that was past it back to it.
//
// With async set, arenas to delete are unmapped and deleted on another
// goroutine (see arenaManager.retire).
func (q *MmapQueue) reclaim(durableTail position, async bool) error {
	unlock, err := q.lockReclaim()
	if err != nil {
		return err
	}
	defer unlock()
	if err := q.learnConsumers(); err != nil {
		return err
	}
	if testHookReclaimLearned != nil {
		testHookReclaimLearned()
	}
	if err := q.syncConsumers(); err != nil {
		return err
	}
	head := q.nextHead()
	if err := q.syncIndex(head, durableTail); err != nil {
		return err
	}
	return q.retireBefore(head, async)
}

// syncConsumers makes the position of every consumer that moved durable.
func (q *MmapQueue) syncConsumers() error {
	for _, st := range q.allConsumers() {
		if st.committed == st.synced || (q.reader && st.held < 0) {
			continue
		}
		st.mf.setDurable(st.durableSlot(st.committed))
		if err := st.mf.sync(); err != nil {
			return err
		}
		st.synced = st.committed
	}
	return nil
}

// syncIndex makes head and durableTail the durable state of the index,
// unless it holds them already. Records before the head are never read
// again: a durable tail behind it (consumers that read past the last
// flush) moves up to it, so that recovery starts from the head.
func (q *MmapQueue) syncIndex(head, durableTail position) error {
	if durableTail.pos < head.pos {
		durableTail = head
	}
	if durableTail == q.syncedTail && head == q.syncedHead {
		return nil
	}
	q.idx.setDurable([4]int64{head.pos, head.seq, durableTail.pos, durableTail.seq})
	if err := q.idx.sync(); err != nil {
		return err
	}
	q.syncedTail, q.syncedHead = durableTail, head
	return nil
}

// retireBefore moves the head to head and retires the arenas before it.
// Up to maxSpares of them are kept for reuse, none under a disk cap, and
// none past a flush that finds every message read.
func (q *MmapQueue) retireBefore(head position, async bool) error {
	first := q.s.messageArena(q.head.pos)
	last := q.s.messageArena(head.pos)
	q.head = head
	am := q.s.am
	if first < last {
		tailArena, _ := q.s.arenaOf(q.tail.pos)
		keepSpares := q.conf.maxDiskUsage <= 0
		spares := 0
		if keepSpares {
			spares = am.spares(tailArena)
		}
		for id := first; id < last; id++ {
			if !am.exists(id) {
				continue
			}
			keep := keepSpares && spares < maxSpares
			if keep {
				spares++
			}
			if err := am.retire(id, tailArena, keep, async); err != nil {
				return err
			}
		}
	}
	q.s.idx.dropBefore(last)
	if !async && q.slowest().pos >= q.tail.pos {
		// Nothing is left to read: the disk holds the tail's arena and
		// nothing more, not the spares of a busy past. A flush finds
		// this, so an idle queue gives them back within a flush period.
		tailArena, _ := q.s.arenaOf(q.tail.pos)
		if err := am.dropSpares(tailArena); err != nil {
			return err
		}
	}
	am.startReap()
	if first < last {
		q.wakeRoomWaiters()
	}
	// A window open on a retired arena would keep a deleted file's blocks
	// allocated (and a spare's name stale) until its consumer reads
	// another arena.
	var errs []error
	for _, st := range q.allConsumers() {
		if st.win.open && st.win.id < last {
			errs = append(errs, st.win.close())
		}
	}
	return joinErrors(errs...)
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

// reclaimOnDequeue retires the arenas every consumer has read past, when
// they are of eagerArenaSize or more. It syncs only the small position
// files, not the arenas. An error is kept for the next Flush or Close: the
// Dequeue that triggered it has succeeded.
func (q *MmapQueue) reclaimOnDequeue() {
	if q.conf.arenaSize < eagerArenaSize || q.reclaimableArenas() < 1 {
		return
	}
	if err := q.reclaim(q.syncedTail, true); err != nil {
		q.keepAsyncError(errorf("reclaim after a dequeue: %w", err))
	}
}
