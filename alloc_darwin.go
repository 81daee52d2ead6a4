//go:build darwin

package bigqueue

import (
	"os"

	"golang.org/x/sys/unix"
)

// allocate reserves size bytes for f with fcntl(F_PREALLOCATE), first as one
// contiguous extent and then as any extents, and sets the file's size.
func allocate(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= size {
		return nil
	}
	store := unix.Fstore_t{
		Flags:   unix.F_ALLOCATECONTIG | unix.F_ALLOCATEALL,
		Posmode: unix.F_PEOFPOSMODE,
		Length:  size - fi.Size(),
	}
	if err := unix.FcntlFstore(f.Fd(), unix.F_PREALLOCATE, &store); err != nil {
		store.Flags = unix.F_ALLOCATEALL
		if err := unix.FcntlFstore(f.Fd(), unix.F_PREALLOCATE, &store); err != nil {
			return err
		}
	}
	return f.Truncate(size)
}
