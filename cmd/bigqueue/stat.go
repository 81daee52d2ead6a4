package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/seed-ff72c416/bigqueue"
)

const statAbout = `
Prints the state of the queue in DIR: its arena size, how many arena files
and bytes it has on disk, the byte positions of its head (oldest kept
message) and tail (where the next message goes), how many messages it keeps,
and every consumer with its position and backlog (messages it has not
dequeued yet). The default consumer is listed first as (default).

A named consumer whose file is damaged is listed by its file under
"damaged": its name gives an error until 'bigqueue consumers -delete NAME'
deletes it, and until then the queue deletes no arena.

-json prints the same as one JSON object:
  {"dir", "arena_size", "arenas", "disk_bytes", "head", "tail", "messages",
   "consumers": [{"name", "default", "position", "backlog"}],
   "damaged_consumers": [file, ...]}
where the default consumer has "name": "" and "default": true.

stat works on a queue that a program has open, beside it, as a reader,
showing the state that program has published.
`

// statJSON is the -json output of stat. Its field names are part of the
// tool's interface: scripts read them.
type statJSON struct {
	Dir       string         `json:"dir"`
	ArenaSize int            `json:"arena_size"`
	Arenas    int            `json:"arenas"`
	DiskBytes int64          `json:"disk_bytes"`
	Head      int64          `json:"head"`
	Tail      int64          `json:"tail"`
	Messages  int            `json:"messages"`
	Consumers []consumerJSON `json:"consumers"`
	Damaged   []string       `json:"damaged_consumers"` // files of damaged named consumers
}

// consumerJSON is one consumer in statJSON.
type consumerJSON struct {
	Name     string `json:"name"`
	Default  bool   `json:"default"`
	Position int64  `json:"position"`
	Backlog  int    `json:"backlog"`
}

// runStat implements "bigqueue stat".
func runStat(e *env, args []string) error {
	f := newFlags("stat", "[-json] DIR", statAbout)
	asJSON := f.Bool("json", false, "print JSON instead of text")
	pos, err := f.parse(args, "DIR")
	if err != nil {
		return err
	}
	dir := pos[0]

	q, err := openToInspect(dir)
	if err != nil {
		return err
	}
	st, err := q.Stats()
	if cerr := q.Close(); err == nil && cerr != nil {
		err = errorf("close queue: %w", cerr)
	}
	if err != nil {
		return errorf("stat %s: %w", dir, err)
	}
	if *asJSON {
		err = writeStatJSON(e.stdout, dir, st)
	} else {
		err = writeStatText(e.stdout, dir, st)
	}
	if err != nil {
		return errorf("write stdout: %w", err)
	}
	return nil
}

// writeStatJSON writes st as indented JSON.
func writeStatJSON(w io.Writer, dir string, st bigqueue.Stats) error {
	out := statJSON{
		Dir:       dir,
		ArenaSize: st.ArenaSize,
		Arenas:    st.Arenas,
		DiskBytes: st.DiskBytes,
		Head:      st.Head,
		Tail:      st.Tail,
		Messages:  st.Messages,
		Consumers: make([]consumerJSON, 0, len(st.Consumers)),
		Damaged:   append([]string{}, st.DamagedConsumers...),
	}
	for _, c := range st.Consumers {
		out.Consumers = append(out.Consumers, consumerJSON{
			Name:     c.Name,
			Default:  c.Name == "",
			Position: c.Position,
			Backlog:  c.Backlog,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// writeStatText writes st as two aligned tables: the queue, then its
// consumers.
func writeStatText(w io.Writer, dir string, st bigqueue.Stats) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintf(tw, "queue\t%s\n", dir)
	_, _ = fmt.Fprintf(tw, "arena size\t%s\n", sizeWithBytes(int64(st.ArenaSize)))
	_, _ = fmt.Fprintf(tw, "arenas\t%d\n", st.Arenas)
	_, _ = fmt.Fprintf(tw, "on disk\t%s\n", sizeWithBytes(st.DiskBytes))
	_, _ = fmt.Fprintf(tw, "head\t%d\n", st.Head)
	_, _ = fmt.Fprintf(tw, "tail\t%d\n", st.Tail)
	_, _ = fmt.Fprintf(tw, "messages\t%d\n", st.Messages)
	for _, file := range st.DamagedConsumers {
		_, _ = fmt.Fprintf(tw, "damaged\tconsumer file %s (no arena is deleted until it is)\n", file)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	rows := [][]string{{"CONSUMER", "POSITION", "BACKLOG"}}
	for _, c := range st.Consumers {
		rows = append(rows, []string{consumerLabel(c.Name),
			strconv.FormatInt(c.Position, 10), strconv.Itoa(c.Backlog)})
	}
	_, _ = fmt.Fprintln(w)
	return writeTable(w, rows)
}
