package bigqueue

import (
	"errors"
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

	// requested is the offset up to which the writer has handed the
	// mapping to the populator (see prepareWrite).
	requested int
	// allocated is the offset up to which the file's blocks are known to
	// be allocated (see allocChunk); the writer writes only below it.
	allocated int

	// prev and next link the arena into the manager's LRU list.
	prev, next *arena
}

// allocateFile reserves the blocks of [off, off+length) of the file fd
// (allocate, per platform), so that writes through a mapping never meet a
// full disk, which would be a SIGBUS. It is a variable so that tests can
// inject a failure.
var allocateFile = allocate

// Disk follows data: an arena file is created at its full size but sparse,
// and its blocks are allocated in chunks of up to allocChunk bytes (less
// in a queue just opened: arenaManager.chunk) ahead of the writer (on
// macOS, where F_PREALLOCATE does not take a range, the whole file at once:
// allocChunk is the arena size there). A queue holding a few messages takes
// 64 KiB of disk, not a whole arena, and a full file system still gives an
// error from Enqueue, never a SIGBUS. Readers read only
// below the tail, which is always allocated; a hole reads as zeros, which
// never parse as a record.

// mmapFile maps a file with protection prot; a variable so that tests can
// inject ENOMEM.
var mmapFile = func(fd int, size, prot int) ([]byte, error) {
	return unix.Mmap(fd, 0, size, prot, unix.MAP_SHARED)
}

// openat opens name in the directory dirFd, retrying on EINTR. Arena files
// are opened relative to the queue's directory: it saves the walk of the
// whole path, which is most of the cost of an open.
func openat(dirFd int, name string, flags int) (int, error) {
	for {
		// O_NONBLOCK: a FIFO put where a file of the queue belongs must not
		// block the open (it is then found not to be a regular file); on a
		// regular file it changes nothing.
		fd, err := unix.Openat(dirFd, name, flags|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o644)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// openArenaFile opens the file of an arena, name in dirFd (dir for
// errors), with flags, and returns its descriptor. It is the one place an
// arena file is created and allocated, and the one place its size is
// checked:
//
//   - with create set, the file is created if missing, sized, and its
//     first bytes allocated (see allocChunk); a file it created and could not
//     allocate is removed again, so a full disk leaves nothing behind;
//   - without it, a missing file, or one shorter than size (reading past
//     its end through a mapping would be a SIGBUS), is corrupt; size 0
//     checks nothing (window.use, for a file known to be whole) and saves
//     the fstat.
func openArenaFile(dirFd int, dir, name string, size, first, flags int, create bool) (int, error) {
	path := func() string { return filepath.Join(dir, name) } // for errors only
	if create {
		flags |= unix.O_CREAT
	}
	fd, err := openat(dirFd, name, flags)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return -1, errorf("arena %s is missing: %w", path(), ErrCorrupt)
		case errors.Is(err, unix.EISDIR):
			return -1, errorf("arena %s is a directory: %w", path(), ErrCorrupt)
		}
		return -1, errorf("open arena %s: %w", path(), err)
	}
	if !create && size == 0 {
		return fd, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return -1, errorf("stat arena %s: %w", path(), err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		_ = unix.Close(fd)
		return -1, errorf("arena %s is not a regular file: %w", path(), ErrCorrupt)
	case create:
		err := allocateFile(fd, 0, int64(min(first, size)))
		if err == nil && st.Size < int64(size) {
			err = unix.Ftruncate(fd, int64(size)) // the rest stays a hole
		}
		if err != nil {
			_ = unix.Close(fd)
			if st.Size == 0 {
				_ = unix.Unlinkat(dirFd, name, 0)
			}
			return -1, errorf("allocate arena %s: %w", path(), err)
		}
	case st.Size < int64(size):
		_ = unix.Close(fd)
		return -1, errorf("arena %s is %d bytes, want %d: %w", path(), st.Size, size, ErrCorrupt)
	}
	return fd, nil
}

// createArenaFile creates (or completes) and allocates the file of an
// arena without mapping it.
func createArenaFile(dirFd int, dir, name string, size, first int) error {
	fd, err := openArenaFile(dirFd, dir, name, size, first, unix.O_RDWR, true)
	if err != nil {
		return err
	}
	if err := unix.Close(fd); err != nil {
		return errorf("close arena %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// openArena maps the file of arena id in dirFd (dir for errors), creating it and
// allocating its first bytes first when create is set (see openArenaFile).
//
// With readOnly set (a reader, OpenReader), the file is opened and mapped
// for reading only, and create must be false.
func openArena(dirFd int, dir string, id int64, size, first int, create, readOnly bool) (*arena, error) {
	flags, prot := unix.O_RDWR, unix.PROT_READ|unix.PROT_WRITE
	if readOnly {
		flags, prot = unix.O_RDONLY, unix.PROT_READ
	}
	name := arenaName(id)
	fd, err := openArenaFile(dirFd, dir, name, size, first, flags, create)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unix.Close(fd) }()
	data, err := mapArena(fd, size, prot)
	if err != nil {
		return nil, errorf("map arena %s: %w", filepath.Join(dir, name), err)
	}
	a := &arena{id: id, data: data}
	if create {
		a.allocated = min(first, size)
	}
	return a, nil
}

// mapArena, mapWindow and unmapArena are the only places a mapping of an
// arena is made or released, and so the only places mappedArenas changes.
func mapArena(fd, size, prot int) ([]byte, error) {
	data, err := mmapFile(fd, size, prot)
	if err == nil {
		mappedArenas.Add(1)
	}
	return data, err
}

// mapWindow maps length bytes of the arena file fd from offset off (a page
// boundary) for reading, for a window (window.go); unmapArena releases it.
// The mapping is advised sequential: its pages are read once, and the
// kernel then does not mark them accessed when they are unmapped.
func mapWindow(fd, off, length int) ([]byte, error) {
	data, err := unix.Mmap(fd, int64(off), length, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	mappedArenas.Add(1)
	_ = unix.Madvise(data, unix.MADV_SEQUENTIAL)
	return data, nil
}

func unmapArena(data []byte) error {
	mappedArenas.Add(-1)
	return unix.Munmap(data)
}

// deleteArenaFile unmaps data (when not nil) and removes the file name in
// dirFd; a file already gone is not an error. It is the one way an arena
// is deleted, on the caller's goroutine or off it (arenaManager.reap).
func deleteArenaFile(dirFd int, name string, data []byte) error {
	var err error
	if data != nil {
		err = unmapArena(data)
	}
	if uerr := unix.Unlinkat(dirFd, name, 0); uerr != nil && !errors.Is(uerr, unix.ENOENT) && err == nil {
		err = uerr
	}
	return err
}

// populateOff is set when the kernel refuses to populate a mapping
// (populate.go).
var populateOff atomic.Bool

// sync writes the arena's dirty pages in [from, to) to disk.
func (a *arena) sync(from, to int) error {
	return unix.Msync(a.data[from&^pageMask:to], unix.MS_SYNC)
}

// unmap releases the mapping. The arena must not be used afterwards.
func (a *arena) unmap() error {
	if a.data == nil {
		return nil
	}
	err := unmapArena(a.data)
	a.data = nil
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

// syncDirFunc syncs a directory; a variable so that tests can count the
// syncs.
var syncDirFunc = qdir.sync
