package bigqueue

// Creating a file and allocating its blocks costs 300-500 µs of kernel time
// on the ext4 we measured, whatever the file's size. For arenas of 64 KiB
// and more, whose filling costs as much or more (a page fault per fresh
// page), the writer has the next arena file created on another goroutine
// as it starts on the current one: 128 KiB arenas filled with 4 KiB writes
// went 20% faster in a standalone test, and Enqueue of 4 KiB messages into
// 128 KiB arenas 21% (starting only once half the arena was written made
// it 40-65% slower instead: the writer then waits for the file). For
// smaller arenas creation is all the work and the handoff only adds to it.
// Nothing is created ahead of the first arena, so that a queue that fits
// in one arena has one file, nor under SetMaxDiskUsage, whose count of
// bytes on disk it would upset.
//
// The file created ahead is not in onDisk until the writer claims it
// (settle): until then it is known only to the goroutine. Whatever renames
// arena files (retire) or closes the directory settles first. A file
// created ahead that the queue never used is past the tail, where open
// takes it for a spare.
const createAheadMin = 64 << 10

// aheadCreation is an arena file being created on another goroutine; done
// gets the outcome.
type aheadCreation struct {
	id   int64
	done chan error
}

// createAhead starts creating the file of arena id, when that is worth
// it and nothing else is being created. The writer calls it as it starts on
// arena id-1. Not for arena 1: a queue that fits in its first arena never
// has a second file.
func (m *arenaManager) createAhead(id int64) {
	if id <= 1 {
		return
	}
	m.startCreation(id)
}

// createTail starts creating the file of arena id, the tail's, when an
// open finds it missing (a new queue, or one whose tail had just reached a
// new arena): its first Enqueue then does not create it on the write path
// (300-500 µs). The reference creates it at open too.
func (m *arenaManager) createTail(id int64) {
	m.startCreation(id)
}

// startCreation starts creating the file of arena id on another goroutine,
// when that is worth it and nothing else is being created.
func (m *arenaManager) startCreation(id int64) {
	if !m.ahead || m.size < createAheadMin || m.creating != nil || m.exists(id) {
		return
	}
	c := &aheadCreation{id: id, done: make(chan error, 1)}
	m.creating = c
	dirFd, size, first, dir := m.dirFd, m.size, m.chunk(), m.dir
	go func() { c.done <- createArenaFile(dirFd, dir, arenaName(id), size, first) }()
}

// settle waits for the file being created ahead, if any, and counts it on
// disk when it was created. A failure is not reported: the writer creates
// the file itself when it needs it, and meets the error then.
func (m *arenaManager) settle() {
	c := m.creating
	if c == nil {
		return
	}
	m.creating = nil
	if err := <-c.done; err == nil {
		m.onDisk[c.id] = struct{}{}
		m.top = max(m.top, c.id)
		m.dirDirty = true
	}
}
