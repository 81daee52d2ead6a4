package bigqueue

import (
	"errors"

	"golang.org/x/sys/unix"
)

// windowSize is how much of an arena a window reads at once.
const windowSize = 64 << 10

// Arenas of at least mapWindowMin bytes are read through a mapped window of
// mapWindowSize bytes (see window).
const (
	mapWindowMin  = 1 << 20
	mapWindowSize = 1 << 20
)

// A window reads an arena that is not mapped, for a queue that caps its
// mapped arenas. Mapping an arena to read a few messages and unmapping it
// again costs a page fault per page on top of the mmap and munmap calls; a
// window costs one pread per 64 KiB, and keeps the memory cap a cap. Each
// consumer has its own window, so consumers reading different arenas do
// not evict each other's.
//
// Arenas of mapWindowMin bytes or more are read instead through a mapping
// of mapWindowSize bytes of the arena at a time, made and released by the
// window alone (it takes no place among the queue's mapped arenas, but
// counts towards mapLimit). For large messages the kernel's work per page
// is what costs: pread marks each page-cache page accessed, which moves it
// between LRU lists under a lock; a mapping advised MADV_SEQUENTIAL skips
// that (Dequeue of 128 KiB messages from 4 MiB arenas under a cap, one
// CPU: -12.6%, p=0.001, n=8; with two CPUs no significant change). Small
// arenas stay with pread: per arena, the open is what costs.
//
// A window holds only bytes before the tail as it was when they were read:
// the bytes of the stream never change once written, so what it holds stays
// true. A mapped window shows bytes past the tail too; view hands out only
// the bytes asked for, which lie before the tail.
type window struct {
	fd  int    // the arena file read; valid while open is set
	id  int64  // the id of fd's arena
	off int    // the arena offset of buf[0]
	buf []byte // the bytes read
	mem []byte // storage for buf, allocated on first use

	// mapped is the mapping buf lies in, for an arena of mapWindowMin
	// bytes or more; nil when buf is in mem, or empty.
	mapped []byte

	open bool
}

// close releases the window's file.
func (w *window) close() error {
	if !w.open {
		return nil
	}
	err := w.unmap()
	w.open, w.buf = false, nil
	return joinErrors(err, unix.Close(w.fd))
}

// unmap releases the window's mapping, if it has one.
func (w *window) unmap() error {
	if w.mapped == nil {
		return nil
	}
	err := unmapArena(w.mapped)
	w.mapped, w.buf = nil, nil
	return err
}

// use points the window at arena id.
func (w *window) use(m *arenaManager, id int64) error {
	if w.open && w.id == id {
		return nil
	}
	if err := w.close(); err != nil {
		return err
	}
	// A short arena is corrupt however it is read, so its size is
	// checked, unless this session's writer sized it (an fstat is 0.6 µs
	// here, 21 ns for each message of a 4 KiB arena read through a window).
	size := m.size
	if id >= m.sized && id <= m.writable {
		size = 0
	}
	name := arenaName(id)
	fd, err := openArenaFile(m.dirFd, m.dir, name, size, 0, unix.O_RDONLY|noAtime, false)
	if noAtime != 0 && errors.Is(err, unix.EPERM) {
		fd, err = openArenaFile(m.dirFd, m.dir, name, size, 0, unix.O_RDONLY, false)
	}
	if err != nil {
		return err
	}
	w.fd, w.id, w.buf, w.open = fd, id, nil, true
	return nil
}

// readAt fills b from arena id at offset off. A file too short for it is
// corrupt (a mapping would have been a SIGBUS there).
func (w *window) readAt(m *arenaManager, id int64, off int, b []byte) error {
	if err := w.use(m, id); err != nil {
		return err
	}
	n, err := preadFull(w.fd, b, int64(off))
	switch {
	case errors.Is(err, unix.EISDIR): // made one since it was opened unchecked (use)
		return errorf("read arena %s: %w: %w", m.path(id), err, ErrCorrupt)
	case err != nil:
		return errorf("read arena %s: %w", m.path(id), err)
	case n < len(b):
		return errorf("arena %s is shorter than offset %d: %w", m.path(id), off+len(b), ErrCorrupt)
	}
	return nil
}

// holds reports whether the window holds the byte at offset off of arena
// id.
func (w *window) holds(id int64, off int) bool {
	return w.open && w.id == id && off >= w.off && off < w.off+len(w.buf)
}

// view returns up to n bytes of arena id from offset off, at least one;
// avail is how many bytes of the arena from off lie before the tail (at
// least n). The slice is valid until the next call.
func (w *window) view(m *arenaManager, id int64, off, n, avail int) ([]byte, error) {
	if w.holds(id, off) {
		b := w.buf[off-w.off:]
		return b[:min(n, len(b))], nil
	}
	if m.size >= mapWindowMin {
		return w.mapAt(m, id, off, n)
	}
	if w.mem == nil {
		w.mem = make([]byte, min(windowSize, m.size))
	}
	fill := min(len(w.mem), avail)
	if err := w.readAt(m, id, off, w.mem[:fill]); err != nil {
		w.buf = nil
		return nil, err
	}
	w.off, w.buf = off, w.mem[:fill]
	return w.buf[:min(n, fill)], nil
}

// mapAt maps mapWindowSize bytes of arena id from the page holding offset
// off (fewer at the arena's end) and returns up to n bytes from off.
func (w *window) mapAt(m *arenaManager, id int64, off, n int) ([]byte, error) {
	if err := w.use(m, id); err != nil {
		return nil, err
	}
	if err := w.unmap(); err != nil {
		return nil, errorf("unmap window of arena %s: %w", m.path(id), err)
	}
	base := off &^ pageMask
	data, err := mapWindow(w.fd, base, min(mapWindowSize, m.size-base))
	if err != nil {
		return nil, errorf("map window of arena %s: %w", m.path(id), err)
	}
	w.mapped, w.off, w.buf = data, base, data
	b := data[off-base:]
	return b[:min(n, len(b))], nil
}

// directMin is the size from which read takes a piece of a message in an
// arena of size bytes straight into its slice with pread instead of through
// the window.
func directMin(size int) int {
	if size >= mapWindowMin {
		return mapWindowSize
	}
	return windowSize
}
