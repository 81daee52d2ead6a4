package bigqueue

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// settled waits for the file being created ahead, as the writer would.
func settled(q *MmapQueue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.s.am.settle()
}

// TestCreateAhead checks that the writer's next arena file is created and
// allocated before the writer gets there, for arenas of createAheadMin and
// more without a disk cap, and not otherwise; and that the queue reads
// through the arenas as always.
func TestCreateAhead(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  []Option
		ahead bool
	}{
		{"64KiB", []Option{SetArenaSize(createAheadMin)}, true},
		{"4KiB", []Option{SetArenaSize(4096)}, false},
		{"64KiB-disk-cap", []Option{SetArenaSize(createAheadMin), SetMaxDiskUsage(1 << 30)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openQueue(t, dir, append(c.opts, SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))...)
			// Arena 0, filled but for the room of one more record: no
			// second file for a queue that fits in one arena.
			require.NoError(t, q.Enqueue(seqMessage(0, q.conf.arenaSize-3*headerSize)))
			settled(q)
			_, err := os.Stat(filepath.Join(dir, arenaName(1)))
			require.ErrorIs(t, err, os.ErrNotExist, "a file ahead of the first arena")
			// Into arena 1: arena 2 is created ahead.
			require.NoError(t, q.Enqueue(seqMessage(1, 100)))
			settled(q)
			fi, err := os.Stat(filepath.Join(dir, arenaName(2)))
			if !c.ahead {
				require.ErrorIs(t, err, os.ErrNotExist)
				return
			}
			require.NoError(t, err)
			require.Equal(t, int64(q.conf.arenaSize), fi.Size())
			require.GreaterOrEqual(t, fi.Sys().(*syscall.Stat_t).Blocks*512, int64(q.conf.arenaSize), "allocated")
			const n, size = 300, 1000 // about 5 arenas
			for i := uint64(2); i < n; i++ {
				require.NoError(t, q.Enqueue(seqMessage(i, size)))
			}
			for range 2 {
				_, err = q.Dequeue()
				require.NoError(t, err)
			}
			for i := uint64(2); i < n; i++ {
				m, err := q.Dequeue()
				require.NoError(t, err)
				requireSeqMessage(t, m, i, size)
			}
			require.NoError(t, q.Check())
		})
	}
}

// TestCreateAheadFullDisk fails every allocation after the first two arenas'
// (arena 0's twice: created at open, completed as the writer maps it):
// the file created ahead is removed again, the Enqueue that needs the next
// arena returns the error itself, and works once there is space.
func TestCreateAheadFullDisk(t *testing.T) {
	var calls atomic.Int64
	var full atomic.Bool
	orig := allocateFile
	allocateFile = func(fd int, off, length int64) error {
		if calls.Add(1) > 3 && full.Load() {
			return syscall.ENOSPC
		}
		return orig(fd, off, length)
	}
	t.Cleanup(func() { allocateFile = orig })
	full.Store(true)

	dir := t.TempDir()
	q := openQueue(t, dir, SetArenaSize(createAheadMin), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	// Arena 0 (created at open, then completed as the writer maps it),
	// arena 1 (the one after the first is never created ahead), then
	// arena 2 ahead, which fails.
	first := seqMessage(0, createAheadMin)
	require.NoError(t, q.Enqueue(first))
	settled(q)
	require.Equal(t, int64(4), calls.Load(), "arena 0 twice and 1, then arena 2 ahead")
	require.Equal(t, []int64{0, 1}, arenaFileIDs(t, dir), "a failed creation ahead left a file")
	big := seqMessage(1, createAheadMin)
	require.ErrorIs(t, q.Enqueue(big), syscall.ENOSPC)
	require.Equal(t, []int64{0, 1}, arenaFileIDs(t, dir))
	require.Equal(t, 1, q.Len())

	full.Store(false)
	require.NoError(t, q.Enqueue(big))
	m, err := q.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, m, 0, createAheadMin)
	m, err = q.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, m, 1, createAheadMin)
}

// TestCreateAheadLeftover reopens a queue whose file created ahead was cut
// short, as a kill -9 between its creation and its allocation leaves it:
// the queue opens, the writer takes the file when it gets there, and every
// message reads back.
func TestCreateAheadLeftover(t *testing.T) {
	dir := t.TempDir()
	opts := []Option{SetArenaSize(createAheadMin), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	q, err := NewMmapQueue(dir, opts...)
	require.NoError(t, err)
	const size = 1000
	n := uint64(0)
	for ; q.tail.pos < createAheadMin+100; n++ {
		require.NoError(t, q.Enqueue(seqMessage(n, size)))
	}
	require.NoError(t, q.Close())
	require.Equal(t, []int64{0, 1, 2}, arenaFileIDs(t, dir), "arena 2 created ahead")
	require.NoError(t, os.Truncate(filepath.Join(dir, arenaName(2)), 0))

	q, err = NewMmapQueue(dir, opts...)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	require.Equal(t, int(n), q.Len())
	for end := n + 3*createAheadMin/size; n < end; n++ {
		require.NoError(t, q.Enqueue(seqMessage(n, size)))
	}
	for i := range n {
		m, err := q.Dequeue()
		require.NoError(t, err, "message %d", i)
		requireSeqMessage(t, m, i, size)
	}
	require.NoError(t, q.Check())
}

// TestOpenCreatesTailArena: opening a queue whose tail arena has no file
// yet creates it on another goroutine, so that the first Enqueue does not;
// not under a disk cap, nor for arenas too small to be worth it; and the
// queue then works as usual, across a reopen.
func TestOpenCreatesTailArena(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		want []int64
	}{
		{"new queue", []Option{SetArenaSize(createAheadMin)}, []int64{0}},
		{"disk cap", []Option{SetArenaSize(createAheadMin), SetMaxDiskUsage(8 * createAheadMin)}, nil},
		{"small arenas", []Option{SetArenaSize(createAheadMin / 2)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := append([]Option{SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}, c.opts...)
			q := openQueue(t, dir, opts...)
			settled(q)
			require.Equal(t, c.want, arenaFileIDs(t, dir))
			require.NoError(t, q.Enqueue(seqMessage(0, 100)))
			require.NoError(t, q.Close())

			q = openQueue(t, dir, opts...)
			settled(q)
			require.Equal(t, []int64{0}, arenaFileIDs(t, dir), "the tail's arena exists: nothing more")
			m, err := q.Dequeue()
			require.NoError(t, err)
			requireSeqMessage(t, m, 0, 100)
		})
	}
}
