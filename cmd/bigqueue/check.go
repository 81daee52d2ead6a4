package main

import (
	"errors"
	"fmt"

	"github.com/seed-ff72c416/bigqueue"
)

const checkAbout = `
Opens the queue in DIR and reads every record it keeps, from head to tail,
verifying each one's header and checksum. When all are intact it prints
"ok: ..." with what it verified and exits 0. Otherwise it prints what is
damaged and where (the file and the byte position) and exits 1; it also
exits 1 when the queue cannot be opened at all, for example because its
index is damaged, and when a named consumer's file is damaged ('bigqueue
consumers -delete NAME' deletes that consumer).

Opening a queue that nobody has open recovers it as after a crash: records
written after the last flush that fail their check are cut from the tail,
as on every open. A queue that a program has open is checked beside it, as
a reader, without stopping it, up to the tail that program has published.
`

// runCheck implements "bigqueue check".
func runCheck(e *env, args []string) error {
	f := newFlags("check", "DIR", checkAbout)
	pos, err := f.parse(args, "DIR")
	if err != nil {
		return err
	}
	dir := pos[0]

	q, err := openToInspect(dir)
	if err != nil {
		return err
	}
	st, err := verify(q)
	if cerr := q.Close(); err == nil && cerr != nil {
		err = errorf("close queue: %w", cerr)
	}
	if err != nil {
		return errorf("check %s: %w", dir, err)
	}
	_, _ = fmt.Fprintf(e.stdout, "ok: %s: %s, %d bytes from head %d to tail %d, in %s; %s\n",
		dir, count(st.Messages, "message"), st.Tail-st.Head, st.Head, st.Tail,
		count(st.Arenas, "arena"), count(len(st.Consumers)-1, "named consumer"))
	return nil
}

// verify checks every record of q and returns its stats.
func verify(q *bigqueue.MmapQueue) (bigqueue.Stats, error) {
	if err := q.Check(); err != nil {
		if errors.Is(err, bigqueue.ErrCorrupt) {
			return bigqueue.Stats{}, errorf("queue is damaged: %w", err)
		}
		return bigqueue.Stats{}, err
	}
	return q.Stats()
}
