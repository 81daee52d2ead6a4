package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/seed-ff72c416/bigqueue"
)

const dequeueAbout = `
Writes the messages of the queue in DIR to stdout, oldest first, and
consumes each one only after it has been written. If stdout fails (a pipe
closed early, as with '| head -1', or a full disk), dequeue stops: every
message not completely written stays in the queue, and the error (exit
status 1) says how many were written. An interrupt (Ctrl-C, SIGINT or
SIGTERM) stops it the same way, after it has written and consumed what it
had read: it prints "interrupted after N messages" on stderr and exits 0.
A second interrupt ends it at once; that too loses nothing.

By default it reads as the queue's default consumer; -consumer NAME reads as
the named consumer NAME instead, each consumer having its own position. A
consumer that does not exist yet is created and starts at the oldest message
still kept. 'bigqueue consumers DIR' lists the named consumers.

A named consumer reads messages into blocks of 64 KiB, writes each block,
then commits the messages in it. The default consumer has no separate
commit (it only dequeues), so each of its messages is written on its own
and then dequeued: slower for many small messages.

-n N stops after N messages; -n 0, the default, dequeues until the queue is
empty. An empty queue prints nothing and is not an error.

-follow does not stop at the end of the queue: it waits for new messages
and writes each as soon as it comes, until interrupted (exit status 0) or
-n is reached. It needs -consumer, since the default consumer cannot wait
for a message without consuming it.

-peek prints the head message without consuming it: only the head, so -n
may then only be 0 or 1. (Looking further without consuming would need a
temporary consumer: a file in the queue that, were bigqueue killed before
removing it, would keep the queue's arenas from ever being reclaimed.)

-format says how each message is framed on stdout:
  lines  the message, then "\n" (the default); a message that holds
         "\n" cannot be told apart from several
  nul    the message, then a NUL byte (for xargs -0); a message that
         holds NUL cannot be told apart from several
  len    the message's length in bytes in decimal, "\n", the message,
         "\n": binary-safe, and still readable
'bigqueue enqueue -format' reads the same framings, so
  bigqueue dequeue -format len A | bigqueue enqueue -format len B
moves any messages from A to B. The queue is flushed before dequeue exits.
`

// outBlock is how many bytes of output a named consumer gathers before it
// writes them and commits their messages.
const outBlock = 64 << 10

// runDequeue implements "bigqueue dequeue".
func runDequeue(e *env, args []string) error {
	f := newFlags("dequeue", "[-consumer NAME] [-n N] [-follow] [-peek] [-format lines|nul|len] [-v] DIR", dequeueAbout)
	consumer := f.String("consumer", "", "read as the named consumer `NAME` (created if new) instead of the default consumer")
	limit := f.Int("n", 0, "dequeue at most `N` messages; 0 means all")
	follow := f.Bool("follow", false, "at the end of the queue, wait for new messages until interrupted (needs -consumer)")
	peek := f.Bool("peek", false, "print the head message without consuming it")
	var format framing
	f.Var(&format, "format", "`FORMAT` of the messages on stdout: lines (the default), nul or len")
	verbose := f.Bool("v", false, "print the number of messages dequeued on stderr")
	pos, err := f.parse(args, "DIR")
	if err != nil {
		return err
	}
	switch {
	case *limit < 0:
		return f.usageErr(errorf("-n %d: must be 0 (all) or more", *limit))
	case *peek && *limit > 1:
		return f.usageErr(errors.New("-peek shows only the head message: -n must be 0 or 1"))
	case *peek && *follow:
		return f.usageErr(errors.New("-peek shows only the head message: it does not go with -follow"))
	case *follow && *consumer == "":
		return f.usageErr(errors.New("-follow needs -consumer NAME: the default consumer cannot wait for a message without consuming it"))
	}
	dir := pos[0]

	// The first SIGINT or SIGTERM ends the loop between two messages; a
	// second one, with the default handling back, ends the process (were it
	// stuck writing to a pipe nobody reads). Neither loses a message: each
	// is committed only after it is written.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	// A named consumer reads beside a program that has the queue open; the
	// default consumer is the writer's own.
	open := openQueue
	if *consumer != "" {
		open = func(dir string, _ bool, _ int, _ ...bigqueue.Option) (*bigqueue.MmapQueue, error) {
			return openToInspect(dir)
		}
	}
	q, err := open(dir, false, 0)
	if err != nil {
		return err
	}
	var c *bigqueue.Consumer
	if *consumer != "" {
		if c, err = q.NewConsumer(*consumer); err != nil {
			return errors.Join(errorf("%w", err), closeQueue(q)) // the error names the consumer
		}
	}
	out := newOutput(e.stdout, format)
	var res drainResult
	switch {
	case *peek && c != nil:
		err = peekHead(c, out)
	case *peek:
		err = peekHead(q, out)
	case c != nil:
		res, err = drainConsumer(ctx, c, out, *limit, *follow)
	default:
		res, err = drainDefault(ctx, q, out, *limit)
	}
	if cerr := closeQueue(q); err == nil {
		err = cerr
	}
	switch {
	case err != nil && *peek:
		return errorf("dequeue from %s: %w", dir, err)
	case err != nil:
		return errorf("dequeue from %s: %w (%s)", dir, err, res.summary())
	case res.interrupted:
		_, _ = fmt.Fprintf(e.stderr, "bigqueue dequeue: interrupted after %s, each written, then committed\n",
			count(res.written, "message"))
	case *verbose && !*peek:
		_, _ = fmt.Fprintf(e.stderr, "dequeued %s from %s\n", count(res.written, "message"), dir)
	}
	return nil
}

