package bigqueue

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"slices"
	"strings"
)

// Each consumer, the default one included, has a meta file (see
// metafile.go) holding its committed position:
//
//	kind's header fields (offset 16): | name length u32 |
//	static data (offset 256):         | name bytes ...  |
//	live slot:      position, offset                (every commit)
//	durable slots:  position, offset, pin position, pin offset  (every Flush)
//
// The pin is zero but in a consumer held by a reader whose cursor is behind
// its committed offset (a Seek back): it tells the writer what to keep.
// Its position is stored plus one, so that a pin at the queue's first byte
// is not the zero of no pin. Files written before the pin existed hold
// zeros there.
//
// A named consumer's file is consumer-<hex of the first 16 bytes of the
// SHA-256 of its name>.dat, so that any string is a safe name ("a/b",
// "../x", non-ASCII); the name inside the file is checked on open. The
// default consumer's file is consumer-default.dat.
const (
	consumerPrefix      = "consumer-"
	consumerSuffix      = ".dat"
	defaultConsumerFile = consumerPrefix + "default" + consumerSuffix
	consumerNameOffset  = 0 // within the kind's header fields

	// MaxConsumerNameLen is the longest consumer name, in bytes.
	MaxConsumerNameLen = 1024
)

var consumerMagic = [8]byte{'B', 'Q', 'C', 'O', 'N', 'S', 'M', 'R'}

// consumerState is one consumer's positions and file. Every Consumer
// handle with its name shares it. The queue's lock guards it.
//
// The cursor is where Read reads next; it lives in memory only. The
// committed position is where a reopened queue puts the cursor; it is in
// the live slot of the file, written at every commit. Dequeue reads and
// commits in one step, so for a consumer that only dequeues the two are
// equal. The queue keeps every message at or after either.
type consumerState struct {
	name      string // "" for the default consumer
	mf        *metaFile
	cursor    position // where the next Read reads
	committed position // what the last commit wrote to the live slot
	// pin is, in a reader, the cursor published for the writer while it
	// is behind the committed offset (shared.go), when pinned is set.
	pin     position
	pinned  bool
	synced  position // what the last Flush made durable
	deleted bool
	win     window // reads arenas that are not mapped
	held    int    // this process's flock on the file (shared.go), or -1
}

// low returns the position before which the consumer needs nothing.
func (s *consumerState) low() position {
	if s.cursor.pos < s.committed.pos {
		return s.cursor
	}
	return s.committed
}

// durableSlot returns what a durable slot holds for position p: p and the
// pin, whose position is stored plus one (zero: no pin).
func (s *consumerState) durableSlot(p position) [4]int64 {
	if !s.pinned {
		return [4]int64{p.pos, p.seq, 0, 0}
	}
	return [4]int64{p.pos, p.seq, s.pin.pos + 1, s.pin.seq}
}

// pinOf decodes the pin of durable slot v, if it has one.
func pinOf(v [4]int64) (position, bool) {
	if v[2] <= 0 || v[3] < 0 {
		return position{}, false
	}
	return position{v[2] - 1, v[3]}, true
}

// setCommitted commits p, at or after the durable position.
func (s *consumerState) setCommitted(p position) {
	s.committed = p
	s.mf.setLive(p.pos, p.seq)
}

// commit makes p the committed position, and durable at once when p is
// behind the durable position: on open, a live position behind the durable
// one reads as a stale slot (the newer slot damaged), so positions move
// only forward between flushes.
func (s *consumerState) commit(p position) error {
	s.setCommitted(p)
	if p.pos >= s.synced.pos {
		return nil
	}
	s.mf.setDurable(s.durableSlot(p))
	if err := s.mf.sync(); err != nil {
		return err
	}
	s.synced = p
	return nil
}

// Consumer reads the queue with a position of its own, kept across restarts
// under its name. Create one with NewConsumer or FromConsumer. Its methods
// are safe for concurrent use; handles with the same name share a position.
type Consumer struct {
	q  *MmapQueue
	st *consumerState
}

