package bigqueue

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	arenaPrefix = "arena-"
	arenaSuffix = ".dat"
)

// arenaManager owns the arena files of a queue: which are mapped, creating
// them ahead of the writer, mapping them for readers, syncing and deleting
// them. At most max arenas are mapped at once (0: no cap); the least
// recently used one is unmapped to make room. Callers use one arena at a
// time, so the arena in use is always the most recently used one and is
// never the one evicted.
//
// Locking: the queue's mutex (MmapQueue.mu) guards every field but those
// marked otherwise; every method is called with it held. Two kinds of
// goroutine work beside it, and touch only what they are handed: a reaper
// (startReap) gets detached mappings and names and reports through reapMu;
// a creator (createahead.go) gets dirFd, a name and a size and reports
// through its channel, which settle reads under the queue's mutex.
type arenaManager struct {
	dir   string // set at creation, read-only
	dirFd int    // the directory, for openat; closed by close after the goroutines are done
	size  int    // set at creation, read-only
	max   int    // set at creation, read-only

	mapped map[int64]*arena
	// front is the most recently used arena, back the least; the list
	// links every mapped arena through arena.prev and arena.next.
	front, back *arena

	// onDisk is the set of arena ids whose files exist.
	onDisk map[int64]struct{}
	// top is the highest id an arena file has had in this session; a
	// retired arena kept for reuse is renamed past it.
	top int64
	// writable is the highest id whose file the writer has created and
	// allocated in this session; arenas above it need createArenaFile.
	writable int64
	// sized is the first id the writer took in this session: the files of
	// the arenas from sized to writable are at least the arena size, as the
	// writer made them (or checked them), and a window opens them without
	// checking again (see window.use). Until the writer takes an arena, the
	// range is empty.
	sized int64
	// dirDirty is set when an arena file was created or renamed since the
	// last directory sync: the next flush syncs the directory before the
	// index that depends on the new names.
	dirDirty bool

	// reap holds retired arenas that are to be unmapped and deleted off
	// the caller's path (see retire), until startReap hands them to a
	// reaper; reaping counts the reapers.
	reap    []reapItem
	reaping sync.WaitGroup
	// reapMu guards reapErr, the first error of a reaper not yet taken by
	// waitReaped. Reapers take it; nothing else does.
	reapMu  sync.Mutex
	reapErr error

	// readOnly is set for a reader's manager (OpenReader): arenas are
	// mapped for reading only, and none is created, retired or deleted.
	readOnly bool

	// ahead enables creating the writer's next arena file ahead of it
	// (createahead.go); creating is the creation under way, or nil.
	ahead    bool
	creating *aheadCreation

	// pop faults in pages ahead of the writer (populate.go); nil until the
	// writer first needs it.
	pop *populator

	// stride is how far ahead of the writer blocks are allocated and pages
	// faulted in: firstStride in a queue just opened, doubled at each
	// hand-over up to populateAhead (populateNext). A queue that holds a
	// few messages takes 64 KiB of disk and of memory, not 1 MiB, and one
	// that is written fast reaches the full stride within its first MiB.
	stride int
}

// reapItem is an arena detached from the manager, to unmap and delete.
type reapItem struct {
	data []byte // its mapping, or nil
	name string // its file name in dir
}

// newArenaManager returns the manager of the arenas of the queue in d,
// which holds the arena files onDisk. It works through d's descriptor,
// which the caller keeps open until close has returned (close waits for
// the manager's goroutines): a queue holds one descriptor of its
// directory, not one per part.
func newArenaManager(d qdir, size, maxMapped int, onDisk []int64) (*arenaManager, error) {
	m := &arenaManager{
		dir:      d.path,
		dirFd:    d.fd,
		size:     size,
		max:      maxMapped,
		mapped:   make(map[int64]*arena),
		onDisk:   make(map[int64]struct{}, len(onDisk)),
		writable: -1,
		top:      -1,
		stride:   firstStride,
	}
	for _, id := range onDisk {
		m.onDisk[id] = struct{}{}
		m.top = max(m.top, id)
	}
	return m, nil
}

func arenaName(id int64) string {
	return arenaPrefix + strconv.FormatInt(id, 10) + arenaSuffix
}

func parseArenaName(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, arenaPrefix)
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, arenaSuffix); !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 || arenaName(id) != name {
		return 0, false
	}
	return id, true
}

func (m *arenaManager) path(id int64) string {
	return filepath.Join(m.dir, arenaName(id))
}

