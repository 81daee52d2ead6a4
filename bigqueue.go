package bigqueue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// MmapQueue is a persistent FIFO queue kept in a directory of memory-mapped
// files. Create or reopen one with NewMmapQueue and release it with Close.
// Its default consumer is read through the queue's own Dequeue methods;
// named consumers come from NewConsumer. Every method is safe for concurrent
// use.
type MmapQueue struct {
	dir  string
	conf config

	// mu guards everything below it, the arenas and the state of every
	// consumer. Exported methods take it, check closed, and call an
	// unexported helper that does the work.
	mu       sync.Mutex
	closed   bool
	lockFile *os.File
	idx      *metaFile
	am       *arenaManager
	head     position // oldest message kept; new consumers start here
	tail     position // where the next record is written
	// writtenFrom is the tail as open left it. The records at or after it
	// were written by this MmapQueue, into the page cache they are read
	// from, and checked as they were written; Dequeue verifies the
	// checksum only of records found on disk at open (see readRecord).
	writtenFrom int64
	syncedTail  position // tail as of the last flush
	syncedHead  position // head as of the last flush
	def         *consumerState
	consumers   map[string]*consumerState
	waiters     chan struct{} // closed to wake DequeueWait; nil while none waits
	mutOps      int64         // enqueues and dequeues since the last flush
	bgErr       error         // first error of the periodic flush not yet reported
	crcScratch  [crcPrefixSize]byte
	scan        window // reads for recovery and Check

	flushReq chan struct{} // asks the flusher for a flush (op count reached)
	quit     chan struct{} // closed by Close to stop the flusher
	wg       sync.WaitGroup
}