func consumerFileName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return consumerPrefix + hex.EncodeToString(sum[:16]) + consumerSuffix
}

// isConsumerFile reports whether name is one that consumerFileName gives:
// a file of the queue's, not a user's copy (consumer-old.dat) beside it.
func isConsumerFile(name string) bool {
	hash, ok := strings.CutPrefix(name, consumerPrefix)
	if !ok {
		return false
	}
	if hash, ok = strings.CutSuffix(hash, consumerSuffix); !ok || len(hash) != 32 {
		return false
	}
	for _, c := range []byte(hash) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validateConsumerName(name string) error {
	if name == "" {
		return errorf("consumer name is empty: %w", ErrInvalidConsumerName)
	}
	if len(name) > MaxConsumerNameLen {
		return errorf("consumer name is %d bytes, at most %d allowed: %w", len(name), MaxConsumerNameLen, ErrInvalidConsumerName)
	}
	return nil
}

// createConsumerFile writes the file of a new consumer at position at.
func createConsumerFile(d qdir, fileName, name string, at position) error {
	var fields [4]byte
	binary.LittleEndian.PutUint32(fields[consumerNameOffset:], uint32(len(name)))
	v := [4]int64{at.pos, at.seq}
	return d.writeFile(fileName, newMetaImage(consumerMagic, fields[:], []byte(name), v))
}

// openConsumerFile maps a consumer file and decodes its name and position,
// preferring the live slot and falling back to the last durable one.
func openConsumerFile(d qdir, file string, readOnly bool) (*consumerState, error) {
	path := d.join(file)
	mf, err := openMetaFile(d, file, consumerMagic, readOnly)
	if err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(mf.field()[consumerNameOffset:])
	if n > MaxConsumerNameLen {
		_ = mf.close()
		return nil, errorf("%s: name length %d out of range: %w", path, n, ErrCorrupt)
	}
	st := &consumerState{name: string(mf.static()[:n]), mf: mf, held: -1}
	if !st.readPosition() {
		_ = mf.close()
		return nil, errorf("%s: no durable position with a valid checksum: %w", path, ErrCorrupt)
	}
	return st, nil
}

// readPosition sets the durable, committed and cursor positions of s from
// its file: the durable slot, and the live slot unless it is behind that
// (then it is older than the last flush: the newer slot was damaged;
// positions move only forward between flushes, commit syncs a move back at
// once). It reports whether a durable slot's checksum held; when none did,
// the durable position is left as it was.
func (s *consumerState) readPosition() bool {
	_, v, ok := s.mf.durable()
	if ok {
		s.synced = position{v[0], v[1]}
		s.committed = s.synced
	}
	if pos, seq, live := s.mf.live(); live && pos >= s.synced.pos && seq >= s.synced.seq {
		s.committed = position{pos, seq}
	}
	s.cursor = s.committed
	return ok
}

// loadConsumers opens the default consumer and every named consumer in dir.
// A named consumer whose file is damaged does not stop the queue from
// opening: it is set aside (see damagedConsumer).
func (q *MmapQueue) loadConsumers(names []string) error {
	def, err := openConsumerFile(q.d, defaultConsumerFile, q.reader)
	if err != nil {
		return err
	}
	q.def = def
	if def.name != "" {
		return errorf("%s: default consumer file holds name %q: %w", def.mf.path, def.name, ErrCorrupt)
	}
	for _, file := range names {
		if err := q.openListed(file); err != nil {
			return err
		}
	}
	return nil
}

// openListed opens file, a named consumer's found in the directory, and
// adds it to the consumers, unless it has gone or become something else
// than a file since it was listed, or is damaged (then it is set aside).
func (q *MmapQueue) openListed(file string) error {
	st, err := openNamedConsumerFile(q.d, file, q.reader)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errNotFile):
		return nil
	case isDamage(err):
		q.setDamaged(file, err)
		return nil
	case err != nil:
		return err
	}
	delete(q.damaged, file)
	q.consumers[st.name] = st
	return nil
}