// ids returns the ids of the arena files on disk, in order.
func (m *arenaManager) ids() []int64 {
	ids := make([]int64, 0, len(m.onDisk))
	for id := range m.onDisk {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// exists reports whether the file of arena id is on disk.
func (m *arenaManager) exists(id int64) bool {
	_, ok := m.onDisk[id]
	return ok
}

// count is the number of arena files on disk.
func (m *arenaManager) count() int { return len(m.onDisk) }

// get returns arena id mapped, for reading. A missing or short file is
// ErrCorrupt.
func (m *arenaManager) get(id int64) (*arena, error) {
	if a := m.front; a != nil && a.id == id {
		return a, nil
	}
	if a, ok := m.mapped[id]; ok {
		m.touch(a)
		return a, nil
	}
	return m.load(id, false)
}

// mapping returns arena id if it is mapped, or nil. It does not count as a
// use for the LRU order.
func (m *arenaManager) mapping(id int64) *arena {
	if a := m.front; a != nil && a.id == id {
		return a
	}
	return m.mapped[id]
}

// getForWrite returns arena id mapped, with its file created and all its
// blocks allocated, for the writer.
func (m *arenaManager) getForWrite(id int64) (*arena, error) {
	if id <= m.writable {
		return m.get(id)
	}
	m.settle()
	a, ok := m.mapped[id]
	if ok {
		// Mapped by a reader: only the allocation is missing.
		if err := m.allocate(id); err != nil {
			return nil, err
		}
		m.touch(a)
	} else {
		var err error
		if a, err = m.load(id, true); err != nil {
			return nil, err
		}
	}
	if !m.exists(id) {
		m.onDisk[id] = struct{}{}
		m.dirDirty = true
	}
	m.top = max(m.top, id)
	if m.writable < 0 {
		m.sized = id
	}
	m.writable = id
	m.createAhead(id + 1)
	m.unmapNext(a)
	return a, nil
}

// unmapNext hands the arena the writer will unmap when it starts the one
// after current (the least recently used, once the cap of mapped arenas is
// reached) to the populator, to clear its page tables ahead of the unmap
// (populate.go). Should a reader use it meanwhile, it only faults its pages
// in again.
func (m *arenaManager) unmapNext(current *arena) {
	if !unmapAheadWorks || m.size < unmapAheadMin || m.max <= 0 || len(m.mapped) < m.max || m.back == nil || m.back == current {
		return
	}
	if m.pop == nil {
		m.pop = newPopulator()
	}
	m.pop.unmapAhead(m.back)
}

// allocate makes sure all the blocks of the existing file of arena id are
// allocated.
func (m *arenaManager) allocate(id int64) error {
	return createArenaFile(m.dirFd, m.dir, arenaName(id), m.size, m.chunk())
}

// load maps arena id, creating its file when create is set, and unmaps the
// least recently used arenas first when the cap is reached, when the
// process has mapLimit arenas mapped (see maplimit.go), or when the kernel
// refuses another mapping (ENOMEM: vm.max_map_count or address space).
func (m *arenaManager) load(id int64, create bool) (*arena, error) {
	for m.back != nil && ((m.max > 0 && len(m.mapped) >= m.max) || mappedArenas.Load() >= mapLimit()) {
		if err := m.evict(); err != nil {
			return nil, err
		}
	}
	for {
		a, err := openArena(m.dirFd, m.dir, id, m.size, m.chunk(), create, m.readOnly)
		if err == nil {
			m.mapped[id] = a
			m.pushFront(a)
			return a, nil
		}
		if !errors.Is(err, unix.ENOMEM) || m.back == nil {
			return nil, err
		}
		if err := m.evict(); err != nil {
			return nil, err
		}
	}
}

// evict unmaps the least recently used arena.
func (m *arenaManager) evict() error {
	a := m.back
	m.unlink(a)
	delete(m.mapped, a.id)
	m.unpopulate(a)
	if err := a.unmap(); err != nil {
		return errorf("unmap arena %s: %w", m.path(a.id), err)
	}
	return nil
}

func (m *arenaManager) touch(a *arena) {
	if m.front == a {
		return
	}
	m.unlink(a)
	m.pushFront(a)
}

func (m *arenaManager) pushFront(a *arena) {
	a.prev, a.next = nil, m.front
	if m.front != nil {
		m.front.prev = a
	}
	m.front = a
	if m.back == nil {
		m.back = a
	}
}

func (m *arenaManager) unlink(a *arena) {
	if a.prev != nil {
		a.prev.next = a.next
	} else {
		m.front = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else {
		m.back = a.prev
	}
	a.prev, a.next = nil, nil
}

// testHookSync, when set by a test, sees each range sync is asked for.
var testHookSync func(id int64, from, to int)

// sync makes the bytes [from, to) of arena id durable, mapped or not.
// Only that range of a mapping is written back: the pages the populator
// faulted in past the tail are dirty too, and writing their zeros at
// every flush, to write them again once filled, made a flush every 100
// enqueues of 4 KiB about 1.4x slower.
func (m *arenaManager) sync(id int64, from, to int) error {
	if testHookSync != nil {
		testHookSync(id, from, to)
	}
	if a, ok := m.mapped[id]; ok {
		if err := a.sync(from, to); err != nil {
			return errorf("sync arena %s: %w", m.path(id), err)
		}
		return nil
	}
	if !m.exists(id) {
		return nil
	}
	if err := syncFile(m.dirFd, arenaName(id)); err != nil {
		return errorf("sync arena %s: %w", m.path(id), err)
	}
	return nil
}

// syncDir makes created and renamed arena files durable in the directory.
func (m *arenaManager) syncDir() error {
	if !m.dirDirty {
		return nil
	}
	if err := syncDirFunc(qdir{path: m.dir, fd: m.dirFd}); err != nil {
		return err
	}
	m.dirDirty = false
	return nil
}

// maxSpares is how many retired arenas are kept, renamed, for the writer to
// reuse.
const maxSpares = 2

// retire disposes of arena id, which every consumer has read past. With
// keep set (the caller allows fewer than maxSpares arenas past the tail's
// arena), the file is renamed to the next unused id and kept: creating a
// file costs hundreds of microseconds on ext4, and a reused arena's blocks
// are allocated and its pages often still cached, or even still mapped.
// Its stale records cannot be read at their new positions: a record's
// checksum covers its position. Otherwise the arena is deleted.
//
// With later set, an arena to delete is only detached, and startReap
// unmaps and deletes it on another goroutine: unmapping and unlinking a
// file with dirty pages takes 100 us or more, which a Dequeue should not
// wait for.
func (m *arenaManager) retire(id, tailArena int64, keep, later bool) error {
	m.settle() // the spare's new name must not be the one being created
	if !keep {
		if later {
			m.detach(id)
			return nil
		}
		return m.remove(id)
	}
	next := max(m.top, tailArena) + 1
	if err := unix.Renameat(m.dirFd, arenaName(id), m.dirFd, arenaName(next)); err != nil {
		return errorf("reuse arena %s as %s: %w", m.path(id), arenaName(next), err)
	}
	m.dirDirty = true // the new name must be durable before the index that relies on it
	delete(m.onDisk, id)
	m.onDisk[next] = struct{}{}
	m.top = next
	if a, ok := m.mapped[id]; ok {
		delete(m.mapped, id)
		a.id = next
		m.mapped[next] = a
	}
	return nil
}

// spares counts the arena files past the tail's arena: retired ones kept
// for reuse, or leftovers of a crash.
func (m *arenaManager) spares(tailArena int64) int {
	m.settle() // a file created ahead counts as a spare
	n := 0
	for id := range m.onDisk {
		if id > tailArena {
			n++
		}
	}
	return n
}

// dropSpares deletes the arena files past the tail's arena that the writer
// has not taken: the retired arenas kept for reuse and the file created
// ahead (see retireBefore, which calls it when every consumer has read
// everything).
func (m *arenaManager) dropSpares(tailArena int64) error {
	m.settle()
	var errs []error
	for id := range m.onDisk {
		if id > tailArena && id > m.writable {
			errs = append(errs, m.remove(id))
		}
	}
	return joinErrors(errs...)
}

// detach forgets arena id and queues it for startReap.
func (m *arenaManager) detach(id int64) {
	item := reapItem{name: arenaName(id)}
	if a, ok := m.mapped[id]; ok {
		m.unlink(a)
		delete(m.mapped, id)
		m.unpopulate(a)
		item.data, a.data = a.data, nil
	}
	delete(m.onDisk, id)
	m.reap = append(m.reap, item)
}

// startReap unmaps and deletes the detached arenas on a new goroutine.
func (m *arenaManager) startReap() {
	items := m.reap
	m.reap = nil
	if len(items) == 0 {
		return
	}
	m.reaping.Add(1)
	go func() {
		defer m.reaping.Done()
		for _, it := range items {
			if err := deleteArenaFile(m.dirFd, it.name, it.data); err != nil {
				m.reapMu.Lock()
				if m.reapErr == nil {
					m.reapErr = errorf("delete arena %s: %w", filepath.Join(m.dir, it.name), err)
				}
				m.reapMu.Unlock()
			}
		}
	}()
}

// waitReaped waits for the arenas being deleted and returns the first
// error met doing it since the last call.
func (m *arenaManager) waitReaped() error {
	m.reaping.Wait()
	m.reapMu.Lock()
	defer m.reapMu.Unlock()
	err := m.reapErr
	m.reapErr = nil
	return err
}

// remove unmaps and deletes arena id.
func (m *arenaManager) remove(id int64) error {
	var data []byte
	if a, ok := m.mapped[id]; ok {
		m.unlink(a)
		delete(m.mapped, id)
		m.unpopulate(a)
		data, a.data = a.data, nil
	}
	delete(m.onDisk, id)
	if err := deleteArenaFile(m.dirFd, arenaName(id), data); err != nil {
		return errorf("delete arena %s: %w", m.path(id), err)
	}
	return nil
}

// close unmaps every arena, closes the directory and returns the first
// error.
func (m *arenaManager) close() error {
	if m.pop != nil {
		m.pop.stop()
		m.pop = nil
	}
	m.settle()
	m.startReap()
	first := m.waitReaped()
	for m.back != nil {
		if err := m.evict(); err != nil && first == nil {
			first = err
		}
	}
	m.dirFd = -1 // the caller's, closed by it
	return first
}

// prepareWrite makes [off, end) of arena a, which the writer is about to
// fill, writable: its blocks allocated, a chunk at a time, with room for
// the header slot the tail clears after it. An error is a full disk's,
// before any byte was written. When less than half of populateAhead is
// left ahead of the writer that it handed to the populator, it hands over
// the next stretch (populateNext).
func (m *arenaManager) prepareWrite(a *arena, off, end int) error {
	if need := min(end+headerSize, m.size); need > a.allocated {
		if err := m.allocateTo(a, need); err != nil {
			return err
		}
	}
	if end+m.stride/2 > a.requested && a.requested < m.size {
		m.populateNext(a, off, end)
	}
	return nil
}

// populateNext allocates up to a stride of arena a past end, and hands
// what is allocated past off to the populator (populate.go), or faults it
// in at once when it is smaller than populateInline. The allocation ahead
// is best effort: when it fails (the disk is full, or nearly), what is
// allocated already is populated, and the writer meets the error when it
// needs the blocks itself. Every hand-over but an arena's first doubles
// the stride, up to populateAhead.
func (m *arenaManager) populateNext(a *arena, off, end int) {
	if a.requested > 0 {
		m.stride = min(2*m.stride, populateAhead)
	}
	// Up to a chunk boundary when that leaves half of the stride or more
	// ahead of the writer (which then asks again only past it): a new
	// queue's first messages take the first chunk, not two.
	chunk := m.chunk()
	want := end + m.stride
	if down := want / chunk * chunk; down >= end+m.stride/2 {
		want = down
	}
	want = min(m.size, want)
	if want > a.allocated {
		_ = m.allocateTo(a, want)
	}
	from, to := max(a.requested, off)&^pageMask, a.allocated
	a.requested = want // after a failed allocation too: not tried again at once
	if to <= from || populateOff.Load() {
		return
	}
	if to-from < populateInline {
		// Less than waking the populator costs: fault it in here.
		if !populateFunc(a.data[from:to]) {
			populateOff.Store(true)
		}
		return
	}
	if m.pop == nil {
		m.pop = newPopulator()
	}
	m.pop.post(a, from, to)
}

// unpopulate makes sure the populator no longer touches arena a, which is
// about to be unmapped.
func (m *arenaManager) unpopulate(a *arena) {
	if m.pop != nil {
		m.pop.drop(a)
	}
}

// chunk is the unit in which arena blocks are allocated: allocChunk, or
// the stride while it is smaller; the whole arena where allocChunk is
// (macOS).
func (m *arenaManager) chunk() int {
	if allocChunk >= m.size {
		return m.size
	}
	return min(allocChunk, m.stride)
}

// allocateTo allocates the blocks of arena a up to need bytes at least,
// rounded up to a whole chunk.
func (m *arenaManager) allocateTo(a *arena, need int) error {
	chunk := m.chunk()
	to := min(m.size, (need+chunk-1)/chunk*chunk)
	fd, err := openat(m.dirFd, arenaName(a.id), unix.O_RDWR)
	if err != nil {
		return errorf("open arena %s: %w", m.path(a.id), err)
	}
	err = allocateFile(fd, int64(a.allocated), int64(to-a.allocated))
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return errorf("allocate arena %s: %w", m.path(a.id), err)
	}
	a.allocated = to
	return nil
}
