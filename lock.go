package bigqueue

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockName is the file a queue holds an exclusive advisory lock (flock) on
// while it is open. The kernel drops the lock when the holder closes the
// file or dies, so a crash never leaves the directory locked.
const lockName = "LOCK"

// lockDir takes the exclusive lock of d, or fails with ErrLocked. flock
// locks belong to the open file, so a second open in the same process is
// refused as well as one in another process.
func lockDir(d qdir) (*os.File, error) {
	path, dir := d.join(lockName), d.path
	fd, err := openat(d.fd, lockName, unix.O_RDWR|unix.O_CREAT)
	if err != nil {
		return nil, errorf("open lock file %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errorf("%s: %w", dir, ErrLocked)
		}
		return nil, errorf("lock %s: %w", path, err)
	}
	return f, nil
}
