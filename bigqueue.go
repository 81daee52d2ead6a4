package bigqueue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
	// Set by NewMmapQueue or OpenReader and only read afterwards.
	dir    string
	reader bool // opened by OpenReader: reads what a writer publishes (reader.go)
	d      qdir // the directory, held open; closed by release
	conf   config

	// mu guards every field from here to the flusher's, the arenas and
	// their files (through s), and the state of every consumer
	// (consumerState). Exported methods take it, check closed, and call an
	// unexported helper that does the work.
	mu       sync.Mutex
	closed   bool
	lockFile *os.File // the LOCK file, flocked from open to Close
	// wake is wake.dat (wake.go), through which a writer wakes readers in
	// other processes; nil when it could not be opened (readers poll).
	wake *wakeFile
	idx  *metaFile // index.dat: durable head and tail, live tail
	s    stream    // the records in the arena files
	head position  // oldest message kept; new consumers start here
	tail position  // where the next record is written

	syncedTail position // tail as of the last flush
	syncedHead position // head as of the last flush
	def        *consumerState
	consumers  map[string]*consumerState
	// damaged holds the named consumers' files that are damaged, by file
	// name, with the error each gave (see damagedConsumer): while there is
	// one, nothing is retired.
	damaged map[string]error
	waiters chan struct{} // closed to wake DequeueWait; nil while none waits
	waiting int           // DequeueWait and ReadWait calls blocked on waiters
	// roomWaiters is closed to wake EnqueueWait when arenas are retired or
	// a consumer moves past an arena; nil while none waits.
	roomWaiters chan struct{}
	mutOps      int64 // enqueues and dequeues since the last flush
	// asyncErr is the first error of work done off a caller's path (the
	// periodic flush, reclaiming after a Dequeue) not yet reported; the
	// next Flush or Close returns it.
	asyncErr error

	// The flusher goroutine (flush.go): channels, safe without mu; the
	// flusher takes mu to flush.
	flushReq chan struct{}  // asks for a flush (op count reached)
	quit     chan struct{}  // closed by Close to stop the flusher
	wg       sync.WaitGroup // the flusher
	// sleepers counts a reader's ReadWait calls asleep on the wake word,
	// which Close lets go before it unmaps the file (added to under mu,
	// while not closed).
	sleepers sync.WaitGroup
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
	conf, d, err := prepareOpen("open", dir, opts)
	if err != nil {
		return nil, err
	}
	lockFile, err := lockDir(d)
	if err != nil {
		_ = d.close()
		return nil, err
	}
	q := &MmapQueue{
		dir:       dir,
		d:         d,
		conf:      conf,
		lockFile:  lockFile,
		consumers: make(map[string]*consumerState),
		damaged:   make(map[string]error),
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
	q.wg.Add(1)
	go q.flusher()
	return q, nil
}

// prepareOpen is the start of NewMmapQueue and OpenReader (op names which
// in errors): the options applied and validated before any file is
// touched, then dir checked and opened.
func prepareOpen(op, dir string, opts []Option) (config, qdir, error) {
	conf := defaultConfig()
	for _, opt := range opts {
		if err := opt(&conf); err != nil {
			return conf, qdir{fd: -1}, err
		}
	}
	if err := conf.validate(); err != nil {
		return conf, qdir{fd: -1}, err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return conf, qdir{fd: -1}, errorf("%s %s: %w", op, dir, err)
	}
	if !fi.IsDir() {
		return conf, qdir{fd: -1}, errorf("%s %s: %w", op, dir, syscall.ENOTDIR)
	}
	d, err := openQDir(dir)
	return conf, d, err
}

