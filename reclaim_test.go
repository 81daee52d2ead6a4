package bigqueue

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// dirBlocks returns the bytes allocated on disk by the files in dir.
func dirBlocks(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var total int64
	for _, e := range entries {
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(filepath.Join(dir, e.Name()), &st))
		total += st.Blocks * 512
	}
	return total
}

func arenaFiles(t *testing.T, dir string) int {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, arenaPrefix+"*"+arenaSuffix))
	require.NoError(t, err)
	return len(matches)
}

// TestReclaimFollowsSlowestConsumer measures the blocks of the directory
// while the default consumer and a lagging named consumer read.
func TestReclaimFollowsSlowestConsumer(t *testing.T) {
	const arenaSize = 64 << 10
	dir := t.TempDir()
	q := openQueue(t, dir, SetArenaSize(arenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	lag, err := q.NewConsumer("lag")
	require.NoError(t, err)
	const n, size = 2000, 1000 // ~2 MB: 31 arenas
	for i := range uint64(n) {
		require.NoError(t, q.Enqueue(seqMessage(i, size)))
	}
	require.NoError(t, q.Flush())
	full := dirBlocks(t, dir)
	require.GreaterOrEqual(t, full, int64(30*arenaSize))
	arenas := arenaFiles(t, dir)

	// The default consumer reads everything; the lagging one nothing: no
	// arena may go.
	for range n {
		_, err := q.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, q.Flush())
	require.Equal(t, arenas, arenaFiles(t, dir))

	// The lagging consumer reads half: about half the arenas go (up to
	// maxSpares of them are kept, renamed, for the writer to reuse).
	for i := range uint64(n / 2) {
		m, err := lag.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, i, size)
	}
	require.NoError(t, q.Flush())
	half := dirBlocks(t, dir)
	require.InDelta(t, arenas/2+maxSpares, arenaFiles(t, dir), 2)
	require.Less(t, half, full*7/10)

	// A consumer created now starts at the oldest message kept, which is
	// where the slowest consumer stood when arenas were deleted.
	late, err := q.NewConsumer("late")
	require.NoError(t, err)
	m, err := late.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, m, n/2, size)
	require.Equal(t, n/2-1, late.Len())

	// Across a reopen, the same.
	require.NoError(t, q.Close())
	q = openQueue(t, dir, SetArenaSize(arenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.InDelta(t, arenas/2+maxSpares, arenaFiles(t, dir), 2)
	lag, err = q.NewConsumer("lag")
	require.NoError(t, err)
	m, err = lag.Peek()
	require.NoError(t, err)
	requireSeqMessage(t, m, n/2, size)

	// Deleting the laggards leaves every message read: everything goes but
	// the arena being written, spares included.
	require.NoError(t, q.DeleteConsumer("late"))
	require.NoError(t, q.DeleteConsumer("lag"))
	require.LessOrEqual(t, arenaFiles(t, dir), 1)
	require.Less(t, dirBlocks(t, dir), int64(2)*arenaSize)
	require.Empty(t, q.Consumers())
	err = q.DeleteConsumer("lag")
	require.ErrorIs(t, err, ErrUnknownConsumer)
	require.True(t, q.IsEmpty())
	require.NoError(t, q.Enqueue([]byte("after")))
	got, err := q.Dequeue()
	require.NoError(t, err)
	require.Equal(t, "after", string(got))
}

// TestReclaimHalfReadArena checks that an arena is kept while any consumer
// still has a message in it, even a message that began in an earlier arena.
func TestReclaimHalfReadArena(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	// A message spanning arenas 0..2, then small ones.
	require.NoError(t, q.Enqueue(seqMessage(0, 2*testArenaSize+100)))
	for i := range uint64(10) {
		require.NoError(t, q.Enqueue(seqMessage(i+1, 100)))
	}
	// Read the big one and one small one: the consumer stands in arena 2.
	for range 2 {
		_, err := q.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, q.Flush())
	_, err := os.Stat(filepath.Join(dir, arenaName(0)))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(dir, arenaName(1)))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(dir, arenaName(2)))
	require.NoError(t, err, "the arena the consumer reads must stay")
	for i := uint64(2); i <= 10; i++ {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, i, 100)
	}
}

