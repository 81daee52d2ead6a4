package bigqueue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// An arena is one fixed-size file of the queue, mapped into memory. The
// queue's byte stream is cut into arenas: position p lies in arena
// p / arenaSize at offset p % arenaSize. Arena files are named by their id
// (arena-<id>.dat) and hold record bytes only; see record.go.
type arena struct {
	id   int64
	data []byte // the mapping; nil once unmapped

	// prev and next link the arena into the manager's LRU list.
	prev, next *arena
}

// allocateFile reserves size bytes of disk for f, so that writes through a
// mapping never meet a full disk (which would be a SIGBUS). It is a variable
// so that tests can inject a failure.
var allocateFile = allocate

// mmapFile maps a file; a variable so that tests can inject ENOMEM.
var mmapFile = func(fd int, size int) ([]byte, error) {
	return unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

// openArena maps the arena file at path. With create set, the file is
// created if need be and all its size bytes are allocated on disk first; a
// file it created and could not allocate is removed again, so a full disk
// leaves nothing behind. Without it, a missing file, or one shorter than
// size (reading past its end would be a SIGBUS), is corrupt.
func openArena(path string, id int64, size int, create bool) (*arena, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("arena %s is missing: %w", path, ErrCorrupt)
		}
		return nil, fmt.Errorf("open arena %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat arena %s: %w", path, err)
	}
	if create {
		if err := allocateFile(f, int64(size)); err != nil {
			if fi.Size() == 0 {
				_ = os.Remove(path)
			}
			return nil, fmt.Errorf("allocate %d bytes for arena %s: %w", size, path, err)
		}
	} else if fi.Size() < int64(size) {
		return nil, fmt.Errorf("arena %s is %d bytes, want %d: %w", path, fi.Size(), size, ErrCorrupt)
	}
	data, err := mmapFile(int(f.Fd()), size)
	if err != nil {
		return nil, fmt.Errorf("map arena %s: %w", path, err)
	}
	return &arena{id: id, data: data}, nil
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
	return err
}

// syncFile flushes a file that is not mapped.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the directory's entries (created, renamed and removed
// files) durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
