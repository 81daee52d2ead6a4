package bigqueue

import (
	"context"
	"errors"
	"iter"
	"math"
)

// Reading with commits: a named consumer reads at its cursor, which moves
// in memory only, and commits what it has processed; a reopened queue puts
// the cursor back at the committed offset, so a crash between reading a
// message and committing it delivers it again instead of losing it.

// Message is a message read by Read, ReadWait or Messages.
type Message struct {
	// Offset is the message's place in the queue: 0 for the first message
	// ever enqueued, one more for each message after it. Offsets never
	// restart and are never reused.
	Offset uint64
	// Data is the message, in a new slice the caller owns.
	Data []byte
}

// Read returns the message at the cursor and moves the cursor past it. It
// commits nothing: call Commit once the message is processed. It returns
// ErrEmptyQueue when the cursor is past every message. A damaged record
// gives an error wrapping ErrCorrupt that names its offset, and the cursor
// stays; Seek moves past it.
func (c *Consumer) Read() (Message, error) {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	if err := c.q.usable(c.st); err != nil {
		return Message{}, err
	}
	if c.q.reader {
		c.q.refresh()
	}
	return c.q.readNextLocked(c.st)
}

// ReadWait is Read that waits for a message when there is none, as
// DequeueWait does: it returns ctx.Err() when ctx ends first and ErrClosed
// when the queue is closed while it waits.
func (c *Consumer) ReadWait(ctx context.Context) (Message, error) {
	return c.q.wait(ctx, c.st, false)
}

