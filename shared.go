package bigqueue

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Consumers shared between processes: the writer and readers (OpenReader)
// each hold the named consumers they have handles for, one process at a
// time, and the writer keeps every arena a consumer of any process needs.
//
//   - A process holds a named consumer from its first NewConsumer or
//     FromConsumer to Close or DeleteConsumer: an exclusive flock on the
//     consumer's file (consumerState.held). Another process's NewConsumer of
//     the same name gets ErrLocked. Only the holder writes the file; the
//     writer also writes consumers that nobody holds (clamping, dropping).
//   - The writer learns of consumers that readers create and delete, and of
//     their positions, at every reclaim: it lists the consumer files (a file
//     deleted and made anew under its name is told apart by dev/inode) and
//     reads the positions of those it does not hold from their live slots.
//   - A flock on reclaimLockName orders what must not interleave: the
//     writer's reclaim; creating, opening and taking hold of a consumer,
//     and removing its file, in any process; a reader's moves of what its
//     consumer needs backwards (a pin for a cursor behind the committed
//     offset, a commit back). Either the writer's reclaim sees the change,
//     or the reader, which reads the head again under the lock, sees the
//     head the writer has moved (then a chosen offset is out of range, and
//     a cursor SetDropOldest passed moves to the head).
//   - A reader's pin counts while a process holds the consumer: a killed
//     reader's pin stays in the file, ignored, until the next holder
//     withdraws it.
const reclaimLockName = "LOCK.reclaim"

// holdConsumer takes this process's hold on st, once.
func (q *MmapQueue) holdConsumer(st *consumerState) error {
	if st.held >= 0 || st == q.def {
		return nil
	}
	file := consumerFileName(st.name)
	fd, err := openat(q.d.fd, file, unix.O_RDONLY)
	if err != nil {
		return errorf("consumer %q: open %s: %w", st.name, q.d.join(file), err)
	}
	if err := flockNB(fd); err != nil {
		_ = unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return errorf("consumer %q: %w", st.name, ErrLocked)
		}
		return errorf("consumer %q: lock %s: %w", st.name, q.d.join(file), err)
	}
	// The file mapped may have been deleted, and another made under its
	// name, since it was opened: then the one mapped is gone.
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil || idOf(&sb) != st.mf.id || sb.Nlink == 0 {
		_ = unix.Close(fd)
		perr := &fs.PathError{Op: "open", Path: st.mf.path, Err: unix.ENOENT}
		return errorf("consumer %q: the file mapped was deleted: %w", st.name, perr)
	}
	st.held = fd
	return nil
}

// releaseConsumer gives st's hold back.
func releaseConsumer(st *consumerState) error {
	if st.held < 0 {
		return nil
	}
	err := unix.Close(st.held)
	st.held = -1
	return err
}

// othersMayHold reports whether another process may write st: a named
// consumer this process does not hold.
func (q *MmapQueue) othersMayHold(st *consumerState) bool {
	return st != q.def && st.held < 0
}

