package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/seed-ff72c416/bigqueue"
)

const consumersAbout = `
Lists the named consumers of the queue in DIR, one per line in aligned
columns, sorted by name: the name; its offset, where it resumes (the
offset of the next message it reads: every message before it is
committed); and its backlog, the messages from there to the end of the
queue. Offsets count messages: 0 is the first message ever enqueued into
the queue. The default consumer is not listed ('bigqueue stat' shows it).
A queue without named consumers prints nothing.

A named consumer whose file is damaged cannot be read, nor its name known:
it is listed after the others as "damaged: FILE". Its name gives an error
until -delete removes it, and until then the queue deletes no arena.

-json prints one JSON object instead:
  {"dir", "oldest", "next", "consumers": [{"name", "offset", "backlog"}],
   "damaged": [file, ...]}
where oldest is the offset of the oldest message the queue keeps and next
the offset the next enqueued message gets.

-delete NAME deletes the named consumer NAME instead of listing: its file
goes, damaged or not, and so do the arenas that only it still needed. An
unknown name is an error (exit status 1).

consumers works on a queue that a program has open, beside it, as a reader;
-delete then cannot delete a consumer that program holds (an error).
`

// consumersJSON is the -json output of consumers. Its field names are part
// of the tool's interface: scripts read them.
type consumersJSON struct {
	Dir       string              `json:"dir"`
	Oldest    uint64              `json:"oldest"`
	Next      uint64              `json:"next"`
	Consumers []namedConsumerJSON `json:"consumers"`
	Damaged   []string            `json:"damaged"` // files of damaged named consumers
}

// namedConsumerJSON is one consumer in consumersJSON.
type namedConsumerJSON struct {
	Name    string `json:"name"`
	Offset  uint64 `json:"offset"`
	Backlog uint64 `json:"backlog"`
}

// runConsumers implements "bigqueue consumers".
func runConsumers(e *env, args []string) error {
	f := newFlags("consumers", "[-json] [-delete NAME] DIR", consumersAbout)
	asJSON := f.Bool("json", false, "print JSON instead of text")
	del := f.String("delete", "", "delete the named consumer `NAME` instead of listing")
	pos, err := f.parse(args, "DIR")
	if err != nil {
		return err
	}
	deleting := false
	f.Visit(func(fl *flag.Flag) { deleting = deleting || fl.Name == "delete" })
	switch {
	case deleting && *del == "":
		return f.usageErr(errors.New("-delete needs the NAME of a named consumer"))
	case deleting && *asJSON:
		return f.usageErr(errors.New("-json lists consumers: it does not go with -delete"))
	}
	dir := pos[0]

	q, err := openToInspect(dir) // beside a program that has the queue open, too
	if err != nil {
		return err
	}
	if deleting {
		err = q.DeleteConsumer(*del)
		if cerr := closeQueue(q); err == nil {
			err = cerr
		}
		switch {
		case errors.Is(err, bigqueue.ErrUnknownConsumer):
			return errorf("delete consumer %q: no consumer of that name in %s", *del, dir)
		case err != nil:
			return errorf("%s: %w", dir, err) // the error names the consumer
		}
		return nil
	}

	list, err := listConsumers(q, dir)
	if cerr := q.Close(); err == nil && cerr != nil {
		err = errorf("close queue: %w", cerr)
	}
	if err != nil {
		return errorf("consumers %s: %w", dir, err)
	}
	if *asJSON {
		err = writeConsumersJSON(e.stdout, list)
	} else {
		err = writeConsumersText(e.stdout, list)
	}
	if err != nil {
		return errorf("write stdout: %w", err)
	}
	return nil
}

// listConsumers returns the named consumers of q and its offsets.
func listConsumers(q *bigqueue.MmapQueue, dir string) (consumersJSON, error) {
	st, err := q.Stats()
	if err != nil {
		return consumersJSON{}, err
	}
	out := consumersJSON{Dir: dir, Consumers: []namedConsumerJSON{}, Damaged: append([]string{}, st.DamagedConsumers...)}
	out.Oldest, out.Next = q.Offsets()
	for _, c := range st.Consumers {
		if c.Name == "" {
			continue // the default consumer
		}
		out.Consumers = append(out.Consumers, namedConsumerJSON{
			Name:    c.Name,
			Offset:  c.Committed,
			Backlog: out.Next - min(c.Committed, out.Next),
		})
	}
	return out, nil
}

func writeConsumersJSON(w io.Writer, list consumersJSON) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(list)
}

// writeConsumersText writes the consumers as an aligned table, or nothing
// when there are none, then a line for each damaged consumer file.
func writeConsumersText(w io.Writer, list consumersJSON) error {
	if len(list.Consumers) > 0 {
		rows := [][]string{{"CONSUMER", "OFFSET", "BACKLOG"}}
		for _, c := range list.Consumers {
			rows = append(rows, []string{consumerLabel(c.Name),
				strconv.FormatUint(c.Offset, 10), strconv.FormatUint(c.Backlog, 10)})
		}
		if err := writeTable(w, rows); err != nil {
			return err
		}
	}
	for _, file := range list.Damaged {
		if _, err := fmt.Fprintf(w, "damaged: %s\n", file); err != nil {
			return err
		}
	}
	return nil
}
