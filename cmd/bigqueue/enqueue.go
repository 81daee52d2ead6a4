package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/seed-ff72c416/bigqueue"
)

const enqueueAbout = `
Reads stdin and enqueues each message in it, framed as -format says:

  lines  one message per line, without its trailing "\n" (the default); a
         "\r" before it is kept, as are all other bytes; an empty line is
         an empty message, and a last line without a newline is a message
  nul    messages each ended by a NUL byte (as find -print0 writes them);
         a last message without its NUL is a message too
  len    each message as its length in bytes in decimal, "\n", the
         message's bytes, "\n": any bytes at all, as 'bigqueue dequeue
         -format len' writes them

Messages may be of any length.

When DIR holds no queue, enqueue creates DIR (and its parents) and a new
queue with arenas of -arena-size bytes. An existing queue is opened at the
arena size it was created with, whatever -arena-size says. Sizes take a
unit: 65536, 64K, 64KiB, 1M, 1G; K, KB and KiB all mean 1024 bytes, M and G
likewise powers of 1024. Every flag is checked before DIR is created: a
usage error (exit status 2) leaves nothing behind.

The queue is flushed before enqueue exits, so the messages survive a crash
of the machine. Nothing is printed on success unless -v is given. If a
message fails, or the input is not well framed, the messages before it stay
enqueued and the error names the message (exit status 1).
`

// runEnqueue implements "bigqueue enqueue".
func runEnqueue(e *env, args []string) error {
	f := newFlags("enqueue", "[-arena-size SIZE] [-format lines|nul|len] [-v] DIR", enqueueAbout)
	arenaSize := sizeFlag(bigqueue.DefaultArenaSize)
	f.Var(&arenaSize, "arena-size",
		"arena `SIZE` of a new queue (an existing one keeps its own): bytes, or a number with K, M or G, powers of 1024 (64K = 64KiB = 64KB = 65536); the default is the library's")
	var format framing
	f.Var(&format, "format", "`FORMAT` of the messages on stdin: lines (the default), nul or len")
	verbose := f.Bool("v", false, "print the number of messages enqueued on stderr")
	pos, err := f.parse(args, "DIR")
	if err != nil {
		return err
	}
	if err := checkArenaSize(int(arenaSize)); err != nil {
		return f.usageErr(err)
	}
	dir := pos[0]
	if dir == "" {
		return f.usageErr(errors.New("DIR is an empty string"))
	}

	q, err := openQueue(dir, true, int(arenaSize))
	if err != nil {
		return err
	}
	n, err := enqueueFrames(q, e.stdin, format)
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

// enqueuer is where enqueueFrames puts messages: a *bigqueue.MmapQueue.
type enqueuer interface {
	Enqueue(message []byte) error
}

// enqueueFrames enqueues every message of r, framed as f says, into q and
// returns how many it enqueued. An error names the message ("line 3",
// "message 3") and says how many before it were enqueued.
func enqueueFrames(q enqueuer, r io.Reader, f framing) (int, error) {
	fr := newFrameReader(r, f)
	n := 0
	for {
		msg, err := fr.next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err == nil {
			err = q.Enqueue(msg)
		}
		if err != nil {
			return n, errorf("%s %d: %w (%s)", f.unit(), n+1, err, enqueuedBefore(n))
		}
		n++
	}
}

// enqueuedBefore says what is left of an input that failed after n
// messages.
func enqueuedBefore(n int) string {
	switch n {
	case 0:
		return "nothing was enqueued"
	case 1:
		return "the message before it is enqueued"
	}
	return fmt.Sprintf("the %d messages before it are enqueued", n)
}
