//go:build !linux

package bigqueue

// noAtime: O_NOATIME is Linux's; elsewhere a window opens arenas plainly.
const noAtime = 0