// TestReclaimOnDequeue checks when a Dequeue retires arenas by itself, with
// no flush at all: at once for arenas of eagerArenaSize, not before the next
// flush for smaller ones. Either way the arena the consumer reads stays.
func TestReclaimOnDequeue(t *testing.T) {
	for _, c := range []struct {
		arenaSize int
		eager     bool
	}{{eagerArenaSize, true}, {eagerArenaSize / 4, false}} {
		t.Run(fmt.Sprint(c.arenaSize), func(t *testing.T) {
			dir := t.TempDir()
			q, err := NewMmapQueue(dir, SetArenaSize(c.arenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
			require.NoError(t, err)
			defer func() { require.NoError(t, q.Close()) }()
			// 2.5 arenas of messages; read until the consumer stands in arena 2.
			size := c.arenaSize / 8
			n := 20
			for i := range n {
				require.NoError(t, q.Enqueue(seqMessage(uint64(i), size)))
			}
			i := 0
			for ; ; i++ {
				m, err := q.Dequeue()
				require.NoError(t, err)
				requireSeqMessage(t, m, uint64(i), size)
				if id, _ := q.s.arenaOf(q.def.committed.pos); id == 2 {
					break
				}
			}
			gone := func(id int64) bool {
				_, err := os.Stat(filepath.Join(dir, arenaName(id)))
				return errors.Is(err, os.ErrNotExist)
			}
			// An arena that is not kept as a spare is unlinked on another
			// goroutine (Flush waits for it; so does this test).
			q.s.am.reaping.Wait()
			require.Equal(t, c.eager, gone(0), "arena 0 retired by Dequeue alone")
			require.Equal(t, c.eager, gone(1), "arena 1 retired by Dequeue alone")
			require.NoError(t, q.Flush())
			require.True(t, gone(0) && gone(1), "a flush retires what was read past")
			require.False(t, gone(2), "the arena the consumer reads must stay")
			for i++; i < n; i++ {
				m, err := q.Dequeue()
				require.NoError(t, err)
				requireSeqMessage(t, m, uint64(i), size)
			}
		})
	}
}

// TestMaxDiskUsage fills a capped queue to ErrQueueFull, checks that the
// failed Enqueue changed nothing, and that enqueues succeed again once the
// consumer has read past whole arenas.
func TestMaxDiskUsage(t *testing.T) {
	const arenaSize = 16 << 10
	const limit = 8*arenaSize + 4*metaSize // 8 arenas and the meta files
	dir := t.TempDir()
	q := openQueue(t, dir, SetArenaSize(arenaSize), SetMaxDiskUsage(limit),
		SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	_, err := q.NewConsumer("c")
	require.NoError(t, err)
	var n uint64
	for ; ; n++ {
		err := q.Enqueue(seqMessage(n, 1000))
		if errors.Is(err, ErrQueueFull) {
			break
		}
		require.NoError(t, err)
	}
	require.Greater(t, n, uint64(100))
	require.Equal(t, int(n), q.Len())
	require.LessOrEqual(t, arenaFiles(t, dir), 8)
	require.LessOrEqual(t, dirBlocks(t, dir), int64(limit))
	// A message larger than what is left is refused too, and nothing moved.
	tail := q.tail
	require.ErrorIs(t, q.Enqueue(make([]byte, 3*arenaSize)), ErrQueueFull)
	require.ErrorIs(t, q.EnqueueBatch([][]byte{{1}, make([]byte, arenaSize)}), ErrQueueFull)
	require.Equal(t, tail, q.tail)
	// A message bigger than the whole cap can never fit.
	require.ErrorIs(t, q.Enqueue(make([]byte, limit)), ErrQueueFull)

	// Only the default consumer reads: the named one pins every arena.
	for i := range n / 2 {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, i, 1000)
	}
	require.ErrorIs(t, q.Enqueue(seqMessage(n, 1000)), ErrQueueFull)
	// Once the named consumer reads too, the full queue reclaims on its
	// own, without a Flush from the caller.
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	for range n / 2 {
		_, err := c.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, q.Enqueue(seqMessage(n, 1000)))
	for i := n / 2; i <= n; i++ {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, i, 1000)
	}
	require.LessOrEqual(t, dirBlocks(t, dir), int64(limit))
}

// TestDrainedFlushDropsSpares: while consumers lag, retired arenas are
// kept as spares (and the next arena file created ahead); a flush that
// finds every message read deletes them, so that the disk holds the tail's
// arena only, whatever the queue held before; the writer then goes on
// into new files.
func TestDrainedFlushDropsSpares(t *testing.T) {
	const arenaSize = 64 << 10
	dir := t.TempDir()
	q := openQueue(t, dir, SetArenaSize(arenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	const n, size = 2000, 1000 // ~2 MB: 31 arenas
	for i := range uint64(n) {
		require.NoError(t, q.Enqueue(seqMessage(i, size)))
	}
	for range n - 1 {
		_, err := q.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, q.Flush())
	files := arenaFiles(t, dir)
	require.GreaterOrEqual(t, files, 1+maxSpares, "one message left: its arenas and the spares")
	require.LessOrEqual(t, files, 2+maxSpares, "one message left: its arenas and the spares")

	_, err := q.Dequeue()
	require.NoError(t, err)
	require.NoError(t, q.Flush())
	require.Equal(t, 1, arenaFiles(t, dir), "every message read: the tail's arena only")
	require.Less(t, dirBlocks(t, dir), int64(2*arenaSize))

	for i := range uint64(n) {
		require.NoError(t, q.Enqueue(seqMessage(n+i, size)))
	}
	for i := range uint64(n) {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, n+i, size)
	}
	require.NoError(t, q.Close())
	require.Equal(t, 1, arenaFiles(t, dir), "Close flushes: the tail's arena only")
}

// TestRenamedSpareIsMadeDurable: a retired arena kept as a spare is renamed
// past the tail; the next Flush, the one that makes messages written into
// it durable, syncs the directory first, so that after a power loss the
// file is found under its new name. A Flush with no new name syncs nothing.
func TestRenamedSpareIsMadeDurable(t *testing.T) {
	var syncs int
	syncDirFunc = func(d qdir) error { syncs++; return d.sync() }
	defer func() { syncDirFunc = qdir.sync }()

	dir := t.TempDir()
	q := smallQueue(t, dir)
	seq := uint64(0)
	for q.tail.pos < 3*testArenaSize {
		require.NoError(t, q.Enqueue(seqMessage(seq, 300)))
		seq++
	}
	for range seq - 1 { // one left to read: a drained queue keeps no spares
		_, err := q.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, q.Flush()) // retires arenas 0 and 1: renamed as spares
	spares := q.s.am.spares(3)
	require.Positive(t, spares, "a retired arena is kept as a spare")
	require.True(t, q.s.am.dirDirty, "a rename leaves the directory to sync")

	syncs = 0
	for q.tail.pos < 5*testArenaSize { // into the spares
		require.NoError(t, q.Enqueue(seqMessage(seq, 300)))
		seq++
	}
	require.NoError(t, q.Flush())
	require.Positive(t, syncs, "the flush of messages in a renamed spare synced the directory")
	syncs = 0
	require.NoError(t, q.Flush())
	require.Zero(t, syncs, "nothing renamed or created since")
}

// TestRetiredArenasHoldNoDescriptor: consumers reading under a memory cap
// read through windows, each holding a descriptor on the arena it reads;
// once the arenas are retired and deleted, no descriptor of the process
// still points at one, so their blocks are free at once.
func TestRetiredArenasHoldNoDescriptor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/fd")
	}
	dir := t.TempDir()
	q := smallQueue(t, dir, SetMaxInMemArenas(3))
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	seq := uint64(0)
	for q.tail.pos < 12*testArenaSize {
		require.NoError(t, q.Enqueue(seqMessage(seq, 300)))
		seq++
	}
	require.NoError(t, q.Check())
	for range seq - 3 {
		_, err := q.Dequeue()
		require.NoError(t, err)
		_, err = c.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, q.Flush())
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue
		}
		if strings.HasPrefix(target, dir) {
			require.NotContains(t, target, "(deleted)", "descriptor %s", fd.Name())
		}
	}
}

