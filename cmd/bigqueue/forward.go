package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/seed-ff72c416/bigqueue"
	"github.com/seed-ff72c416/bigqueue/forward"
	"golang.org/x/term"
)

const forwardAbout = `
Send the messages of the named consumer NAME to Kafka or NATS JetStream, at
least once and in order, following new ones until interrupted. A message is
committed on the consumer only once the cluster has acknowledged it, so a
forwarder that is killed, or a cluster that goes away, re-sends only what
was not committed, in the same order. While the cluster is down or refusing,
the forwarder retries with growing pauses; the queue keeps the backlog.

  -to kafka://HOST:PORT[,HOST:PORT...]/TOPIC
        each record carries its queue offset in the header bigqueue-offset
  -to nats://HOST:PORT/SUBJECT[?msg-id-prefix=P]
        each message's Nats-Msg-Id is its queue offset, so the stream drops
        the re-sent ones; the stream must hold this forwarder's messages
        only, unless each forwarder into it has its own prefix P (then
        messages go one at a time)

The topic or stream is created by its owner, not by the forwarder. The queue
is opened as a reader, so the program that writes it can run beside the
forwarder, before it or after it. SIGINT or SIGTERM ends it within seconds,
what is in flight acknowledged and committed; exit status 0.

A progress line on stderr says how many messages went, how many are left
and, while the cluster fails, the last error.
`

// runForward implements "bigqueue forward".
func runForward(e *env, args []string) error {
	f := newFlags("forward", "-consumer NAME -to URL [-batch N] [-progress D] DIR", forwardAbout)
	name := f.String("consumer", "", "forward the named consumer `NAME` (created at the oldest message if new)")
	to := f.String("to", "", "the cluster and topic or subject, as a `URL` (see above)")
	batch := f.Int("batch", forward.DefaultMaxBatch, "at most `N` messages in flight (and 4 MiB of them)")
	every := f.Duration("progress", time.Second, "rewrite the progress line every `D` (on a terminal; else print one); 0: none")
	pos, err := f.parse(args, "DIR")
	if err != nil {
		return err
	}
	switch {
	case *name == "":
		return f.usageErr(errors.New("missing -consumer NAME: the forwarder commits on a named consumer"))
	case *to == "":
		return f.usageErr(errors.New("missing -to URL"))
	case *batch <= 0:
		return f.usageErr(errorf("-batch %d: must be 1 or more", *batch))
	case *every < 0:
		return f.usageErr(errorf("-progress %v: must be 0 (none) or more", *every))
	}
	dir := pos[0]
	sink, err := forward.Dial(*to)
	if errors.Is(err, forward.ErrBadSink) {
		return f.usageErr(errorf("-to: %w", err))
	}
	if err != nil {
		return errorf("forward to %s: %w", *to, err)
	}
	defer func() { _ = sink.Close() }()

	// The first SIGINT or SIGTERM stops the forwarder, which waits for the
	// batch in flight; a second one, with the default handling back, ends
	// the process at once (nothing unacknowledged is committed either way).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	q, err := openReader(dir)
	if err != nil {
		return err
	}
	c, err := q.NewConsumer(*name)
	if err != nil {
		err = errorf("%w", err) // the error names the consumer
		if errors.Is(err, bigqueue.ErrLocked) {
			err = errorf("consumer %q is held by another process (another forwarder?)", *name)
		}
		return errors.Join(err, closeQueue(q))
	}
	line := newProgressLine(e.stderr, *name, *to, q)
	line.set(forward.Progress{Committed: c.Committed()})
	fw := forward.New(c, sink, forward.Options{MaxBatch: *batch, Progress: line.set})
	stopLine := func() {}
	if *every > 0 {
		stopLine = line.run(*every)
	}
	err = fw.Run(ctx)
	stopLine()
	p := line.last()
	if errors.Is(err, context.Canceled) {
		err = nil // interrupted: the way a forwarder ends
	}
	if err = errors.Join(err, closeQueue(q)); err != nil {
		return errorf("forward %s from %s to %s: %w (%s forwarded and committed)", *name, dir, *to, err,
			count(int(p.Forwarded), "message"))
	}
	line.finish(fmt.Sprintf("bigqueue forward: stopped after %s forwarded; consumer %s committed at offset %d\n",
		count(int(p.Forwarded), "message"), *name, p.Committed))
	return nil
}

// progressLine shows what a forwarder has done: rewritten in place on a
// terminal, one line each time otherwise.
type progressLine struct {
	w        io.Writer
	tty      bool
	name, to string
	q        *bigqueue.MmapQueue
	start    time.Time

	mu    sync.Mutex
	p     forward.Progress
	shown bool // a line is on a terminal without its newline
}

func newProgressLine(w io.Writer, name, to string, q *bigqueue.MmapQueue) *progressLine {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progressLine{w: w, tty: tty, name: name, to: to, q: q, start: time.Now()}
}

// set keeps p, the forwarder's latest progress.
func (l *progressLine) set(p forward.Progress) {
	l.mu.Lock()
	l.p = p
	l.mu.Unlock()
}

func (l *progressLine) last() forward.Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p
}

// run shows the line every d until the returned function is called.
func (l *progressLine) run(d time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				l.show()
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// show writes the line once.
func (l *progressLine) show() {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.p
	_, next := l.q.Offsets()
	backlog := uint64(0)
	if next > p.Committed {
		backlog = next - p.Committed
	}
	secs := time.Since(l.start).Seconds()
	s := fmt.Sprintf("%s -> %s: %s forwarded (%.0f/s), %s to go", l.name, l.to,
		count(int(p.Forwarded), "message"), float64(p.Forwarded)/secs, count(int(backlog), "message"))
	if p.LastError != nil {
		s += fmt.Sprintf("; retrying after %s: %s", count(int(p.Failures), "failure"), oneLine(libErr{p.LastError}.Error()))
	}
	if l.tty {
		_, _ = fmt.Fprintf(l.w, "\r\x1b[K%s", s)
		l.shown = true
		return
	}
	_, _ = fmt.Fprintln(l.w, s)
}

// finish ends a line left open on a terminal and writes s.
func (l *progressLine) finish(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown {
		_, _ = fmt.Fprintln(l.w)
	}
	_, _ = fmt.Fprint(l.w, s)
}