// open loads or creates the queue's files and recovers its state.
func (q *MmapQueue) open() error {
	l, err := listDir(q.d)
	if err != nil {
		return err
	}
	// Under the reclaim lock (its file made here, so that readers need not
	// make it): a reader may be creating a consumer's file.
	unlock, err := q.lockReclaim()
	if err != nil {
		return err
	}
	err = removeTemps(q.d, l.temps)
	unlock()
	if err != nil {
		return err
	}
	if q.wake, err = openWakeFile(q.d, true); err != nil {
		return err
	}
	if !l.index {
		if err := q.create(l); err != nil {
			return err
		}
	}
	idx, size, err := openIndex(q.d, false)
	if err != nil {
		return err
	}
	q.idx = idx
	if size != q.conf.arenaSize {
		return errorf("queue has arena size %d, opened with %d: %w", size, q.conf.arenaSize, ErrInvalidArenaSize)
	}
	am, err := newArenaManager(q.d, q.conf.arenaSize, q.conf.maxInMemArenas, l.arenas)
	if err != nil {
		return err
	}
	am.ahead = q.conf.maxDiskUsage <= 0
	q.s = stream{size: q.conf.arenaSize, am: am}
	if err := q.recover(); err != nil {
		return err
	}
	q.s.writtenFrom = q.tail.pos
	am.createTail(q.s.messageArena(q.tail.pos))
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
	if err := createConsumerFile(q.d, defaultConsumerFile, "", position{}); err != nil {
		return err
	}
	return createIndex(q.d, q.conf.arenaSize)
}

// release unmaps and closes every file of the queue, returning the errors.
func (q *MmapQueue) release() error {
	var errs []error
	for _, st := range q.allConsumers() {
		errs = append(errs, releaseConsumer(st), st.mf.close(), st.win.close())
	}
	if q.s.idx != nil {
		errs = append(errs, q.s.idx.close())
	}
	if q.s.am != nil {
		errs = append(errs, q.s.am.close())
	}
	if q.idx != nil {
		errs = append(errs, q.idx.close())
	}
	if q.lockFile != nil {
		errs = append(errs, q.lockFile.Close())
	}
	errs = append(errs, q.wake.close())
	errs = append(errs, q.d.close())
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
	if err := q.writable(); err != nil {
		return err
	}
	return q.enqueueLocked(message)
}

// EnqueueWait is Enqueue that waits for room when the queue is at its
// SetMaxDiskUsage cap, instead of returning ErrQueueFull: it returns once
// consumers have read past an arena and it is retired, ctx.Err() when ctx
// ends first, and ErrClosed when the queue is closed while it waits. A
// message that could never fit under the cap still gets ErrQueueFull.
func (q *MmapQueue) EnqueueWait(ctx context.Context, message []byte) error {
	for {
		q.mu.Lock()
		if err := q.writable(); err != nil {
			q.mu.Unlock()
			return err
		}
		if err := ctx.Err(); err != nil {
			q.mu.Unlock()
			return err
		}
		err := q.enqueueLocked(message)
		if !errors.Is(err, ErrQueueFull) || !q.couldFit(len(message)) {
			q.mu.Unlock()
			return err
		}
		if q.roomWaiters == nil {
			q.roomWaiters = make(chan struct{})
		}
		wake := q.roomWaiters
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// wakeRoomWaiters wakes every EnqueueWait, to try again.
func (q *MmapQueue) wakeRoomWaiters() {
	if q.roomWaiters != nil {
		close(q.roomWaiters)
		q.roomWaiters = nil
	}
}

func (q *MmapQueue) enqueueLocked(message []byte) error {
	if err := q.reserve(q.s.recordEnd(q.tail.pos, len(message))); err != nil {
		return err
	}
	next, err := q.s.write(q.tail, message, 0)
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
	if err := q.writable(); err != nil {
		return err
	}
	if len(messages) == 0 {
		return nil
	}
	end := q.tail.pos
	for _, m := range messages {
		end = q.s.recordEnd(end, len(m))
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
		if pos, err = q.s.write(position{pos, q.tail.seq + int64(i)}, m, flags); err != nil {
			q.s.idx.truncate(q.tail.pos) // the batch is not published
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
	q.s.clearHeaderAt(t.pos)
	q.idx.setLive(t.pos, t.seq)
	q.wake.published()
	q.wakeWaiters()
	q.mutated(ops)
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
	q.wakeWaiters()
	q.wakeRoomWaiters()
	q.wakeSleepers()
	q.mu.Unlock()

	// The flusher takes mu, so it is stopped without holding it; so are
	// a reader's sleepers, which take it to look.
	close(q.quit)
	q.wg.Wait()
	q.sleepers.Wait()

	q.mu.Lock()
	defer q.mu.Unlock()
	var err error
	if !q.reader {
		err = joinErrors(q.takeAsyncError(), q.flushLocked())
	} else {
		err = q.syncConsumers()
	}
	if rerr := q.release(); rerr != nil {
		err = joinErrors(err, errorf("close: %w", rerr))
	}
	return err
}
