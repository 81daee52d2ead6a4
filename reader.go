package bigqueue

import (
	"errors"
	"io/fs"
	"math"

	"golang.org/x/sys/unix"
)

// Readers: OpenReader opens a queue that a writer (NewMmapQueue, in this
// process or another) may have open, without its lock, and reads what the
// writer publishes, never changing the queue's records or index.
//
// The protocol, as the writer publishes and a reader trusts it:
//   - Records are written before the tail that covers them is published in
//     the live slot of index.dat; that slot's checksum is stored last, with
//     an atomic store (a release), and a reader loads it atomically (an
//     acquire) before the data and again after (metaFile.liveShared): a slot
//     whose checksum changed meanwhile, or does not match, is not used.
//   - A reader verifies the checksum of every record it reads (writtenFrom
//     is past every position): a stale or torn view never yields bytes that
//     were not enqueued.
//   - The head and the default consumer's position come from the writer's
//     files the same way; a reader only ever moves them forward, and
//     forgets (unmaps) the arenas before the head, which the writer retires.
//   - A reader writes only the files of the named consumers it holds, so a
//     killed reader leaves those behind and nothing else (its locks go with
//     it), and a writer that crashes and reopens goes on publishing into the
//     same files.

// OpenReader opens the queue in dir for reading beside its writer. It
// takes no writer lock and never changes the queue's records or index:
// Enqueue, EnqueueBatch, EnqueueWait and the default consumer's Dequeue
// methods return ErrReadOnly; Peek, IsEmpty and Len (of the default
// consumer, as the writer last published it), Offsets, Stats and Check
// work on the queue as the writer last published it; Stats, Check and
// Consumers after them show the named consumers as the directory has them
// then (a reader looks at other processes' consumer files only there).
// Named consumers work
// as in the writer (NewConsumer, FromConsumer, DeleteConsumer, Read,
// Commit, Seek, Dequeue, ReadWait, ...), each held by one process at a
// time (ErrLocked for another), the writer keeping what they have not
// committed, and what their cursor needs after a Seek back (see shared.go).
// ReadWait and DequeueWait in a reader sleep until the writer publishes
// (futex on Linux) or look every 20 to 500 µs (elsewhere). The options must agree with the
// queue (SetArenaSize); a directory with no queue gives an error wrapping
// fs.ErrNotExist.
func OpenReader(dir string, opts ...Option) (*MmapQueue, error) {
	conf, d, err := prepareOpen("open reader", dir, opts)
	if err != nil {
		return nil, err
	}
	q := &MmapQueue{
		dir:       dir,
		d:         d,
		reader:    true,
		conf:      conf,
		consumers: make(map[string]*consumerState),
		damaged:   make(map[string]error),
		flushReq:  make(chan struct{}, 1),
		quit:      make(chan struct{}),
	}
	if err := q.openReader(); err != nil {
		_ = q.release()
		if errors.Is(err, ErrInvalidArenaSize) {
			return nil, ErrInvalidArenaSize
		}
		return nil, errorf("open reader %s: %w", dir, err)
	}
	return q, nil
}

// openReader maps the queue's files for reading and loads what the writer
// published.
func (q *MmapQueue) openReader() error {
	l, err := listDir(q.d)
	if err != nil {
		return err
	}
	if !l.index {
		return errorf("%s holds no queue: %w", q.dir, fs.ErrNotExist)
	}
	idx, size, err := openIndex(q.d, true)
	if err != nil {
		return err
	}
	q.idx = idx
	if size != q.conf.arenaSize {
		return errorf("queue has arena size %d, opened with %d: %w", size, q.conf.arenaSize, ErrInvalidArenaSize)
	}
	am, err := newArenaManager(q.d, size, q.conf.maxInMemArenas, l.arenas)
	if err != nil {
		return err
	}
	am.readOnly = true
	q.s = stream{size: size, am: am, writtenFrom: math.MaxInt64}
	_, v, ok := idx.durable()
	if !ok {
		return errorf("%s: no durable state with a valid checksum: %w", idx.path, ErrCorrupt)
	}
	q.head, q.tail = position{v[0], v[1]}, position{v[2], v[3]}
	if q.head.pos < 0 || q.head.seq < 0 || q.tail.pos < q.head.pos || q.tail.seq < q.head.seq {
		return errorf("%s: head %+v and tail %+v are inconsistent: %w", idx.path, q.head, q.tail, ErrCorrupt)
	}
	q.s.idx = loadOffsetIndex(q.dir, am.dirFd, q.s.messageArena(q.head.pos), q.tail.pos)
	if err := q.loadConsumers(l.consumerFiles); err != nil {
		return err
	}
	if w, err := openWakeFile(q.d, false); err == nil {
		q.wake = w // else ReadWait polls
	}
	q.refresh()
	q.forgetBefore(q.s.messageArena(q.head.pos)) // refresh does when the head moves
	return nil
}