// TestSmallestDiskCapNeverWedges: a cap below two arenas and the meta files
// is refused with the minimum in the error; at exactly the minimum,
// consumers that keep up (the default one, and named ones, whose files
// count too) never make a producer see ErrQueueFull, with SetDropOldest or
// without, through many arenas of messages of every size up to what fits
// in one arena; the queue's files take no more than the cap, but for the
// 4 KiB of each named consumer's file.
func TestSmallestDiskCapNeverWedges(t *testing.T) {
	for _, arenaSize := range []int{testArenaSize, 64 << 10} {
		for _, named := range []int{0, 1, 3} {
			for _, drop := range []bool{false, true} {
				t.Run(fmt.Sprintf("arena=%d/named=%d/drop=%v", arenaSize, named, drop), func(t *testing.T) {
					smallestDiskCap(t, arenaSize, named, drop)
				})
			}
		}
	}
}

func smallestDiskCap(t *testing.T, arenaSize, named int, drop bool) {
	min := minDiskUsage(arenaSize)
	for _, bad := range []int64{min - 1, int64(arenaSize) * 3 / 2, 1} {
		_, err := NewMmapQueue(t.TempDir(), SetArenaSize(arenaSize), SetMaxDiskUsage(bad))
		require.ErrorIs(t, err, ErrTooSmallMaxDiskUsage)
		require.Contains(t, err.Error(), fmt.Sprint(min))
	}
	opts := []Option{SetArenaSize(arenaSize), SetMaxDiskUsage(min), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	if drop {
		opts = append(opts, SetDropOldest())
	}
	q := openQueue(t, t.TempDir(), opts...)
	var consumers []*Consumer
	for i := range named {
		c, err := q.NewConsumer(fmt.Sprint("reader-", i))
		require.NoError(t, err)
		consumers = append(consumers, c)
	}
	rng := rand.New(rand.NewPCG(uint64(arenaSize), uint64(named)))
	for i := uint64(0); q.tail.pos < 40*int64(arenaSize); i++ {
		size := rng.IntN(arenaSize - headerSize + 1)
		if rng.IntN(4) == 0 {
			size = rng.IntN(200)
		}
		require.NoError(t, q.Enqueue(seqMessage(i, size)), "message %d of %d bytes at %d", i, size, q.tail.pos)
		msg, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, msg, i, size)
		for _, c := range consumers {
			msg, err := c.Dequeue()
			require.NoError(t, err)
			requireSeqMessage(t, msg, i, size)
		}
		if i%16 == 0 {
			st, err := q.Stats()
			require.NoError(t, err)
			require.LessOrEqual(t, st.DiskBytes, min+int64(named)*metaSize, "message %d", i)
		}
	}
}

