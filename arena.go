package bigqueue

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// An arena is one fixed-size file of the queue, mapped into memory. The
// queue's byte stream is cut into arenas: position p lies in arena
// p / arenaSize at offset p % arenaSize. Arena files are named by their id
// (arena-<id>.dat) and hold record bytes only; see record.go.
type arena struct {
	id   int64
	data []byte // the mapping; nil once unmapped

	// populated is the offset up to which the writer has faulted the
	// mapping in (see prepareWrite).
	populated int

	// prev and next link the arena into the manager's LRU list.
	prev, next *arena
}

// allocateFile reserves size bytes of disk for the file fd, so that writes
// through a mapping never meet a full disk (which would be a SIGBUS). It is
// a variable so that tests can inject a failure.
var allocateFile = allocate

// mmapFile maps a file; a variable so that tests can inject ENOMEM.
var mmapFile = func(fd int, size int) ([]byte, error) {
	return unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

// openat opens name in the directory dirFd, retrying on EINTR. Arena files
// are opened relative to the queue's directory: it saves the walk of the
// whole path, which is most of the cost of an open.
func openat(dirFd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirFd, name, flags|unix.O_CLOEXEC, 0o644)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// openArena maps the arena file at path (name in dirFd). With create set,
// the file is created if need be and all its size bytes are allocated on
// disk first; a file it created and could not allocate is removed again, so
// a full disk leaves nothing behind. Without it, a missing file, or one
// shorter than size (reading past its end would be a SIGBUS), is corrupt.
func openArena(dirFd int, path string, id int64, size int, create bool) (*arena, error) {
	name := filepath.Base(path)
	flag := unix.O_RDWR
	if create {
		flag |= unix.O_CREAT
	}
	fd, err := openat(dirFd, name, flag)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, errorf("arena %s is missing: %w", path, ErrCorrupt)
		}
		return nil, errorf("open arena %s: %w", path, err)
	}
	defer func() { _ = unix.Close(fd) }()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, errorf("stat arena %s: %w", path, err)
	}
	if create {
		if err := allocateFile(fd, int64(size)); err != nil {
			if st.Size == 0 {
				_ = unix.Unlinkat(dirFd, name, 0)
			}
			return nil, errorf("allocate %d bytes for arena %s: %w", size, path, err)
		}
	} else if st.Size < int64(size) {
		return nil, errorf("arena %s is %d bytes, want %d: %w", path, st.Size, size, ErrCorrupt)
	}
	data, err := mmapFile(fd, size)
	if err != nil {
		return nil, errorf("map arena %s: %w", path, err)
	}
	mappedArenas.Add(1)
	return &arena{id: id, data: data}, nil
}

// populateChunk is how far ahead of the writer a mapping is faulted in.
const populateChunk = 1 << 20

// populateOff is set when the kernel refuses to populate a mapping.
var populateOff atomic.Bool

// prepareWrite faults in the pages the writer is about to fill, up to
// [off, end) and at most populateChunk beyond, in one call, instead of one
// page fault per page.
func (a *arena) prepareWrite(off, end int) {
	if end <= a.populated || populateOff.Load() {
		return
	}
	from := max(a.populated, off) &^ 4095
	to := min(len(a.data), max(end, from+populateChunk))
	if !populate(a.data[from:to]) {
		populateOff.Store(true)
		return
	}
	a.populated = to
}

// sync writes the arena's dirty pages to disk.
func (a *arena) sync() error {
	return unix.Msync(a.data, unix.MS_SYNC)
}

// unmap releases the mapping. The arena must not be used afterwards.
func (a *arena) unmap() error {
	if a.data == nil {
		return nil
	}
	err := unix.Munmap(a.data)
	a.data = nil
	mappedArenas.Add(-1)
	return err
}

// syncFile flushes the file name in dirFd, which is not mapped.
func syncFile(dirFd int, name string) error {
	fd, err := openat(dirFd, name, unix.O_RDWR)
	if err != nil {
		return err
	}
	err = unix.Fsync(fd)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the directory's entries (created, renamed and removed
// files) durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return errorf("open directory %s: %w", dir, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
