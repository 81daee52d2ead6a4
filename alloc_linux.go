//go:build linux

package bigqueue

import (
	"errors"

	"golang.org/x/sys/unix"
)

// allocate reserves size bytes for the file fd with fallocate(2). Where the file
// system does not support it, the file is only sized with ftruncate: writes
// to a full disk can then fault, which the file system gave no way to avoid.
func allocate(fd int, size int64) error {
	for {
		err := unix.Fallocate(fd, 0, 0, size)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			return unix.Ftruncate(fd, size)
		default:
			return err
		}
	}
}
