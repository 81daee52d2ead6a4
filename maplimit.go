package bigqueue

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Each mapped arena is one memory area of the process, and Linux allows a
// process vm.max_map_count of them (65530 by default). The Go runtime needs
// areas of its own for its heap and stacks, and when it cannot get one it
// stops the process ("fatal error: runtime: cannot allocate memory"), which
// no error return can prevent: mapping arenas until the kernel refuses, and
// only then unmapping one, leaves the runtime nothing. So the queues of a
// process keep at most mapLimit arenas mapped between them, seven eighths
// of vm.max_map_count (the rest, 8,191 areas by default, is left to the
// runtime and the program: a Go program uses a few hundred); past it, an
// arena manager unmaps its least recently used arena before it maps
// another, also without SetMaxInMemArenas, and consumers read arenas that
// are not mapped through their windows (window.go) instead of mapping them.
var (
	// mappedArenas counts the arenas mapped by every queue of the process.
	mappedArenas atomic.Int64
	// mapLimit returns the most arenas (and windows) the process keeps
	// mapped; a variable so that tests can lower it.
	mapLimit = sync.OnceValue(func() int64 { return readMapLimit("/proc/sys/vm/max_map_count") })
)

// defaultMapLimit is seven eighths of Linux's default vm.max_map_count, for
// systems where it cannot be read.
const defaultMapLimit = 65530 - 65530/8

// readMapLimit returns seven eighths of the count in the file at path, or
// defaultMapLimit when it cannot be read.
func readMapLimit(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return defaultMapLimit
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 2 {
		return defaultMapLimit
	}
	return n - n/8
}
