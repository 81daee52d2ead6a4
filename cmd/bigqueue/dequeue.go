package main

import (
	"errors"
	"io"

	"github.com/seed-ff72c416/bigqueue"
)

const dequeueAbout = `
Dequeues messages from the queue in DIR and writes each to stdout followed
by a newline, oldest first. A message that holds newlines of its own cannot
be told apart from several messages in this output.

By default it reads as the queue's default consumer; -consumer NAME reads as
the named consumer NAME instead, each consumer having its own position. A
consumer that does not exist yet is created and starts at the oldest message
still kept.

-n N stops after N messages; -n 0, the default, dequeues until the queue is
empty. An empty queue prints nothing and is not an error.

-peek prints the head message without consuming it: only the head, so -n
may then only be 0 or 1. (Looking further without consuming would need a
temporary consumer: a file in the queue that, were bigqueue killed before
removing it, would keep the queue's arenas from ever being reclaimed.)

Messages are consumed as they are read and written out in blocks of 64 KiB.
If stdout fails (a pipe closed early, a full disk), the messages consumed
but not yet written are lost, and the error says how many: use -n to take
a bounded number, or -peek to look first. The queue is flushed before
dequeue exits.
`

// source is what dequeue reads from: the queue's default consumer or a
// named one.
type source interface {
	DequeueAppend(dst []byte) ([]byte, error)
	Peek() ([]byte, error)
}

// outBlock is how many bytes of output dequeue gathers before writing them.
const outBlock = 64 << 10

// runDequeue implements "bigqueue dequeue".
func runDequeue(e *env, args []string) error {
	f := newFlags("dequeue", "[-consumer NAME] [-n N] [-peek] DIR", dequeueAbout)
	consumer := f.String("consumer", "", "read as the named consumer `NAME` (created if new) instead of the default consumer")
	limit := f.Int("n", 0, "dequeue at most `N` messages; 0 means all")
	peek := f.Bool("peek", false, "print the head message without consuming it")
	pos, err := f.parse(args, "DIR")
	if err != nil {
		return err
	}
	switch {
	case *limit < 0:
		return f.usageErr(errorf("-n %d: must be 0 (all) or more", *limit))
	case *peek && *limit > 1:
		return f.usageErr(errors.New("-peek shows only the head message: -n must be 0 or 1"))
	}
	dir := pos[0]

	q, err := openQueue(dir, false, 0)
	if err != nil {
		return err
	}
	var src source = q
	if *consumer != "" {
		c, err := q.NewConsumer(*consumer)
		if err != nil {
			return errors.Join(errorf("consumer %q: %w", *consumer, err), closeQueue(q))
		}
		src = c
	}
	if *peek {
		err = peekHead(src, e.stdout)
	} else {
		err = dequeueTo(src, *limit, e.stdout)
	}
	if cerr := closeQueue(q); err == nil {
		err = cerr
	}
	if err != nil {
		return errorf("dequeue from %s: %w", dir, err)
	}
	return nil
}

// peekHead writes the head message of src, if there is one, to w.
func peekHead(src source, w io.Writer) error {
	msg, err := src.Peek()
	if errors.Is(err, bigqueue.ErrEmptyQueue) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := w.Write(append(msg, '\n')); err != nil {
		return errorf("write stdout: %w", err)
	}
	return nil
}

// dequeueTo dequeues up to limit messages from src (all when limit is 0)
// and writes them to w, one per line. The messages are dequeued straight
// into the output block, which is written each time it fills.
func dequeueTo(src source, limit int, w io.Writer) error {
	out := make([]byte, 0, outBlock)
	dequeued, written := 0, 0 // messages taken from the queue, and handed to w
	flush := func() error {
		if len(out) == 0 {
			return nil
		}
		if _, err := w.Write(out); err != nil {
			return errorf("write stdout: %w (%d dequeued messages were not written and are lost)",
				err, dequeued-written)
		}
		written = dequeued
		out = out[:0]
		return nil
	}
	for limit == 0 || dequeued < limit {
		next, err := src.DequeueAppend(out)
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			break
		}
		if err != nil {
			return errors.Join(err, flush())
		}
		dequeued++
		out = append(next, '\n')
		if len(out) >= outBlock {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
