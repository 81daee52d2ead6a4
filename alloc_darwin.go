//go:build darwin

package bigqueue

import (
	"golang.org/x/sys/unix"
)

// allocate reserves size bytes for the file fd with fcntl(F_PREALLOCATE), first as one
// contiguous extent and then as any extents, and sets the file's size.
func allocate(fd int, size int64) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Size >= size {
		return nil
	}
	store := unix.Fstore_t{
		Flags:   unix.F_ALLOCATECONTIG | unix.F_ALLOCATEALL,
		Posmode: unix.F_PEOFPOSMODE,
		Length:  size - st.Size,
	}
	if err := unix.FcntlFstore(uintptr(fd), unix.F_PREALLOCATE, &store); err != nil {
		store.Flags = unix.F_ALLOCATEALL
		if err := unix.FcntlFstore(uintptr(fd), unix.F_PREALLOCATE, &store); err != nil {
			return err
		}
	}
	return unix.Ftruncate(fd, size)
}