// openNamedConsumerFile is openConsumerFile for a named consumer's file:
// the name the file holds must be one whose file it is.
func openNamedConsumerFile(d qdir, file string, readOnly bool) (*consumerState, error) {
	st, err := openConsumerFile(d, file, readOnly)
	if err != nil {
		return nil, err
	}
	if st.name == "" || consumerFileName(st.name) != file {
		_ = st.mf.close()
		return nil, errorf("%s: holds name %q, which belongs in another file: %w", st.mf.path, st.name, ErrCorrupt)
	}
	return st, nil
}

// A named consumer's file that is damaged (isDamage: its header, its name
// or both durable slots fail their checks) costs that consumer, not the
// queue: the queue opens without it, and the file is left as it is, for
// DeleteConsumer to remove. Meanwhile its name answers ErrCorrupt, Stats
// and Check report the file, and the writer retires no arena, since what
// the consumer still needed cannot be known. A file that is missing when
// opened was deleted by another process meanwhile, which is not damage;
// nor is something other than a regular file under its name (errNotFile:
// not a file of the queue's; the name cannot be used until it goes).
//
// A named consumer's file of another format version is damage too, not a
// queue of another format: the index and the default consumer's file say
// which format the queue is.
func isDamage(err error) bool {
	return (errors.Is(err, ErrCorrupt) || errors.Is(err, ErrIncompatibleVersion)) &&
		!errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errNotFile)
}

// setDamaged records that file, a named consumer's, is damaged: err, from
// opening it (isDamage), kept as an error that wraps ErrCorrupt.
func (q *MmapQueue) setDamaged(file string, err error) {
	if !errors.Is(err, ErrCorrupt) {
		err = errorf("%w: %w", err, ErrCorrupt)
	}
	q.damaged[file] = err
}

// damagedConsumer records that the file of consumer name is damaged (err,
// from opening it) and returns the error for the caller. A state this
// process knew under that name, not held here, is forgotten: its file is
// no longer one it can read.
func (q *MmapQueue) damagedConsumer(name, file string, err error) error {
	q.setDamaged(file, err)
	if st, ok := q.consumers[name]; ok && st.held < 0 {
		q.forget(st)
	}
	return errorf("consumer %q is damaged, deleting it starts it anew: %w", name, q.damaged[file])
}

// Name returns the consumer's name.
func (c *Consumer) Name() string { return c.st.name }

// NewConsumer returns the consumer called name, creating it when it does
// not exist. A new consumer starts at the oldest message the queue still
// keeps; an existing one, also after a restart, where it left off. Any
// string of 1 to MaxConsumerNameLen bytes is a valid name.
func (q *MmapQueue) NewConsumer(name string) (*Consumer, error) {
	if err := validateConsumerName(name); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	st, err := q.consumer(name, nil)
	if err != nil {
		return nil, err
	}
	return &Consumer{q: q, st: st}, nil
}

// FromConsumer returns the consumer called name, creating it when it does
// not exist, and moves it to the position of from: both then read the same
// messages next. It returns ErrDifferentQueues when from belongs to another
// queue.
func (q *MmapQueue) FromConsumer(name string, from *Consumer) (*Consumer, error) {
	if from == nil || from.q != q {
		return nil, ErrDifferentQueues
	}
	if err := validateConsumerName(name); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(from.st); err != nil {
		return nil, err
	}
	st, err := q.consumer(name, &from.st.committed)
	if err != nil {
		return nil, err
	}
	// Both positions of from: its cursor too, so that the two read the
	// same messages next. In a reader, a cursor behind the committed
	// offset is pinned before the offset is committed (see commitLocked).
	st.cursor = from.st.cursor
	if err := q.publishPinFor(st, from.st.committed, false); err != nil {
		st.cursor = st.committed
		return nil, errorf("consumer %q: %w", name, err)
	}
	committed := from.st.committed
	if committed.pos < q.head.pos { // dropped (SetDropOldest) meanwhile
		committed = q.head
	}
	if st.cursor.pos < q.head.pos {
		st.cursor = q.head
	}
	if err := st.commit(committed); err != nil {
		return nil, errorf("consumer %q: %w", name, err)
	}
	return &Consumer{q: q, st: st}, nil
}