// NewMmapQueue opens the queue in dir, creating it when dir holds none. The
// directory itself must exist: when it does not, the error satisfies
// errors.Is(err, fs.ErrNotExist). Only one MmapQueue may have a directory
// open at a time; another open returns an error wrapping ErrLocked.
//
// Opening recovers from a crash: records written after the last Flush are
// verified and the queue ends before the first one that is damaged (see the
// package documentation).
func NewMmapQueue(dir string, opts ...Option) (*MmapQueue, error) {
	conf := defaultConfig()
	for _, opt := range opts {
		if err := opt(&conf); err != nil {
			return nil, err
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, errorf("open %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, errorf("open %s: %w", dir, syscall.ENOTDIR)
	}
	lockFile, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	q := &MmapQueue{
		dir:       dir,
		conf:      conf,
		lockFile:  lockFile,
		consumers: make(map[string]*consumerState),
		flushReq:  make(chan struct{}, 1),
		quit:      make(chan struct{}),
	}
	if err := q.open(); err != nil {
		_ = q.release()
		if errors.Is(err, ErrInvalidArenaSize) {
			return nil, ErrInvalidArenaSize // as the reference returns it: see errors.go
		}
		return nil, errorf("open %s: %w", dir, err)
	}
	q.writtenFrom = q.tail.pos
	q.wg.Add(1)
	go q.flusher()
	return q, nil
}

// dirListing is what open finds in the directory.
type dirListing struct {
	index, defaultConsumer, referenceMetadata bool
	arenas                                    []int64
	consumerFiles                             []string
}

func listDir(dir string) (dirListing, error) {
	var l dirListing
	entries, err := os.ReadDir(dir)
	if err != nil {
		return l, errorf("read directory %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == indexName:
			l.index = true
		case name == defaultConsumerFile:
			l.defaultConsumer = true
		case name == referenceMetadataName:
			l.referenceMetadata = true
		case strings.HasSuffix(name, ".tmp"):
			// A meta file whose creation a crash interrupted.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return l, errorf("remove %s: %w", name, err)
			}
		case isConsumerFile(name):
			l.consumerFiles = append(l.consumerFiles, name)
		default:
			if id, ok := parseArenaName(name); ok {
				l.arenas = append(l.arenas, id)
			}
		}
	}
	return l, nil
}

// open loads or creates the queue's files and recovers its state.
func (q *MmapQueue) open() error {
	l, err := listDir(q.dir)
	if err != nil {
		return err
	}
	if !l.index {
		if err := q.create(l); err != nil {
			return err
		}
	}
	idx, size, err := openIndex(q.dir)
	if err != nil {
		return err
	}
	q.idx = idx
	if size != q.conf.arenaSize {
		return errorf("queue has arena size %d, opened with %d: %w", size, q.conf.arenaSize, ErrInvalidArenaSize)
	}
	if q.am, err = newArenaManager(q.dir, q.conf.arenaSize, q.conf.maxInMemArenas, l.arenas); err != nil {
		return err
	}
	q.am.ahead = q.conf.maxDiskUsage <= 0
	if err := q.recover(); err != nil {
		return err
	}
	if err := q.loadConsumers(l.consumerFiles); err != nil {
		return err
	}
	q.clampConsumers()
	return nil
}

// create writes the files of a new queue: the default consumer's, then the
// index, whose presence marks the queue as created.
func (q *MmapQueue) create(l dirListing) error {
	if l.referenceMetadata {
		return errorf("%s holds a queue of github.com/grandecola/bigqueue's format: %w",
			q.dir, ErrIncompatibleVersion)
	}
	if len(l.arenas) > 0 || len(l.consumerFiles) > 0 {
		return errorf("%s is missing but arena or consumer files are present: %w",
			filepath.Join(q.dir, indexName), ErrCorrupt)
	}
	if err := createConsumerFile(q.dir, defaultConsumerFile, "", position{}); err != nil {
		return err
	}
	return createIndex(q.dir, q.conf.arenaSize)
}

// release unmaps and closes every file of the queue, returning the errors.
func (q *MmapQueue) release() error {
	var errs []error
	for _, st := range q.allConsumers() {
		errs = append(errs, st.mf.close(), st.win.close())
	}
	errs = append(errs, q.scan.close())
	if q.am != nil {
		errs = append(errs, q.am.close())
	}
	if q.idx != nil {
		errs = append(errs, q.idx.close())
	}
	if q.lockFile != nil {
		errs = append(errs, q.lockFile.Close())
	}
	return joinErrors(errs...)
}

// allConsumers returns the default consumer (if loaded) and the named ones.
func (q *MmapQueue) allConsumers() []*consumerState {
	all := make([]*consumerState, 0, len(q.consumers)+1)
	if q.def != nil {
		all = append(all, q.def)
	}
	for _, st := range q.consumers {
		all = append(all, st)
	}
	return all
}

// Enqueue appends message to the queue. The queue keeps its own copy. A
// message may have any length, including 0 and more than an arena.
func (q *MmapQueue) Enqueue(message []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if err := q.reserve(q.recordEnd(q.tail.pos, len(message))); err != nil {
		return err
	}
	next, err := q.writeRecord(q.tail.pos, message, 0)
	if err != nil {
		return errorf("enqueue: %w", err)
	}
	q.advanceTail(position{next, q.tail.seq + 1}, 1)
	return nil
}

// EnqueueString is Enqueue for a string, without copying it first.
func (q *MmapQueue) EnqueueString(message string) error {
	return q.Enqueue(unsafe.Slice(unsafe.StringData(message), len(message)))
}

// EnqueueBatch appends every message to the queue as one operation: after it
// returns nil all of them are there, after an error none is, and a crash
// keeps all or none of them.
func (q *MmapQueue) EnqueueBatch(messages [][]byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if len(messages) == 0 {
		return nil
	}
	end := q.tail.pos
	for _, m := range messages {
		end = q.recordEnd(end, len(m))
	}
	if err := q.reserve(end); err != nil {
		return err
	}
	pos := q.tail.pos
	for i, m := range messages {
		var flags uint16
		if i < len(messages)-1 {
			flags = flagBatchMore
		}
		var err error
		if pos, err = q.writeRecord(pos, m, flags); err != nil {
			return errorf("enqueue batch: %w", err)
		}
	}
	q.advanceTail(position{pos, q.tail.seq + int64(len(messages))}, int64(len(messages)))
	return nil
}

// advanceTail publishes records written up to t: the live slot of the index
// commits them, then waiters are woken.
func (q *MmapQueue) advanceTail(t position, ops int64) {
	q.tail = t
	q.clearHeaderAt(t.pos)
	q.idx.setLive(t.pos, t.seq)
	if q.waiters != nil {
		close(q.waiters)
		q.waiters = nil
	}
	q.mutated(ops)
}

// reserve checks that the arenas up to position end fit under the disk cap,
// reclaiming arenas that consumers have passed when that makes room.
func (q *MmapQueue) reserve(end int64) error {
	if q.conf.maxDiskUsage <= 0 {
		return nil
	}
	usage := q.diskUsage(end)
	if usage > q.conf.maxDiskUsage && q.reclaimable() {
		if err := q.flushLocked(); err != nil {
			return errorf("reclaim space: %w", err)
		}
		usage = q.diskUsage(end)
	}
	if usage > q.conf.maxDiskUsage {
		return errorf("enqueue needs %d bytes on disk, limit is %d: %w", usage, q.conf.maxDiskUsage, ErrQueueFull)
	}
	return nil
}

// diskUsage is the space the queue's files would take with records written
// up to position end: every arena at its full size plus the meta files.
func (q *MmapQueue) diskUsage(end int64) int64 {
	arenas := int64(q.am.count())
	first, _ := q.arenaOf(q.tail.pos)
	last, _ := q.arenaOf(end - 1)
	for id := first; id <= last; id++ {
		if !q.am.exists(id) {
			arenas++
		}
	}
	metas := int64(len(q.consumers)+2) * metaSize
	return arenas*int64(q.conf.arenaSize) + metas
}

// reclaimable reports whether a flush would delete an arena.
func (q *MmapQueue) reclaimable() bool { return q.reclaimableArenas() > 0 }

// reclaimableArenas counts the arenas from the head's up to the slowest
// consumer's: those every consumer has read past.
func (q *MmapQueue) reclaimableArenas() int64 {
	first, _ := q.arenaOf(q.head.pos)
	slowest, _ := q.arenaOf(q.slowest().pos)
	return slowest - first
}

// slowest returns the position of the consumer furthest behind.
func (q *MmapQueue) slowest() position {
	min := q.def.at
	for _, st := range q.consumers {
		if st.at.pos < min.pos {
			min = st.at
		}
	}
	return min
}

// usable returns the error a consumer's operation gets, if any.
func (q *MmapQueue) usable(st *consumerState) error {
	if q.closed {
		return ErrClosed
	}
	if st.deleted {
		return errorf("consumer %q was deleted: %w", st.name, ErrUnknownConsumer)
	}
	return nil
}

// Dequeue removes the oldest message the default consumer has not read and
// returns it in a new slice the caller owns. It returns ErrEmptyQueue when
// there is none.
func (q *MmapQueue) Dequeue() ([]byte, error) { return q.dequeue(q.def, nil, true) }

// DequeueString is Dequeue returning a string.
func (q *MmapQueue) DequeueString() (string, error) { return q.dequeueString(q.def) }

// DequeueAppend is Dequeue that appends the message to dst and returns the
// extended slice; it does not allocate when dst has room for the message.
func (q *MmapQueue) DequeueAppend(dst []byte) ([]byte, error) { return q.dequeue(q.def, dst, true) }

// Peek returns the message Dequeue would return, without consuming it.
func (q *MmapQueue) Peek() ([]byte, error) { return q.dequeue(q.def, nil, false) }

// DequeueWait is Dequeue that waits for a message when there is none. It
// returns ctx.Err() when ctx ends first and ErrClosed when the queue is
// closed while it waits. An Enqueue wakes it; it does not poll.
func (q *MmapQueue) DequeueWait(ctx context.Context) ([]byte, error) {
	return q.dequeueWait(ctx, q.def)
}

// IsEmpty reports whether the default consumer has read every message. It
// returns true after Close.
func (q *MmapQueue) IsEmpty() bool { return q.isEmpty(q.def) }

// Len returns how many messages the default consumer has not dequeued yet;
// 0 after Close.
func (q *MmapQueue) Len() int { return q.length(q.def) }

func (q *MmapQueue) isEmpty(st *consumerState) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.usable(st) != nil || st.at.pos >= q.tail.pos
}