// drainResult is what a dequeue did.
type drainResult struct {
	written     int  // messages completely written to stdout
	committed   int  // of those, the ones consumed (committed) in the queue
	interrupted bool // a signal stopped it
}

// summary says what a failed dequeue did, for the end of its error.
func (r drainResult) summary() string {
	if r.committed == r.written {
		return fmt.Sprintf("%s written and consumed; nothing lost, the rest stay in the queue",
			count(r.written, "message"))
	}
	return fmt.Sprintf("%s written, %d of them consumed; the %d others stay in the queue and will be dequeued again",
		count(r.written, "message"), r.committed, r.written-r.committed)
}

// output gathers framed messages and writes them to stdout, keeping track
// of which of them were completely written.
type output struct {
	w    io.Writer
	f    framing
	buf  []byte
	ends []int    // where the frame of each buffered message ends in buf
	offs []uint64 // the offset in the queue of each buffered message
}

func newOutput(w io.Writer, f framing) *output {
	return &output{w: w, f: f, buf: make([]byte, 0, outBlock)}
}

// add buffers message msg, at offset off in the queue.
func (o *output) add(msg []byte, off uint64) {
	o.buf = o.f.appendFrame(o.buf, msg)
	o.ends = append(o.ends, len(o.buf))
	o.offs = append(o.offs, off)
}

// pending returns how many messages are buffered.
func (o *output) pending() int { return len(o.ends) }

// flush writes the buffered messages and empties the buffer. It returns how
// many of them were completely written, the offset of the last of these,
// and the write's error: after a failed write, the messages written whole
// before the failure are counted, the others are dropped.
func (o *output) flush() (done int, last uint64, err error) {
	if len(o.ends) == 0 {
		return 0, 0, nil
	}
	n, err := o.w.Write(o.buf)
	done = len(o.ends)
	if err == nil && n < len(o.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		n = min(max(n, 0), len(o.buf))
		done = sort.SearchInts(o.ends, n+1) // frames that end within the n bytes written
	}
	if done > 0 {
		last = o.offs[done-1]
	}
	if cap(o.buf) > 4*outBlock {
		o.buf = make([]byte, 0, outBlock) // a huge message's buffer is not kept
	}
	o.buf, o.ends, o.offs = o.buf[:0], o.ends[:0], o.offs[:0]
	if err != nil {
		var pe *fs.PathError // "write /dev/stdout: broken pipe": the path says nothing
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return done, last, errorf("write stdout: %w", err)
	}
	return done, last, nil
}

// peeker is what -peek reads: the queue's default consumer or a named one.
type peeker interface {
	Peek() ([]byte, error)
}

// peekHead writes the head message of src, if there is one.
func peekHead(src peeker, o *output) error {
	msg, err := src.Peek()
	if errors.Is(err, bigqueue.ErrEmptyQueue) {
		return nil
	}
	if err != nil {
		return err
	}
	o.add(msg, 0)
	_, _, err = o.flush()
	return err
}

// drainConsumer reads up to limit messages (all when limit is 0) as the
// named consumer c and writes them to o, committing each block of them
// once it is written: a write error commits the messages written whole
// before it, and nothing after. At the end of the queue it writes what it
// has and stops, or with follow waits for more. It stops between two
// messages when ctx ends.
func drainConsumer(ctx context.Context, c *bigqueue.Consumer, o *output, limit int, follow bool) (res drainResult, err error) {
	writeAndCommit := func() error {
		all := o.pending()
		done, last, werr := o.flush()
		res.written += done
		if done == 0 {
			return werr
		}
		var cerr error
		if done == all {
			cerr = c.Commit() // the cursor is just past the last message read
		} else {
			cerr = c.CommitOffset(last + 1)
		}
		if cerr != nil {
			return errors.Join(werr, errorf("commit: %w", cerr))
		}
		res.committed += done
		return werr
	}
	stopped := ctx.Done()
	for read := 0; limit == 0 || read < limit; read++ {
		select {
		case <-stopped:
			res.interrupted = true
			return res, writeAndCommit()
		default:
		}
		m, err := c.Read()
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			// Caught up: what was read goes out now, not when the
			// block fills.
			if err := writeAndCommit(); err != nil || !follow {
				return res, err
			}
			m, err = c.ReadWait(ctx)
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				res.interrupted = true
				return res, nil
			}
		}
		if err != nil {
			return res, errors.Join(err, writeAndCommit())
		}
		o.add(m.Data, m.Offset)
		if len(o.buf) >= outBlock {
			if err := writeAndCommit(); err != nil {
				return res, err
			}
		}
	}
	return res, writeAndCommit()
}

// drainDefault dequeues up to limit messages (all when limit is 0) as the
// default consumer of q and writes them to o. The default consumer has no
// commit of its own, so each message is peeked, written, and only then
// dequeued. It stops between two messages when ctx ends.
func drainDefault(ctx context.Context, q *bigqueue.MmapQueue, o *output, limit int) (res drainResult, err error) {
	var scratch []byte
	stopped := ctx.Done()
	for limit == 0 || res.written < limit {
		select {
		case <-stopped:
			res.interrupted = true
			return res, nil
		default:
		}
		msg, err := q.Peek()
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		o.add(msg, 0)
		done, _, err := o.flush()
		res.written += done
		if err != nil {
			return res, err
		}
		if scratch, err = q.DequeueAppend(scratch[:0]); err != nil {
			return res, errorf("dequeue the message just written: %w", err)
		}
		res.committed++
	}
	return res, nil
}
