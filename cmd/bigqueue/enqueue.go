package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/seed-ff72c416/bigqueue"
)

const enqueueAbout = `
Reads stdin and enqueues each line as one message, without its trailing
newline ("\n"; a "\r" before it is kept, as are all other bytes). An empty
line is an empty message; a last line without a newline is a message too.
Lines may be of any length.

When DIR holds no queue, enqueue creates DIR (and its parents) and a new
queue with arenas of -arena-size bytes. An existing queue is opened at the
arena size it was created with, whatever -arena-size says.

The queue is flushed before enqueue exits, so the messages survive a crash
of the machine. Nothing is printed on success unless -v is given. If a
message fails, the lines before it stay enqueued and the error names the
line.
`

// runEnqueue implements "bigqueue enqueue".
func runEnqueue(e *env, args []string) error {
	f := newFlags("enqueue", "[-arena-size BYTES] [-v] DIR", enqueueAbout)
	arenaSize := f.Int("arena-size", bigqueue.DefaultArenaSize,
		"arena size in `BYTES` of a new queue: 128 MiB by default, as in the library; an existing queue keeps its own")
	verbose := f.Bool("v", false, "print the number of messages enqueued on stderr")
	pos, err := f.parse(args, "DIR")
	if err != nil {
		return err
	}
	dir := pos[0]

	q, err := openQueue(dir, true, *arenaSize)
	if err != nil {
		return err
	}
	n, err := enqueueLines(q, e.stdin)
	if cerr := closeQueue(q); err == nil {
		err = cerr
	}
	if err != nil {
		return errorf("enqueue to %s: %w", dir, err)
	}
	if *verbose {
		_, _ = fmt.Fprintf(e.stderr, "enqueued %s to %s\n", count(n, "message"), dir)
	}
	return nil
}

// enqueuer is where enqueueLines puts messages: a *bigqueue.MmapQueue.
type enqueuer interface {
	Enqueue(message []byte) error
}

// enqueueLines enqueues every line of r into q and returns how many it
// enqueued. Unlike bufio.Scanner it has no limit on the length of a line:
// a line longer than the reader's buffer is gathered in line.
func enqueueLines(q enqueuer, r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte // a long line being put together; nil otherwise
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, chunk...)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, errorf("read stdin: %w", err)
		}
		msg := chunk
		if line != nil {
			msg = append(line, chunk...)
		}
		eof := err != nil
		if eof && len(msg) == 0 {
			return n, nil // input ended with a newline, or was empty
		}
		if len(msg) > 0 && msg[len(msg)-1] == '\n' {
			msg = msg[:len(msg)-1]
		}
		if err := q.Enqueue(msg); err != nil {
			return n, errorf("line %d: %w", n+1, err)
		}
		n++
		line = nil // a long line's buffer is not kept for the next one
		if eof {
			return n, nil
		}
	}
}
