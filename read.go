package bigqueue

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
	"unsafe"
)

// Dequeuing: the reference's way to consume, a Read and a Commit in one
// step, for the default consumer (methods of MmapQueue) and for named ones
// (methods of Consumer), and the helpers every read shares. commit.go has
// reading with separate commits.

// Dequeue removes the oldest message the default consumer has not read and
// returns it in a new slice the caller owns. It returns ErrEmptyQueue when
// there is none.
func (q *MmapQueue) Dequeue() ([]byte, error) { return q.dequeue(q.def, nil) }

// DequeueString is Dequeue returning a string.
func (q *MmapQueue) DequeueString() (string, error) { return q.dequeueString(q.def) }

// DequeueAppend is Dequeue that appends the message to dst and returns the
// extended slice; it does not allocate when dst has room for the message.
func (q *MmapQueue) DequeueAppend(dst []byte) ([]byte, error) { return q.dequeue(q.def, dst) }

// Peek returns the message Dequeue would return, without consuming it.
func (q *MmapQueue) Peek() ([]byte, error) { return q.peek(q.def) }

// DequeueWait is Dequeue that waits for a message when there is none. It
// returns ctx.Err() when ctx ends first and ErrClosed when the queue is
// closed while it waits. An Enqueue wakes it; it does not poll.
func (q *MmapQueue) DequeueWait(ctx context.Context) ([]byte, error) {
	if q.reader { // ErrClosed, else ErrReadOnly
		q.mu.Lock()
		defer q.mu.Unlock()
		return nil, q.writable()
	}
	m, err := q.wait(ctx, q.def, true)
	return m.Data, err
}

// IsEmpty reports whether the default consumer has read every message. It
// returns true after Close.
func (q *MmapQueue) IsEmpty() bool { return q.isEmpty(q.def) }

// Len returns how many messages the default consumer has not dequeued yet;
// 0 after Close.
func (q *MmapQueue) Len() int { return q.length(q.def) }

// Dequeue removes the next message from the consumer's view of the queue
// and returns it in a new slice the caller owns: a Read and a Commit in one
// step. It returns ErrEmptyQueue when there is none.
func (c *Consumer) Dequeue() ([]byte, error) { return c.q.dequeue(c.st, nil) }

// DequeueString is Dequeue returning a string.
func (c *Consumer) DequeueString() (string, error) { return c.q.dequeueString(c.st) }

// DequeueAppend is Dequeue that appends the message to dst and returns the
// extended slice; it does not allocate when dst has room for the message.
func (c *Consumer) DequeueAppend(dst []byte) ([]byte, error) { return c.q.dequeue(c.st, dst) }

// Peek returns the message at the cursor without moving it, or
// ErrEmptyQueue.
func (c *Consumer) Peek() ([]byte, error) { return c.q.peek(c.st) }

// DequeueWait is Dequeue that waits for a message when there is none. It
// returns ctx.Err() when ctx ends first and ErrClosed when the queue is
// closed while it waits.
func (c *Consumer) DequeueWait(ctx context.Context) ([]byte, error) {
	m, err := c.q.wait(ctx, c.st, true)
	return m.Data, err
}

// IsEmpty reports whether the cursor is past every message. It returns
// true after the queue is closed.
func (c *Consumer) IsEmpty() bool { return c.q.isEmpty(c.st) }

// Len returns how many messages lie at or after the cursor; 0 after the
// queue is closed.
func (c *Consumer) Len() int { return c.q.length(c.st) }

// usable returns the error a consumer's operation gets, if any.
func (q *MmapQueue) usable(st *consumerState) error {
	if q.closed {
		return ErrClosed
	}
	if st.deleted {
		return errorf("consumer %q was deleted: %w", st.name, ErrUnknownConsumer)
	}
	return nil
}

func (q *MmapQueue) isEmpty(st *consumerState) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.usable(st) != nil {
		return true
	}
	if q.reader {
		q.refresh()
	}
	return st.cursor.pos >= q.tail.pos
}

func (q *MmapQueue) length(st *consumerState) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.usable(st) != nil {
		return 0
	}
	if q.reader {
		q.refresh()
	}
	return int(q.tail.seq - st.cursor.seq)
}

func (q *MmapQueue) dequeue(st *consumerState, dst []byte) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(st); err != nil {
		return dst, err
	}
	if q.reader {
		if st == q.def {
			return dst, errorf("%s is open for reading: %w", q.dir, ErrReadOnly)
		}
		out, _, err := q.readerReadLocked(st, dst, true)
		return out, err
	}
	out, _, err := q.readLocked(st, dst, true)
	return out, err
}

func (q *MmapQueue) peek(st *consumerState) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(st); err != nil {
		return nil, err
	}
	if q.reader {
		out, _, err := q.readerReadLocked(st, nil, false)
		return out, err
	}
	out, _, err := q.readLocked(st, nil, false)
	return out, err
}

