package bigqueue

import (
	"os"
	"slices"
	"syscall"
)

// Stats is a snapshot of a queue, as tools show it.
type Stats struct {
	ArenaSize int             // bytes in each arena file
	Arenas    int             // arena files on disk
	DiskBytes int64           // bytes allocated on disk by the queue's files
	Head      int64           // position (byte offset) of the oldest kept message
	Tail      int64           // position the next message will be written at
	Messages  int             // messages kept between Head and Tail
	Consumers []ConsumerStats // the default consumer (Name "") first, then the named ones by name
}

// ConsumerStats describes one consumer in Stats.
type ConsumerStats struct {
	Name     string // "" for the default consumer
	Position int64  // position of the next message it reads
	Backlog  int    // messages it has not dequeued
}

// Stats returns a snapshot of the queue's state.
func (q *MmapQueue) Stats() (Stats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return Stats{}, ErrClosed
	}
	s := Stats{
		ArenaSize: q.conf.arenaSize,
		Arenas:    q.am.count(),
		Head:      q.head.pos,
		Tail:      q.tail.pos,
		Messages:  int(q.tail.seq - q.head.seq),
	}
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return Stats{}, errorf("stats: %w", err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				s.DiskBytes += int64(st.Blocks) * 512
			}
		}
	}
	s.Consumers = append(s.Consumers, q.consumerStats(q.def))
	names := make([]string, 0, len(q.consumers))
	for name := range q.consumers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s.Consumers = append(s.Consumers, q.consumerStats(q.consumers[name]))
	}
	return s, nil
}

func (q *MmapQueue) consumerStats(st *consumerState) ConsumerStats {
	return ConsumerStats{Name: st.name, Position: st.at.pos, Backlog: int(q.tail.seq - st.at.seq)}
}

// Check reads every record the queue keeps, from the head to the tail, and
// verifies its checksum; it also checks that every consumer stands at the
// start of a record. The first damage found is returned as an error
// wrapping ErrCorrupt that names the file and position. Opening the queue
// has already checked the index and the consumer files.
func (q *MmapQueue) Check() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	waiting := make(map[int64][]string)
	for _, st := range q.allConsumers() {
		name := st.name
		if name == "" {
			name = "(default)"
		}
		waiting[st.at.pos] = append(waiting[st.at.pos], name)
	}
	at := q.head
	for {
		delete(waiting, at.pos)
		if at.pos >= q.tail.pos {
			break
		}
		_, next, _, err := q.readRecord(&q.scan, at.pos, q.tail.pos, nil, false)
		if err != nil {
			return errorf("check: message %d: %w", at.seq, err)
		}
		at = position{next, at.seq + 1}
	}
	if at.seq != q.tail.seq {
		return errorf("check: %d messages between head and tail, index counts %d: %w",
			at.seq-q.head.seq, q.tail.seq-q.head.seq, ErrCorrupt)
	}
	for pos, names := range waiting {
		return errorf("check: consumer %q at position %d, which is not the start of a message: %w",
			names[0], pos, ErrCorrupt)
	}
	return nil
}
