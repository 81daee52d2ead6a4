//go:build linux

package bigqueue

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// allocate reserves size bytes for f with fallocate(2). Where the file
// system does not support it, the file is only sized with ftruncate: writes
// to a full disk can then fault, which the file system gave no way to avoid.
func allocate(f *os.File, size int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), 0, 0, size)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			return f.Truncate(size)
		default:
			return err
		}
	}
}
