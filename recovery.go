package bigqueue

import (
	"errors"
	"math"
)

// recover restores head and tail from the index after any kind of stop.
//
// The durable slot of the index holds head and tail as of the last Flush,
// which had synced every arena before it: everything before that tail is on
// disk. Records after it may or may not have reached the disk before a
// crash, so each is verified (magic, bounds, checksum with its position)
// and the queue ends before the first one that fails, or before an
// unfinished batch. The live slot, written after every Enqueue, bounds the
// walk: it is exact after a process crash, and past it lie only records
// whose Enqueue had not returned. When the live slot's checksum fails, the
// walk goes on to the end of the arena files.
func (q *MmapQueue) recover() (err error) {
	_, v, ok := q.idx.durable()
	if !ok {
		return errorf("%s: no durable state with a valid checksum: %w", q.idx.path, ErrCorrupt)
	}
	head, tail := position{v[0], v[1]}, position{v[2], v[3]}
	if head.pos < 0 || head.seq < 0 || tail.pos < head.pos || tail.seq < head.seq ||
		(tail.seq-head.seq) > (tail.pos-head.pos)/headerSize {
		return errorf("%s: head %+v and tail %+v are inconsistent: %w", q.idx.path, head, tail, ErrCorrupt)
	}
	q.head, q.syncedHead, q.syncedTail = head, head, tail
	if q.idx.durableDamaged() {
		// The newest durable state is damaged and the older one is used.
		// That is safe after a torn write (arenas are deleted only after
		// the newer state is synced), but not after damage to a state that
		// was complete: its arenas may be gone, and opening would silently
		// drop the queue and move every consumer. Refuse then.
		tailArena, _ := q.s.arenaOf(tail.pos - 1)
		for _, id := range []int64{q.s.messageArena(head.pos), tailArena} {
			if head.pos < tail.pos && !q.s.am.exists(id) {
				return errorf("%s: newest durable state damaged, and the older one points into missing %s: %w",
					q.idx.path, arenaName(id), ErrCorrupt)
			}
		}
	}

	// Arenas before the head's were being deleted when the process stopped.
	first := q.s.messageArena(head.pos)
	ids := q.s.am.ids()
	for _, id := range ids {
		if id < first {
			if err := q.s.am.remove(id); err != nil {
				return err
			}
		}
	}

	limit := tail.pos
	if len(ids) > 0 {
		limit = max(limit, (ids[len(ids)-1]+1)*int64(q.s.size))
	}
	if pos, seq, ok := q.idx.live(); ok && pos >= tail.pos && seq >= tail.seq {
		limit = min(limit, pos)
	}
	if limit < 0 { // overflow from a huge arena id
		limit = math.MaxInt64
	}

	// A window of its own, closed at the end: what it reads past the tail
	// is stale once the writer writes there.
	var w window
	defer func() { err = joinErrors(err, w.close()) }()
	// The offset index as of the last flush; the walk adds the records
	// after it, and what a cut-off batch added goes again below.
	q.s.idx = loadOffsetIndex(q.dir, q.s.am.dirFd, first, tail.pos)
	committed, at := tail, tail
	for at.pos < limit {
		next, flags, err := q.s.verify(&w, at.pos, limit)
		if errors.Is(err, ErrCorrupt) {
			break
		}
		if err != nil {
			return err
		}
		q.s.noteStart(position{q.s.recordStart(at.pos), at.seq})
		at = position{next, at.seq + 1}
		if flags&flagBatchMore == 0 {
			committed = at
		}
	}
	q.tail = committed
	q.s.idx.truncate(committed.pos)
	q.s.clearHeaderAt(committed.pos)
	q.idx.setLive(committed.pos, committed.seq)
	return nil
}

// clampConsumers keeps every consumer between head and tail. A consumer can
// be behind the head when a crash lost its last position after the arenas
// it pointed into were deleted, and ahead of the tail when records it had
// read were lost with the machine; either way it resumes at the nearest
// message that exists.
func (q *MmapQueue) clampConsumers() {
	for _, st := range q.allConsumers() {
		at := st.committed
		if at.pos < q.head.pos || at.seq < q.head.seq {
			at = q.head
		}
		if at.pos > q.tail.pos || at.seq > q.tail.seq {
			at = q.tail
		}
		switch {
		case at == st.committed:
		case q.othersMayHold(st):
			q.moveUnheld(st, at)
		default:
			st.setCommitted(at)
		}
		st.cursor = st.committed
	}
}
