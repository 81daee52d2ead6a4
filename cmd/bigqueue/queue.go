package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/seed-ff72c416/bigqueue"
)

// openQueue opens the queue in dir at the arena size recorded in it, so the
// user never has to repeat the size a queue was created with. When dir holds
// no queue, create decides: false is an error, true makes the directory (the
// library does not) and a new queue with arenas of newArenaSize bytes. The
// library's errors are turned into messages that say what to do about them.
func openQueue(dir string, create bool, newArenaSize int, opts ...bigqueue.Option) (*bigqueue.MmapQueue, error) {
	if dir == "" {
		return nil, errors.New("the queue directory is an empty string")
	}
	size, err := bigqueue.ReadArenaSize(dir)
	made := "" // the outermost directory made here, removed again if the queue fails to open
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && create:
		made = outermostMissing(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, errorf("create queue directory: %w", err)
		}
		size = newArenaSize
	case errors.Is(err, fs.ErrNotExist):
		return nil, errorf("no queue in %s", dir)
	default:
		return nil, describeOpenError(dir, err)
	}
	all := append([]bigqueue.Option{bigqueue.SetArenaSize(size)}, opts...)
	q, err := bigqueue.NewMmapQueue(dir, all...)
	if err != nil {
		err = describeOpenError(dir, err)
		if made != "" {
			if rerr := os.RemoveAll(made); rerr != nil {
				err = errors.Join(err, errorf("remove the directory made for it: %w", rerr))
			}
		}
		return nil, err
	}
	return q, nil
}

// outermostMissing returns the outermost of dir and its parents that does
// not exist, which MkdirAll(dir) would make, or "" when dir exists.
func outermostMissing(dir string) string {
	missing := ""
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return missing
		}
		missing = p
		if filepath.Dir(p) == p {
			return missing
		}
	}
}

// describeOpenError explains why the queue in dir could not be opened.
func describeOpenError(dir string, err error) error {
	switch {
	case errors.Is(err, bigqueue.ErrLocked):
		return errorf("queue %s is in use by another process", dir)
	case errors.Is(err, bigqueue.ErrCorrupt):
		return errorf("queue %s is damaged: %w", dir, err)
	case errors.Is(err, bigqueue.ErrIncompatibleVersion):
		return errorf("queue %s was written in a format this bigqueue does not read: %w", dir, err)
	case errors.Is(err, bigqueue.ErrTooSmallArenaSize):
		return errorf("arena size too small: the minimum is the page size, %d bytes", os.Getpagesize())
	default:
		return errorf("open queue %s: %w", dir, err)
	}
}

// closeQueue flushes q, so that everything the command did survives a
// crash of the machine, and closes it. It returns the first error of each.
func closeQueue(q *bigqueue.MmapQueue) error {
	var errs []error
	if err := q.Flush(); err != nil {
		errs = append(errs, errorf("flush queue: %w", err))
	}
	if err := q.Close(); err != nil {
		errs = append(errs, errorf("close queue: %w", err))
	}
	return errors.Join(errs...)
}

// openToInspect opens the queue in dir for stat and check: as its writer
// when nobody has it open, and as a reader (bigqueue.OpenReader) beside the
// program that has it open otherwise, or when this user may only read the
// queue (another user's, a read-only file system).
func openToInspect(dir string) (*bigqueue.MmapQueue, error) {
	size, err := recordedArenaSize(dir)
	if err != nil {
		return nil, err
	}
	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(size))
	if errors.Is(err, bigqueue.ErrLocked) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		q, err = bigqueue.OpenReader(dir, bigqueue.SetArenaSize(size))
	}
	if err != nil {
		return nil, describeOpenError(dir, err)
	}
	return q, nil
}

// openReader opens the queue in dir as a reader, at the arena size
// recorded in it: a writer may have it open, or start after.
func openReader(dir string) (*bigqueue.MmapQueue, error) {
	size, err := recordedArenaSize(dir)
	if err != nil {
		return nil, err
	}
	q, err := bigqueue.OpenReader(dir, bigqueue.SetArenaSize(size))
	if err != nil {
		return nil, describeOpenError(dir, err)
	}
	return q, nil
}

// recordedArenaSize returns the arena size of the existing queue in dir.
func recordedArenaSize(dir string) (int, error) {
	if dir == "" {
		return 0, errors.New("the queue directory is an empty string")
	}
	size, err := bigqueue.ReadArenaSize(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, errorf("no queue in %s", dir)
	case err != nil:
		return 0, describeOpenError(dir, err)
	}
	return size, nil
}
