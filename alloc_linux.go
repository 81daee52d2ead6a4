//go:build linux

package bigqueue

import (
	"errors"

	"golang.org/x/sys/unix"
)

// allocChunk is how much of an arena file is allocated at a time (see
// allocateFile) once the queue is written fast: the writer makes one
// fallocate call per MiB it writes. A queue just opened allocates in
// smaller chunks, from 64 KiB, until its writer has written a few hundred
// KiB (arenaManager.stride): a queue of a few small messages takes 64 KiB
// of disk.
const allocChunk = 1 << 20

// allocate reserves the blocks of [off, off+length) of the file fd with
// fallocate(2), extending the file if it is shorter. Where the file system
// does not support it, nothing is reserved and the caller sizes the file
// with ftruncate: writes to a full disk can then fault, which the file
// system gave no way to avoid.
func allocate(fd int, off, length int64) error {
	for {
		err := unix.Fallocate(fd, 0, off, length)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			return unix.Ftruncate(fd, max(off+length, 0))
		default:
			return err
		}
	}
}
