package bigqueue

import "slices"

// Check reads every record the queue keeps, from the head to the tail as
// they are when it starts, and verifies its checksum; it also checks that
// every consumer's cursor and committed offset stand at the start of a
// record. The first damage found is returned as an error wrapping
// ErrCorrupt that names the file and position. Opening the queue has
// already checked the index and the consumer files; when the records are
// intact, a named consumer's file found damaged (see DeleteConsumer) is
// the damage returned.
//
// Check does not stop producers and consumers while it runs: it holds the
// queue's lock for one arena's records at a time. Records that consumers
// retire meanwhile are skipped; records enqueued meanwhile are not checked.
func (q *MmapQueue) Check() (err error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if err := q.learnOthers(); err != nil {
		q.mu.Unlock()
		return errorf("check: %w", err)
	}
	head, tail := q.head, q.tail
	damaged := q.firstDamaged()
	waiting := make(map[int64][]string)
	for _, st := range q.allConsumers() {
		name := st.name
		if name == "" {
			name = "(default)"
		}
		// A position names the message that starts there, or in the next
		// arena when the header would not fit (see recordStart): compare
		// where messages start.
		for _, p := range [2]int64{q.s.recordStart(st.cursor.pos), q.s.recordStart(st.committed.pos)} {
			waiting[p] = append(waiting[p], name)
		}
	}
	q.mu.Unlock()

	var w window // of its own: see recover
	defer func() { err = joinErrors(err, w.close()) }()
	at, from := head, head // from: where the records checked continuously begin
	for at.pos < tail.pos {
		var jumped bool
		if at, jumped, err = q.checkArena(&w, at, tail, waiting); err != nil {
			return err
		}
		if jumped {
			from = at
		}
		if checkHook != nil {
			checkHook()
		}
	}
	delete(waiting, q.s.recordStart(at.pos))
	if at.seq != tail.seq {
		return errorf("check: %d messages between head and tail, index counts %d: %w",
			at.seq-from.seq, tail.seq-from.seq, ErrCorrupt)
	}
	for pos, names := range waiting {
		if pos >= q.s.recordStart(from.pos) {
			return errorf("check: consumer %q at position %d, which is not the start of a message: %w",
				names[0], pos, ErrCorrupt)
		}
	}
	if damaged != nil {
		return errorf("check: %w", damaged)
	}
	return nil
}

// firstDamaged returns the error of the first damaged consumer file, by
// name, or nil.
func (q *MmapQueue) firstDamaged() error {
	files := make([]string, 0, len(q.damaged))
	for file := range q.damaged {
		files = append(files, file)
	}
	if len(files) == 0 {
		return nil
	}
	return q.damaged[slices.Min(files)]
}

// checkArena verifies, under the lock, the records from at on that start in
// at's arena and end before tail, and returns the position after them.
// When consumers have moved the head past at meanwhile, it goes on from the
// head instead and reports the jump.
func (q *MmapQueue) checkArena(w *window, at, tail position, waiting map[int64][]string) (position, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return at, false, ErrClosed
	}
	jumped := false
	if q.reader {
		q.refresh()
	}
	if at.pos < q.head.pos {
		if q.head.pos >= tail.pos {
			return tail, true, nil // everything Check was to see is gone
		}
		at, jumped = q.head, true
	}
	arena, _ := q.s.arenaOf(q.s.recordStart(at.pos))
	for at.pos < tail.pos {
		if id, _ := q.s.arenaOf(q.s.recordStart(at.pos)); id != arena {
			break
		}
		delete(waiting, q.s.recordStart(at.pos))
		next, _, err := q.s.verify(w, at.pos, tail.pos)
		if err != nil {
			if q.reader {
				// The writer may have retired the arena meanwhile.
				if q.refresh(); at.pos < q.head.pos {
					return at, jumped, nil
				}
			}
			return at, jumped, errorf("check: message %d: %w", at.seq, err)
		}
		at = position{next, at.seq + 1}
	}
	return at, jumped, nil
}

// checkHook, when set by a test, runs between the arenas Check verifies,
// with the queue's lock released.
var checkHook func()