// Messages returns an iterator over the messages from the cursor on, each
// what ReadWait returns: it waits for new messages, and stops after the
// first error, which it yields (ctx.Err() when ctx ends). It never
// commits; the loop body decides when to:
//
//	for m, err := range c.Messages(ctx) {
//		if err != nil { ... }
//		process(m.Data)
//		err = c.Commit()
//	}
func (c *Consumer) Messages(ctx context.Context) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		for {
			m, err := c.ReadWait(ctx)
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

// Commit commits every message read so far: the cursor becomes the
// committed offset, where a reopened queue resumes. When it returns, the
// commit survives a crash of the process; after Flush, a crash of the
// machine too.
func (c *Consumer) Commit() error {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	if err := c.q.usable(c.st); err != nil {
		return err
	}
	return c.q.commitLocked(c.st, c.st.cursor, true)
}

// CommitOffset commits the messages before offset next, which lies between
// the oldest message kept and the offset the next Enqueue gets (see
// Offsets); others return an error wrapping ErrOffsetOutOfRange. It may
// commit behind the cursor or ahead of it; the cursor does not move.
func (c *Consumer) CommitOffset(next uint64) error {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	p, err := c.offsetPosition(next, "commit")
	if err != nil {
		return err
	}
	return c.q.commitLocked(c.st, p, false)
}

// Seek moves the cursor to offset, forwards or back, from the oldest
// message kept to the offset the next Enqueue gets; others return an error
// wrapping ErrOffsetOutOfRange. It commits nothing. It costs at most a walk
// over the record headers of one arena, however long the queue.
func (c *Consumer) Seek(offset uint64) error {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	p, err := c.offsetPosition(offset, "seek")
	if err != nil {
		return err
	}
	old := c.st.cursor
	c.st.cursor = p
	if err := c.q.publishPin(c.st, true); err != nil {
		c.st.cursor = old
		return errorf("consumer %q: seek: %w", c.st.name, err)
	}
	return nil
}

// offsetPosition is the common start of Seek and CommitOffset (op names
// which in errors): the consumer usable, a reader's view refreshed, and the
// position of offset. The queue's lock is held. In a reader, a walk over
// arenas SetDropOldest retired meanwhile is made again (readerRetry): an
// offset now before the head is out of range.
func (c *Consumer) offsetPosition(offset uint64, op string) (position, error) {
	if err := c.q.usable(c.st); err != nil {
		return position{}, err
	}
	var p position
	var err error
	if c.q.reader {
		err = c.q.readerRetry(func() error {
			if x := c.q.s.idx; len(x.entries) == 0 || x.entries[len(x.entries)-1].start.seq < int64(min(offset, math.MaxInt64)) {
				x.catchUp(c.q.s.messageArena(c.q.head.pos), c.q.tail.pos)
			}
			var perr error
			p, perr = c.q.positionOf(offset, &c.st.win)
			return perr
		})
	} else {
		p, err = c.q.positionOf(offset, &c.st.win)
	}
	if err != nil {
		return position{}, errorf("consumer %q: %s: %w", c.st.name, op, err)
	}
	return p, nil
}

// Committed returns the committed offset: where a reopened queue resumes.
func (c *Consumer) Committed() uint64 {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	return uint64(c.st.committed.seq)
}

// Cursor returns the offset of the message Read returns next.
func (c *Consumer) Cursor() uint64 {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	return uint64(c.st.cursor.seq)
}

// Offsets returns the offset of the oldest message the queue keeps and the
// offset the next Enqueue gets; they are equal when it keeps none. After
// Close it returns what they were.
func (q *MmapQueue) Offsets() (oldest, next uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reader && !q.closed {
		q.refresh()
	}
	return uint64(q.head.seq), uint64(q.tail.seq)
}

// readNextLocked reads the message at st's cursor into a new slice and
// moves the cursor past it.
func (q *MmapQueue) readNextLocked(st *consumerState) (Message, error) {
	at := st.cursor
	if at.pos >= q.tail.pos {
		return Message{}, ErrEmptyQueue
	}
	data, next, err := q.s.read(&st.win, at.pos, q.tail.pos, nil)
	if err != nil && q.reader && errors.Is(err, ErrCorrupt) {
		// In a reader, what the cursor points to may have gone with the
		// writer's SetDropOldest: the cursor then jumps to the oldest kept
		// message, and the jump shows in the offsets.
		if q.refresh(); st.cursor != at {
			return q.readNextLocked(st)
		}
	}
	if err != nil {
		return Message{}, errorf("consumer %q: read offset %d: %w", st.name, at.seq, err)
	}
	st.cursor = position{next, at.seq + 1}
	if q.reader && st.pinned && st.cursor.pos >= st.committed.pos {
		_ = q.publishPin(st, false) // withdraw it; failing, it only keeps more
	}
	return Message{Offset: uint64(at.seq), Data: data}, nil
}

// positionOf returns the position of the message at offset o, from the
// oldest kept to the tail (the offset the next Enqueue gets). It starts
// from the nearest position it knows at or before o (the offset index's
// entry for o's arena, the head, a consumer's cursor or committed offset)
// and walks record headers from there: at most one arena's worth, or more
// where the index has no entry (a queue written before it existed). A
// header on the way that cannot be trusted is ErrCorrupt. Unmapped arenas
// are read through w, the consumer's window, which the Read that usually
// follows then finds filled.
func (q *MmapQueue) positionOf(o uint64, w *window) (position, error) {
	if o < uint64(q.head.seq) || o > uint64(q.tail.seq) {
		return position{}, errorf("offset %d outside [%d, %d]: %w", o, q.head.seq, q.tail.seq, ErrOffsetOutOfRange)
	}
	target := int64(o)
	if target == q.tail.seq {
		return q.tail, nil
	}
	from := q.head
	if e, ok := q.s.idx.before(target); ok && e.seq >= from.seq && e.pos >= from.pos {
		from = e
	}
	for _, st := range q.allConsumers() {
		for _, c := range [2]position{st.cursor, st.committed} {
			if c.seq <= target && c.seq > from.seq {
				from = c
			}
		}
	}
	for from.seq < target {
		start, h, err := q.s.header(w, from.pos, q.tail.pos)
		if err != nil {
			return position{}, errorf("offset %d: %w", from.seq, err)
		}
		from = position{start + headerSize + int64(h.length), from.seq + 1}
	}
	return from, nil
}