// testHookReaderRefreshed, when set, is called by readerRetry after it
// refreshes, before op.
var testHookReaderRefreshed func()

// readerRetry runs op in a reader, on a view of the queue just refreshed.
// The writer's SetDropOldest may retire an arena op reads meanwhile: when
// op fails with ErrCorrupt and a refresh shows that the head has moved on
// (the cursors with it), op runs again from there.
func (q *MmapQueue) readerRetry(op func() error) error {
	for {
		q.refresh()
		if testHookReaderRefreshed != nil {
			testHookReaderRefreshed()
		}
		head := q.head
		err := op()
		if err == nil || !errors.Is(err, ErrCorrupt) {
			return err
		}
		if q.refresh(); q.head == head {
			return err
		}
	}
}

// readerReadLocked is readLocked in a reader (see readerRetry).
func (q *MmapQueue) readerReadLocked(st *consumerState, dst []byte, commit bool) (out []byte, off int64, err error) {
	err = q.readerRetry(func() error {
		var rerr error
		out, off, rerr = q.readLocked(st, dst, commit)
		return rerr
	})
	return out, off, err
}

func (q *MmapQueue) dequeueString(st *consumerState) (string, error) {
	b, err := q.dequeue(st, nil)
	if err != nil || len(b) == 0 {
		return "", err
	}
	// b is new and referenced nowhere else: it can back the string.
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// readLocked reads the message at st's cursor, appending it to dst, and
// returns it with its offset. With commit set, the cursor moves past it and
// the consumer commits (Dequeue); without, nothing moves (Peek).
func (q *MmapQueue) readLocked(st *consumerState, dst []byte, commit bool) ([]byte, int64, error) {
	at := st.cursor
	if at.pos >= q.tail.pos {
		return dst, 0, ErrEmptyQueue
	}
	out, next, err := q.s.read(&st.win, at.pos, q.tail.pos, dst)
	if err != nil {
		return out, 0, errorf("read offset %d: %w", at.seq, err)
	}
	if commit {
		st.cursor = position{next, at.seq + 1}
		if err := q.commitLocked(st, st.cursor, true); err != nil {
			st.cursor = at // not consumed: the message is read again
			return dst, 0, err
		}
	}
	return out, at.seq, nil
}

// commitLocked makes p the committed position of st, and retires the
// arenas every consumer has then passed when that is done on Dequeue (see
// reclaimOnDequeue). isCursor says p is st's cursor (Commit, Dequeue), not
// an offset the caller chose (CommitOffset): in a reader, a cursor the
// writer's SetDropOldest has passed meanwhile moves to the oldest message
// kept and is committed there, as the writer's own consumers are moved,
// where a chosen offset is out of range.
func (q *MmapQueue) commitLocked(st *consumerState, p position, isCursor bool) error {
	if p == st.committed {
		return nil
	}
	before, _ := q.s.arenaOf(st.low().pos)
	if q.reader && p.pos < st.committed.pos {
		if err := q.commitBackLocked(st, p, isCursor); err != nil {
			return errorf("consumer %q: commit offset %d: %w", st.name, p.seq, err)
		}
		return nil
	}
	if q.reader && st.cursor.pos < p.pos {
		if err := q.publishPinFor(st, p, false); err != nil {
			return errorf("consumer %q: %w", st.name, err)
		}
		if p.pos < q.head.pos { // dropped meanwhile (the head was read again)
			return errorf("consumer %q: commit offset %d: no longer kept: %w", st.name, p.seq, ErrOffsetOutOfRange)
		}
	}
	if err := st.commit(p); err != nil {
		return errorf("consumer %q: commit offset %d: %w", st.name, p.seq, err)
	}
	if q.reader && (st.pinned || st.cursor.pos < st.committed.pos) {
		if err := q.publishPin(st, false); err != nil {
			return errorf("consumer %q: %w", st.name, err)
		}
	}
	q.mutated(1)
	if after, _ := q.s.arenaOf(st.low().pos); after > before && !q.reader {
		q.reclaimOnDequeue()
		q.wakeRoomWaiters() // an EnqueueWait may now reclaim room
	}
	return nil
}

// commitBackLocked is a reader's commit of p behind st's committed offset.
// A writer's reclaim may have read the offset it moves from and be about
// to retire what p points to: it is made under the reclaim lock, with the
// head read again, so that either the writer's next reclaim reads p, or p
// is gone already and the commit fails with ErrOffsetOutOfRange. A pin
// the cursor no longer needs (it is at or after p) is withdrawn with it.
func (q *MmapQueue) commitBackLocked(st *consumerState, p position, isCursor bool) error {
	unlock, err := q.lockReclaim()
	if err != nil {
		return err
	}
	defer unlock()
	q.refresh() // moves a cursor the head has passed to the head
	if isCursor {
		p = st.cursor
	}
	if p.pos < q.head.pos {
		return errorf("offset %d is no longer kept: %w", p.seq, ErrOffsetOutOfRange)
	}
	if err := st.commit(p); err != nil {
		return err
	}
	q.mutated(1)
	if st.pinned && st.cursor.pos >= p.pos {
		return q.setPinLocked(st, position{}, false)
	}
	return nil
}

// wait reads the next message of st, waiting for one when there is none;
// with commit set it commits it too (DequeueWait), else it only moves the
// cursor (ReadWait).
func (q *MmapQueue) wait(ctx context.Context, st *consumerState, commit bool) (Message, error) {
	for {
		q.mu.Lock()
		if err := q.usable(st); err != nil {
			q.mu.Unlock()
			return Message{}, err
		}
		if err := ctx.Err(); err != nil {
			q.mu.Unlock()
			return Message{}, err
		}
		if q.reader {
			q.mu.Unlock()
			return q.pollWait(ctx, st, commit)
		}
		m, err := q.nextLocked(st, commit)
		if !errors.Is(err, ErrEmptyQueue) {
			q.mu.Unlock()
			return m, err
		}
		if q.waiters == nil {
			q.waiters = make(chan struct{})
		}
		wake := q.waiters
		q.waiting++
		q.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-wake:
		}
		q.mu.Lock()
		q.waiting--
		q.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return Message{}, err
		}
	}
}

