package bigqueue

import (
	"slices"

	"golang.org/x/sys/unix"
)

// Stats is a snapshot of a queue, as tools show it.
type Stats struct {
	ArenaSize int             // bytes in each arena file
	Arenas    int             // arena files on disk
	DiskBytes int64           // bytes allocated on disk by the queue's files (not by others in its directory)
	Head      int64           // position (byte offset) of the oldest kept message
	Tail      int64           // position the next message will be written at
	Messages  int             // messages kept between Head and Tail
	Consumers []ConsumerStats // the default consumer (Name "") first, then the named ones by name
	// DamagedConsumers lists, sorted, the files (names in the queue's
	// directory) of named consumers that are damaged: their names answer
	// ErrCorrupt, and no arena is retired until DeleteConsumer removes them.
	DamagedConsumers []string
}

// ConsumerStats describes one consumer in Stats.
type ConsumerStats struct {
	Name      string // "" for the default consumer
	Position  int64  // position (byte offset) of the message at its cursor
	Backlog   int    // messages at or after its cursor
	Cursor    uint64 // offset of the message it reads next
	Committed uint64 // its committed offset, where a reopened queue resumes
}

// Stats returns a snapshot of the queue's state. It reads the directory
// and the consumer files of other processes under the lock the writer's
// reclaim takes (shared.go), tens to hundreds of µs: a call for monitoring,
// not for every message.
func (q *MmapQueue) Stats() (Stats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return Stats{}, ErrClosed
	}
	if err := q.learnOthers(); err != nil {
		return Stats{}, errorf("stats: %w", err)
	}
	s := Stats{
		ArenaSize: q.conf.arenaSize,
		Arenas:    q.s.am.count(),
		Head:      q.head.pos,
		Tail:      q.tail.pos,
		Messages:  int(q.tail.seq - q.head.seq),
	}
	entries, err := q.d.entries()
	if err != nil {
		return Stats{}, errorf("stats: %w", err)
	}
	for _, e := range entries {
		if !isQueueFile(e.Name()) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(q.d.fd, e.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			s.DiskBytes += st.Blocks * 512
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
	for file := range q.damaged {
		s.DamagedConsumers = append(s.DamagedConsumers, file)
	}
	slices.Sort(s.DamagedConsumers)
	return s, nil
}

func (q *MmapQueue) consumerStats(st *consumerState) ConsumerStats {
	return ConsumerStats{
		Name: st.name, Position: st.cursor.pos, Backlog: int(q.tail.seq - st.cursor.seq),
		Cursor: uint64(st.cursor.seq), Committed: uint64(st.committed.seq),
	}
}