// consumer returns the state of the named consumer, creating its file at
// position at when it has none.
//
// A new file is created at position *at, or at the head when at is nil.
// The consumer is then held by this process (shared.go). A consumer this
// process does not hold is opened by name, under the reclaim lock (see
// openNamedConsumer), even when it was listed before: its file may have
// been deleted, or deleted and made anew, by another process since.
func (q *MmapQueue) consumer(name string, at *position) (*consumerState, error) {
	if st, ok := q.consumers[name]; ok && st.held >= 0 {
		return st, nil
	}
	st, err := q.openNamedConsumer(name, at, true)
	if err != nil {
		return nil, err
	}
	if err := q.takeOver(st); err != nil {
		return nil, errorf("new consumer %q: %w", name, err)
	}
	return st, nil
}

// takeOver brings st, a consumer this process has just taken hold of, to
// where its last holder left it: the position in its file (the live slot,
// unless it is older than the durable one), not the one this process last
// read there (the writer reads others' consumers at each reclaim only),
// no earlier than the head, which SetDropOldest may have moved past it
// while nobody held it, and no later than the tail.
func (q *MmapQueue) takeOver(st *consumerState) error {
	st.mf.resyncLive()
	st.readPosition()
	st.pin, st.pinned = position{}, false
	if _, v, ok := st.mf.durable(); ok {
		if _, ok := pinOf(v); ok {
			// Its last holder's, a reader killed: withdrawn (the pin only
			// needs to be seen, not to survive a power loss).
			st.mf.setDurable(st.durableSlot(st.synced))
		}
	}
	switch {
	case st.committed.pos < q.head.pos:
		st.cursor = q.head
		return st.commit(q.head)
	case st.committed.pos > q.tail.pos || st.committed.seq > q.tail.seq:
		// Past the end: a writer's recovery cut the tail back (see
		// clampConsumers), or the file came from another queue.
		st.cursor = q.tail
		return st.commit(q.tail)
	}
	return nil
}

// openNamedConsumer opens the file of consumer name, creating it first
// when it has none and create is set (else the error wraps
// fs.ErrNotExist), and takes hold of it (an error wrapping ErrLocked when
// another process holds it; it is then known here, not held).
//
// All under the reclaim lock, in the writer as in readers, as is the
// removal of a consumer's file (DeleteConsumer): one process at a time
// creates or deletes a file, none deletes another's temporary file
// meanwhile, and the file held is the one opened.
func (q *MmapQueue) openNamedConsumer(name string, at *position, create bool) (*consumerState, error) {
	unlock, err := q.lockReclaim()
	if err != nil {
		return nil, errorf("consumer %q: %w", name, err)
	}
	defer unlock()
	if q.reader {
		q.refresh()
	}
	file := consumerFileName(name)
	st, err := openNamedConsumerFile(q.d, file, false)
	if err != nil && create && errors.Is(err, ErrCorrupt) && errors.Is(err, fs.ErrNotExist) {
		start := q.head
		if at != nil && at.pos > start.pos {
			start = *at
		}
		if err := createConsumerFile(q.d, file, name, start); err != nil {
			return nil, errorf("new consumer %q: %w", name, err)
		}
		st, err = openNamedConsumerFile(q.d, file, false)
	}
	if isDamage(err) {
		return nil, q.damagedConsumer(name, file, err)
	}
	if err != nil {
		return nil, errorf("consumer %q: %w", name, err)
	}
	delete(q.damaged, file)
	if old, ok := q.consumers[name]; ok {
		_ = joinErrors(old.mf.close(), old.win.close())
	}
	if st.committed.pos < q.head.pos {
		st.committed, st.cursor = q.head, q.head
	}
	q.consumers[name] = st
	if err := q.holdConsumer(st); err != nil {
		return nil, err
	}
	return st, nil
}

