package bigqueue

// Check reads every record the queue keeps, from the head to the tail, and
// verifies its checksum; it also checks that every consumer stands at the
// start of a record. The first damage found is returned as an error
// wrapping ErrCorrupt that names the file and position. Opening the queue
// has already checked the index and the consumer files.
func (q *MmapQueue) Check() (err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	waiting := make(map[int64][]string)
	for _, st := range q.allConsumers() {
		name := st.name
		if name == "" {
			name = "(default)"
		}
		waiting[st.cursor.pos] = append(waiting[st.cursor.pos], name)
		waiting[st.committed.pos] = append(waiting[st.committed.pos], name)
	}
	var w window // of its own: see recover
	defer func() { err = joinErrors(err, w.close()) }()
	at := q.head
	for {
		delete(waiting, at.pos)
		if at.pos >= q.tail.pos {
			break
		}
		next, _, err := q.s.verify(&w, at.pos, q.tail.pos)
		if err != nil {
			return errorf("check: message %d: %w", at.seq, err)
		}
		at = position{next, at.seq + 1}
	}
	if at.seq != q.tail.seq {
		return errorf("check: %d messages between head and tail, index counts %d: %w",
			at.seq-q.head.seq, q.tail.seq-q.head.seq, ErrCorrupt)
	}
	for pos, names := range waiting {
		return errorf("check: consumer %q at position %d, which is not the start of a message: %w",
			names[0], pos, ErrCorrupt)
	}
	return nil
}