// refresh takes in what the writer has published since: a head and a tail
// further on, and the position of the writer's default consumer. It
// forgets the arenas before the head. The queue's lock is held.
//
// The named consumers that other processes hold are read only by
// learnOthers (Stats and Check): nothing on the way of a reader's Read or
// Dequeue reads another process's file.
func (q *MmapQueue) refresh() {
	head := q.head
	if _, v, ok := q.idx.durable(); ok {
		if head := (position{v[0], v[1]}); head.pos > q.head.pos && head.seq >= q.head.seq && head.pos <= v[2] {
			q.head = head
		}
		if tail := (position{v[2], v[3]}); tail.pos > q.tail.pos && tail.seq >= q.tail.seq {
			q.tail = tail
		}
	}
	if pos, seq, ok := q.idx.liveShared(); ok && pos > q.tail.pos && seq >= q.tail.seq {
		q.tail = position{pos, seq}
	}
	def := q.def
	if pos, seq, ok := def.mf.liveShared(); ok && pos >= q.head.pos && pos <= q.tail.pos {
		def.committed = position{pos, seq}
	}
	if def.committed.pos < q.head.pos {
		def.committed = q.head
	}
	def.cursor = def.committed
	if q.head == head {
		return // nothing more to move or forget: a Read costs the same however many consumers there are
	}
	for _, st := range q.consumers {
		// Its own: only a head that passed it moves it (SetDropOldest in
		// the writer). The others: see learnOthers.
		if st.held < 0 {
			continue
		}
		if st.committed.pos < q.head.pos {
			_ = st.commit(q.head)
		}
		if st.cursor.pos < q.head.pos {
			st.cursor = q.head
		}
	}
	q.forgetBefore(q.s.messageArena(q.head.pos))
}

// learnOthers brings this process's view of the named consumers up to
// date, as the writer's reclaim does (learnConsumers), under the reclaim
// lock as it does: those made and deleted since it looked, the damaged
// ones, and the positions of those it does not hold. For Stats and Check;
// the queue's lock is held.
func (q *MmapQueue) learnOthers() error {
	unlock, err := q.lockReclaim()
	switch {
	case err == nil:
		defer unlock()
	case (errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)) && !q.d.exists(reclaimLockName):
		// No lock file, and this process may not make one: nobody has
		// opened the queue since it has one (every open makes it), so
		// there is nobody to keep out.
	default:
		return err
	}
	if q.reader {
		q.refresh()
	}
	return q.learnConsumers()
}

// forgetBefore unmaps a reader's arenas before first and closes the windows
// open on them: the writer retires them, and a mapping or descriptor would
// keep a deleted file's blocks.
func (q *MmapQueue) forgetBefore(first int64) {
	am := q.s.am
	for id, a := range am.mapped {
		if id < first {
			am.unlink(a)
			delete(am.mapped, id)
			_ = a.unmap()
		}
	}
	for id := range am.onDisk {
		if id < first {
			delete(am.onDisk, id)
		}
	}
	for _, st := range q.allConsumers() {
		if st.win.open && st.win.id < first {
			_ = st.win.close()
		}
	}
	q.s.idx.dropBefore(first)
}

// writable returns the error an operation that changes the queue gets.
func (q *MmapQueue) writable() error {
	if q.closed {
		return ErrClosed
	}
	if q.reader {
		return errorf("%s is open for reading: %w", q.dir, ErrReadOnly)
	}
	return nil
}