// flockNB takes an exclusive flock on fd without waiting.
func flockNB(fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// testHookLockReclaim, when set, is called by lockReclaim before it waits
// for the lock, with whether the queue is a reader.
var testHookLockReclaim func(reader bool)

// lockReclaim takes the reclaim lock, waiting for it, and returns its
// release, which closes the file.
func (q *MmapQueue) lockReclaim() (func(), error) {
	// Opened for each use, not kept: a queue holds as few descriptors as
	// it can (a program may keep hundreds of queues open), and a reclaim
	// is rare enough for an open and a close.
	// Read-only when it exists: a flock needs no more, and a reader that may
	// only read the directory still looks (Stats, Check).
	fd, err := openat(q.d.fd, reclaimLockName, unix.O_RDONLY)
	if errors.Is(err, unix.ENOENT) {
		fd, err = openat(q.d.fd, reclaimLockName, unix.O_RDWR|unix.O_CREAT)
	}
	if err != nil {
		return nil, errorf("open %s: %w", q.d.join(reclaimLockName), err)
	}
	if testHookLockReclaim != nil {
		testHookLockReclaim(q.reader)
	}
	for {
		err := unix.Flock(fd, unix.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			_ = unix.Close(fd)
			return nil, errorf("lock %s: %w", q.d.join(reclaimLockName), err)
		}
	}
	return func() { _ = unix.Close(fd) }, nil // closing releases the lock
}

// learnConsumers brings this process's view of other processes' consumers
// up to date: consumer files that appeared are loaded, those that vanished
// and that this process does not hold are forgotten, damaged ones set
// aside, and the committed position of every consumer it does not hold is
// read from its file. The reclaim lock is held (reclaim, and learnOthers
// for Stats and Check).
func (q *MmapQueue) learnConsumers() error {
	l, err := listDir(q.d)
	if err != nil {
		return err
	}
	onDisk := make(map[string]bool, len(l.consumerFiles))
	for _, file := range l.consumerFiles {
		onDisk[file] = true
	}
	for file := range q.damaged {
		if !onDisk[file] {
			delete(q.damaged, file) // deleted by another process
		}
	}
	for name, st := range q.consumers {
		if st.held >= 0 {
			continue
		}
		// Gone, or deleted and made anew under its name by another
		// process (then the file is loaded again below), or damaged where
		// it is: its mapping is not read again (a file cut short would be
		// a SIGBUS there).
		file := consumerFileName(name)
		var sb unix.Stat_t
		if !onDisk[file] || unix.Fstatat(q.d.fd, file, &sb, unix.AT_SYMLINK_NOFOLLOW) != nil || idOf(&sb) != st.mf.id {
			q.forget(st)
		} else if err := st.mf.intact(sb.Size, consumerMagic); err != nil {
			q.forget(st)
			q.setDamaged(file, err)
		}
	}
	known := make(map[string]bool, len(q.consumers))
	for name := range q.consumers {
		known[consumerFileName(name)] = true
	}
	for _, file := range l.consumerFiles {
		if known[file] {
			continue
		}
		if err := q.openListed(file); err != nil {
			return err
		}
	}
	for _, st := range q.consumers {
		if !q.othersMayHold(st) {
			continue
		}
		if pos, seq, ok := st.mf.liveShared(); ok && pos >= st.synced.pos {
			st.committed = position{pos, seq}
		} else if _, v, ok := st.mf.durable(); ok {
			st.committed = position{v[0], v[1]}
		}
		if st.committed.pos < q.head.pos {
			st.committed = q.head // what it pointed to is gone; its holder moves it
		}
		if st.committed.pos > q.tail.pos || st.committed.seq > q.tail.seq {
			st.committed = q.tail // as its holder finds it (takeOver)
		}
		st.synced = st.committed // the holder makes it durable, not this process
		st.cursor = st.committed
		// A reader's cursor behind its committed offset, published as a
		// pin, while that reader lives: a process killed leaves its pin in
		// the file, and whoever takes the consumer next starts from the
		// committed offset.
		if _, v, ok := st.mf.durable(); ok {
			if pin, ok := pinOf(v); ok && pin.pos < st.committed.pos && pin.pos >= q.head.pos && q.heldElsewhere(st) {
				st.cursor = pin
			}
		}
	}
	return nil
}

// lockUnheld takes, without waiting, the lock of the consumer file file,
// which this process does not hold, and returns its release: ErrLocked
// when another process holds it, the open's error (wrapping its errno)
// when there is no such file to lock. heldElsewhere, removeUnheld and
// moveUnheld take it for a moment.
func (q *MmapQueue) lockUnheld(file string) (release func(), err error) {
	fd, err := openat(q.d.fd, file, unix.O_RDONLY)
	if err != nil {
		return nil, errorf("open %s: %w", q.d.join(file), err)
	}
	if err := flockNB(fd); err != nil {
		_ = unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, errorf("lock %s: %w", q.d.join(file), err)
	}
	return func() { _ = unix.Close(fd) }, nil // closing drops the lock
}

// heldElsewhere reports whether another process holds st, a consumer this
// one does not: whether its file's lock is taken (trying it takes it for a
// moment when it is not).
//
// The reclaim lock is held: another process taking hold of the consumer
// meanwhile (holdConsumer, under that lock too) would find it taken.
func (q *MmapQueue) heldElsewhere(st *consumerState) bool {
	release, err := q.lockUnheld(consumerFileName(st.name))
	if testHookHeldElsewhere != nil {
		testHookHeldElsewhere()
	}
	if err == nil {
		release()
	}
	return errors.Is(err, ErrLocked)
}

// testHookHeldElsewhere, when set, is called by heldElsewhere while it
// has tried a consumer's lock.
var testHookHeldElsewhere func()

// removeUnheld removes the file of a consumer that no process holds;
// ErrLocked when one does. The reclaim lock is held.
func (q *MmapQueue) removeUnheld(file string) error {
	release, err := q.lockUnheld(file)
	if errors.Is(err, unix.ENOENT) {
		return nil // removed meanwhile
	}
	if err != nil {
		return err
	}
	defer release()
	return q.d.remove(file)
}

// moveUnheld moves a consumer this process does not hold to p: in its file
// too when no other process holds it either (taken for the moment), else
// in memory only, for its holder to find.
func (q *MmapQueue) moveUnheld(st *consumerState, p position) {
	st.committed, st.cursor = p, p
	release, err := q.lockUnheld(consumerFileName(st.name))
	if err != nil {
		st.synced = p // its holder's to write
		return
	}
	defer release()
	st.mf.resyncLive() // after whatever its last holder wrote
	st.setCommitted(p)
}

// publishPin makes a reader's consumer publish its cursor to the writer
// when the cursor is behind the committed offset, and withdraw it when it
// is not: written into the durable slot beside the last flushed committed
// offset (the pin only needs to be seen, not to survive a power loss).
// Under the reclaim lock, and with the head read again, so that the writer
// either sees the pin or has already moved the head. Then, with exact set
// (Seek: the cursor is the offset the caller asked for), the cursor is out
// of range; without, the cursor has moved to the oldest message kept, as
// SetDropOldest moves every consumer it passes, and that is pinned if it
// needs to be. Writers have nothing to publish.
func (q *MmapQueue) publishPin(st *consumerState, exact bool) error {
	return q.publishPinFor(st, st.committed, exact)
}

// publishPinFor is publishPin for a consumer whose committed offset is
// about to become committed: commitLocked publishes the pin before the
// offset, so that no reclaim sees the offset move past the cursor without
// the cursor pinned (it would retire what the cursor still needs).
func (q *MmapQueue) publishPinFor(st *consumerState, committed position, exact bool) error {
	if !q.reader || st.held < 0 {
		return nil
	}
	pinFor := func() (position, bool) {
		if st.cursor.pos < committed.pos {
			return st.cursor, true
		}
		return position{}, false
	}
	want, pinned := pinFor()
	if pinned == st.pinned && want == st.pin {
		return nil
	}
	unlock, err := q.lockReclaim()
	if err != nil {
		return err
	}
	defer unlock()
	q.refresh() // moves a cursor the head has passed to the head
	if !exact {
		want, pinned = pinFor()
	}
	return q.setPinLocked(st, want, pinned)
}

// setPinLocked publishes st's pin (want, when pinned), under the reclaim
// lock and with the head just read: an error wrapping ErrOffsetOutOfRange
// when the writer has retired what it would pin.
func (q *MmapQueue) setPinLocked(st *consumerState, want position, pinned bool) error {
	if pinned && want.pos < q.head.pos {
		return errorf("offset %d is no longer kept: %w", want.seq, ErrOffsetOutOfRange)
	}
	st.pin, st.pinned = want, pinned
	st.mf.setDurable(st.durableSlot(st.synced))
	return nil
}