// TestCapKeepsOffsetIndexSmall: under the smallest caps, with flushing off
// and a consumer that keeps up, offsets.dat grows by an entry per arena and
// counts against the cap; it used to reach three blocks before it was
// compacted (1,024 dead entries), and an Enqueue of a message that spans
// three arenas then got ErrQueueFull (first at message 4,499, with or
// without SetDropOldest). It is now compacted when the room is needed.
func TestCapKeepsOffsetIndexSmall(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprint("drop=", drop), func(t *testing.T) {
			opts := []Option{SetArenaSize(4096), SetMaxDiskUsage(5*4096 + 16384),
				SetPeriodicFlushDuration(0), SetPeriodicFlushOps(0)}
			if drop {
				opts = append(opts, SetDropOldest())
			}
			q := openQueue(t, t.TempDir(), opts...)
			for i := range uint64(6000) {
				size := 200
				if i%300 == 299 {
					size = 10000 // three arenas
				}
				require.NoError(t, q.Enqueue(seqMessage(i, size)), "message %d", i)
				m, err := q.Dequeue()
				require.NoError(t, err)
				requireSeqMessage(t, m, i, size)
			}
			st, err := q.Stats()
			require.NoError(t, err)
			require.LessOrEqual(t, st.DiskBytes, int64(5*4096+16384))
		})
	}
}

// TestDropOldest: under a cap with SetDropOldest, Enqueue never returns
// ErrQueueFull for a message that fits; the oldest arenas go, read or not;
// a consumer that fell behind resumes at the oldest message kept, and the
// jump shows in the offsets it reads; the disk stays under the cap.
func TestDropOldest(t *testing.T) {
	dir := t.TempDir()
	limit := minDiskUsage(testArenaSize) + testArenaSize
	q := smallQueue(t, dir, SetMaxDiskUsage(limit), SetDropOldest())
	slow, err := q.NewConsumer("slow")
	require.NoError(t, err)
	const n = 500
	for i := range uint64(n) {
		require.NoError(t, q.Enqueue(seqMessage(i, messageSize(i))), "message %d", i)
		if i%50 == 0 {
			st, err := q.Stats()
			require.NoError(t, err)
			require.LessOrEqual(t, int64(st.Arenas)*testArenaSize+3*metaSize, limit)
		}
	}
	_, err = q.NewConsumer("x")
	require.NoError(t, err)
	require.NoError(t, q.DeleteConsumer("x"))
	require.ErrorIs(t, q.Enqueue(make([]byte, 4*testArenaSize)), ErrQueueFull, "a message that can never fit")

	oldest, next := q.Offsets()
	require.Equal(t, uint64(n), next)
	require.Positive(t, oldest, "the oldest messages were dropped")
	m, err := slow.Read()
	require.NoError(t, err)
	require.Equal(t, oldest, m.Offset, "the slow consumer resumes at the oldest kept message")
	requireSeqMessage(t, m.Data, m.Offset, messageSize(m.Offset))
	// The default consumer, behind too, jumped as well.
	msg, err := q.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, msg, oldest, messageSize(oldest))
	require.NoError(t, q.Check())
}
