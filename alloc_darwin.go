//go:build darwin

package bigqueue

import (
	"math"

	"golang.org/x/sys/unix"
)

// allocChunk is the whole arena on macOS: F_PREALLOCATE reserves from the
// end of the file, not a range, so an arena file is allocated at once.
const allocChunk = math.MaxInt

// allocate reserves the first off+length bytes of the file fd with
// fcntl(F_PREALLOCATE), first as one contiguous extent and then as any
// extents, and sets the file's size.
func allocate(fd int, off, length int64) error {
	size := off + length
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
