package bigqueue

import (
	"context"
	"errors"
	"unsafe"
)

// Reading: the default consumer's methods, and the helpers that every
// consumer's reads share.

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

// Dequeue removes the oldest message the default consumer has not read and
// returns it in a new slice the caller owns. It returns ErrEmptyQueue when
// there is none.
func (q *MmapQueue) Dequeue() ([]byte, error) { return q.dequeue(q.def, nil, true) }

// DequeueString is Dequeue returning a string.
func (q *MmapQueue) DequeueString() (string, error) { return q.dequeueString(q.def) }

// DequeueAppend is Dequeue that appends the message to dst and returns the
// extended slice; it does not allocate when dst has room for the message.
func (q *MmapQueue) DequeueAppend(dst []byte) ([]byte, error) { return q.dequeue(q.def, dst, true) }

// Peek returns the message Dequeue would return, without consuming it.
func (q *MmapQueue) Peek() ([]byte, error) { return q.dequeue(q.def, nil, false) }

// DequeueWait is Dequeue that waits for a message when there is none. It
// returns ctx.Err() when ctx ends first and ErrClosed when the queue is
// closed while it waits. An Enqueue wakes it; it does not poll.
func (q *MmapQueue) DequeueWait(ctx context.Context) ([]byte, error) {
	return q.dequeueWait(ctx, q.def)
}

// IsEmpty reports whether the default consumer has read every message. It
// returns true after Close.
func (q *MmapQueue) IsEmpty() bool { return q.isEmpty(q.def) }

// Len returns how many messages the default consumer has not dequeued yet;
// 0 after Close.
func (q *MmapQueue) Len() int { return q.length(q.def) }

func (q *MmapQueue) isEmpty(st *consumerState) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.usable(st) != nil || st.at.pos >= q.tail.pos
}

func (q *MmapQueue) length(st *consumerState) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.usable(st) != nil {
		return 0
	}
	return int(q.tail.seq - st.at.seq)
}

func (q *MmapQueue) dequeue(st *consumerState, dst []byte, consume bool) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(st); err != nil {
		return dst, err
	}
	return q.dequeueLocked(st, dst, consume)
}

func (q *MmapQueue) dequeueString(st *consumerState) (string, error) {
	b, err := q.dequeue(st, nil, true)
	if err != nil || len(b) == 0 {
		return "", err
	}
	// b is new and referenced nowhere else: it can back the string.
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// dequeueLocked reads the consumer's next message, appending it to dst, and
// moves the consumer past it when consume is set.
func (q *MmapQueue) dequeueLocked(st *consumerState, dst []byte, consume bool) ([]byte, error) {
	if st.at.pos >= q.tail.pos {
		return dst, ErrEmptyQueue
	}
	out, next, err := q.s.read(&st.win, st.at.pos, q.tail.pos, dst)
	if err != nil {
		return out, errorf("dequeue: %w", err)
	}
	if consume {
		before, _ := q.s.arenaOf(st.at.pos)
		st.setAt(position{next, st.at.seq + 1})
		q.mutated(1)
		if after, _ := q.s.arenaOf(next); after != before {
			q.reclaimOnDequeue()
		}
	}
	return out, nil
}

func (q *MmapQueue) dequeueWait(ctx context.Context, st *consumerState) ([]byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q.mu.Lock()
		if err := q.usable(st); err != nil {
			q.mu.Unlock()
			return nil, err
		}
		msg, err := q.dequeueLocked(st, nil, true)
		if !errors.Is(err, ErrEmptyQueue) {
			q.mu.Unlock()
			return msg, err
		}
		if q.waiters == nil {
			q.waiters = make(chan struct{})
		}
		wake := q.waiters
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}