// forget drops st, a consumer whose file another process deleted: handles
// to it, and waiters on it, get ErrUnknownConsumer.
func (q *MmapQueue) forget(st *consumerState) {
	if q.consumers[st.name] == st {
		delete(q.consumers, st.name)
	}
	st.deleted = true
	q.wakeWaiters()
	q.wakeSleepers()
	_ = joinErrors(st.mf.close(), st.win.close())
}

// Consumers returns the names of the named consumers, sorted. The default
// consumer is not among them.
func (q *MmapQueue) Consumers() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	names := make([]string, 0, len(q.consumers))
	for name := range q.consumers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// DeleteConsumer removes the named consumer and its file, then flushes, so
// that arenas only it still needed are deleted before it returns. Handles
// to it return ErrUnknownConsumer afterwards. An unknown name returns an
// error wrapping ErrUnknownConsumer.
//
// A consumer whose file is damaged (NewConsumer returns ErrCorrupt for
// it, Stats lists its file in DamagedConsumers) is deleted the same way;
// until it is, the queue retires no arena.
func (q *MmapQueue) DeleteConsumer(name string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	st, ok := q.consumers[name]
	if !ok || st.held < 0 {
		// Not held here: known from a listing, or made since by another
		// process, or neither. What counts is the file there now.
		s, err := q.openNamedConsumer(name, nil, false)
		if errors.Is(err, fs.ErrNotExist) {
			if ok {
				q.forget(st) // deleted by another process since listed
			}
			return errorf("delete consumer %q: %w", name, ErrUnknownConsumer)
		}
		if errors.Is(err, ErrLocked) {
			return errorf("delete consumer %q: %w", name, ErrLocked) // once named
		}
		if isDamage(err) {
			return q.deleteDamaged(name)
		}
		if err != nil {
			return errorf("delete consumer %q: %w", name, err)
		}
		st = s
	}
	unlock, err := q.lockReclaim() // see openNamedConsumer
	if err != nil {
		return errorf("delete consumer %q: %w", name, err)
	}
	delete(q.consumers, name)
	st.deleted = true
	q.wakeWaiters() // a waiter on this consumer returns ErrUnknownConsumer
	q.wakeSleepers()
	err = joinErrors(st.mf.close(), st.win.close())
	if rerr := q.d.remove(consumerFileName(name)); rerr != nil && err == nil {
		err = rerr
	}
	unlock()
	if err == nil {
		err = q.d.sync()
	}
	err = joinErrors(err, releaseConsumer(st))
	if err != nil {
		return errorf("delete consumer %q: %w", name, err)
	}
	if q.reader {
		return nil // the writer gives back what it pinned at its next flush
	}
	return q.flushLocked()
}

// deleteDamaged removes the damaged file of consumer name, under the
// reclaim lock as DeleteConsumer removes any consumer's file, unless a
// process holds it (ErrLocked): one that had it open before the damage
// still reads its own mapping, and may write it whole again.
func (q *MmapQueue) deleteDamaged(name string) error {
	file := consumerFileName(name)
	unlock, err := q.lockReclaim()
	if err != nil {
		return errorf("delete consumer %q: %w", name, err)
	}
	err = q.removeUnheld(file)
	unlock()
	if errors.Is(err, ErrLocked) {
		return errorf("delete consumer %q: %w", name, ErrLocked)
	}
	if err == nil {
		err = q.d.sync()
	}
	if err != nil {
		return errorf("delete consumer %q: %w", name, err)
	}
	delete(q.damaged, file)
	if q.reader {
		return nil
	}
	return q.flushLocked()
}