func (q *MmapQueue) length(st *consumerState) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.usable(st) != nil {
		return 0
	}
	return int(q.tail.seq - st.at.seq)
}

func (q *MmapQueue) dequeue(st *consumerState, dst []byte, consume bool) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(st); err != nil {
		return dst, err
	}
	return q.dequeueLocked(st, dst, consume)
}

func (q *MmapQueue) dequeueString(st *consumerState) (string, error) {
	b, err := q.dequeue(st, nil, true)
	if err != nil || len(b) == 0 {
		return "", err
	}
	// b is new and referenced nowhere else: it can back the string.
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// dequeueLocked reads the consumer's next message, appending it to dst, and
// moves the consumer past it when consume is set.
func (q *MmapQueue) dequeueLocked(st *consumerState, dst []byte, consume bool) ([]byte, error) {
	if st.at.pos >= q.tail.pos {
		return dst, ErrEmptyQueue
	}
	out, next, _, err := q.readRecord(&st.win, st.at.pos, q.tail.pos, dst, true)
	if err != nil {
		return out, errorf("dequeue: %w", err)
	}
	if consume {
		before, _ := q.arenaOf(st.at.pos)
		st.setAt(position{next, st.at.seq + 1})
		q.mutated(1)
		if after, _ := q.arenaOf(next); after != before {
			q.maybeReclaim()
		}
	}
	return out, nil
}

func (q *MmapQueue) dequeueWait(ctx context.Context, st *consumerState) ([]byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q.mu.Lock()
		if err := q.usable(st); err != nil {
			q.mu.Unlock()
			return nil, err
		}
		msg, err := q.dequeueLocked(st, nil, true)
		if !errors.Is(err, ErrEmptyQueue) {
			q.mu.Unlock()
			return msg, err
		}
		if q.waiters == nil {
			q.waiters = make(chan struct{})
		}
		wake := q.waiters
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Close flushes the queue, unmaps and closes its files and releases the
// directory. Waiting DequeueWait calls return ErrClosed. A second Close, and
// every other method afterwards, returns ErrClosed. Close returns the first
// error of each step, joined, including a periodic flush's not yet reported.
func (q *MmapQueue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.closed = true
	if q.waiters != nil {
		close(q.waiters)
		q.waiters = nil
	}
	q.mu.Unlock()

	// The flusher takes mu, so it is stopped without holding it.
	close(q.quit)
	q.wg.Wait()

	q.mu.Lock()
	defer q.mu.Unlock()
	err := joinErrors(q.takeBackgroundError(), q.flushLocked())
	if rerr := q.release(); rerr != nil {
		err = joinErrors(err, errorf("close: %w", rerr))
	}
	return err
}