// wakeWaiters wakes every DequeueWait and ReadWait; each looks again at
// its consumer and waits again when there is still nothing to read.
func (q *MmapQueue) wakeWaiters() {
	if q.waiters != nil {
		close(q.waiters)
		q.waiters = nil
	}
}

// pollWait is wait in a reader: the writer is another process (or another
// handle) and wakes no channel of this one, so the reader looks again
// after a pause that doubles from pollMin to pollMax while nothing comes:
// a message is seen within pollMax of being published, and an idle reader
// wakes pollMax⁻¹ times a second.
func (q *MmapQueue) pollWait(ctx context.Context, st *consumerState, commit bool) (Message, error) {
	pause := pollMin
	for {
		q.mu.Lock()
		if err := q.usable(st); err != nil {
			q.mu.Unlock()
			return Message{}, err
		}
		if err := ctx.Err(); err != nil {
			q.mu.Unlock()
			return Message{}, err
		}
		m, err := q.nextLocked(st, commit)
		q.mu.Unlock()
		if !errors.Is(err, ErrEmptyQueue) {
			return m, err
		}
		if haveFutex && q.wake != nil {
			// Sleep until the writer publishes (wake.go); ctx's end
			// wakes the sleepers too, this one among them.
			q.mu.Lock()
			if err := q.usable(st); err != nil {
				q.mu.Unlock()
				return Message{}, err
			}
			q.sleepers.Add(1)
			q.mu.Unlock()
			fired := make(chan struct{})
			stop := context.AfterFunc(ctx, func() {
				atomic.AddUint32(q.wake.seq(), 1)
				futexWakeAll(q.wake.seq())
				close(fired)
			})
			q.wake.sleep(func() bool {
				q.mu.Lock()
				defer q.mu.Unlock()
				if q.closed || st.deleted {
					return true
				}
				q.refresh()
				return st.cursor.pos < q.tail.pos || ctx.Err() != nil
			}, readerSleep)
			if !stop() {
				<-fired // it touches the mapping: let it finish first
			}
			q.sleepers.Done()
			continue // ErrClosed, ErrUnknownConsumer, ctx.Err() or a message
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return Message{}, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, pollMax)
	}
}

// readerSleep bounds one sleep of a reader's ReadWait on the wake word:
// a safety net, for a writer that died between publishing and waking. A
// variable so that a test can make it long enough to show a missing wake.
var readerSleep = time.Second

// The pauses of a reader's ReadWait and DequeueWait without futex.
const (
	pollMin = 20 * time.Microsecond
	pollMax = 500 * time.Microsecond
)

// nextLocked reads the message at st's cursor and moves the cursor past
// it; with commit set it commits it too (the DequeueWait side of wait).
func (q *MmapQueue) nextLocked(st *consumerState, commit bool) (Message, error) {
	if !commit {
		if q.reader {
			q.refresh()
		}
		return q.readNextLocked(st)
	}
	var data []byte
	var off int64
	var err error
	if q.reader {
		data, off, err = q.readerReadLocked(st, nil, true)
	} else {
		data, off, err = q.readLocked(st, nil, true)
	}
	return Message{Offset: uint64(off), Data: data}, err
}
