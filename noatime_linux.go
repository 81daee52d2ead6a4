package bigqueue

import "golang.org/x/sys/unix"

// noAtime is added to the flags of a window's open: reading an arena need
// not update its access time, which relatime does on the first read after a
// write, dirtying the inode (6.7% of a capped Dequeue of 128 B messages
// from 4 KiB arenas, by perf). The kernel refuses it (EPERM) on a file the
// process does not own; the window then opens without it.
const noAtime = unix.O_NOATIME
