package bigqueue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The full-disk tests check "Full disk" (SPEC section 3): arenas are
// allocated before they are written, so a full file system makes Enqueue
// return an error wrapping ENOSPC, never a SIGBUS, and leaves the queue as
// it was.

const (
	fullDiskArenaSize = 64 << 10
	fullDiskMaxLen    = 100_000 // some messages span arenas
)

// fullDiskResult is what the full-disk child reports.
type fullDiskResult struct {
	Enqueued   int    // messages enqueued before the first error
	EnqueueErr string // that error
	ENOSPC     bool   // it wraps ENOSPC
	Arenas     int    // arena files when the disk was full
}

// TestFullDiskTmpfs fills a 1 MiB tmpfs with a queue of 64 KiB arenas, in a
// child process so that a SIGBUS fails the test instead of killing it (see
// fullDiskChild for what the child checks). It needs root to mount the
// tmpfs and is skipped, saying so, without.
func TestFullDiskTmpfs(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	if err := mountTmpfs(mnt, "size=1m"); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("cannot mount a 1 MiB tmpfs to fill (it needs root on Linux; uid is %d): %v", os.Geteuid(), err)
		}
		t.Fatalf("mount tmpfs on %s: %v", mnt, err)
	}
	t.Cleanup(func() {
		if err := unmountTmpfs(mnt); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})

	out, err := childCommand(t, "fulldisk", mnt, nil).CombinedOutput()
	requireChildOK(t, err, out)
	var res fullDiskResult
	require.NoError(t, childResult(out, &res), "%s", out)
	t.Logf("full after %d messages in %d arenas: %s", res.Enqueued, res.Arenas, res.EnqueueErr)
	require.True(t, res.ENOSPC, "the error does not wrap ENOSPC: %s", res.EnqueueErr)
	require.Greater(t, res.Enqueued, 10)
	require.GreaterOrEqual(t, res.Arenas, 10, "1 MiB holds more 64 KiB arenas")
}

// fullDiskChild runs in the child of TestFullDiskTmpfs, on the tmpfs dir:
// enqueue until an error, which must wrap ENOSPC and change nothing (a
// batch fails whole too, and no arena file is left half made); close and
// reopen on the full disk; read every message back intact and in order;
// once read, a Flush gives the arenas back and enqueues work again, also
// after another reopen.
func fullDiskChild(t *testing.T, dir string) {
	opts := []Option{SetArenaSize(fullDiskArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	q, err := NewMmapQueue(dir, opts...)
	require.NoError(t, err)
	var res fullDiskResult
	var enqErr error
	for n := range 10_000 {
		if enqErr = q.Enqueue(contractPayload(uint64(n), fullDiskMaxLen)); enqErr != nil {
			res.Enqueued = n
			break
		}
	}
	require.Error(t, enqErr, "10,000 messages fit in 1 MiB?")
	res.EnqueueErr, res.ENOSPC = enqErr.Error(), errors.Is(enqErr, syscall.ENOSPC)
	require.ErrorIs(t, enqErr, syscall.ENOSPC)
	require.Equal(t, res.Enqueued, q.Len(), "a failed enqueue changed the length")
	res.Arenas = len(arenaFileIDs(t, dir))
	ids := arenaFileIDs(t, dir)
	require.Equal(t, int64(len(ids)-1), ids[len(ids)-1]-ids[0], "arena ids not contiguous: %v", ids)

	// A batch that needs a new arena fails whole.
	batch := [][]byte{[]byte("b0"), make([]byte, 2*fullDiskArenaSize), []byte("b2")}
	require.ErrorIs(t, q.EnqueueBatch(batch), syscall.ENOSPC)
	require.Equal(t, res.Enqueued, q.Len(), "a failed batch changed the length")
	require.Equal(t, ids, arenaFileIDs(t, dir), "a failed allocation left an arena file")

	// Close and reopen on the full disk.
	require.NoError(t, q.Close())
	q, err = NewMmapQueue(dir, opts...)
	require.NoError(t, err, "reopen on a full disk")
	require.Equal(t, res.Enqueued, q.Len())
	require.NoError(t, q.Check())
	for n := range res.Enqueued {
		msg, err := q.Dequeue()
		require.NoError(t, err, "message %d", n)
		key, err := checkContractPayload(msg, fullDiskMaxLen)
		require.NoError(t, err)
		require.Equal(t, uint64(n), key)
	}
	_, err = q.Dequeue()
	require.ErrorIs(t, err, ErrEmptyQueue)

	// Everything is read: the flush deletes the arenas (keeping up to
	// maxSpares for reuse), space is back.
	require.NoError(t, q.Flush())
	require.LessOrEqual(t, len(arenaFileIDs(t, dir)), 1+maxSpares)
	for i := range 3 {
		require.NoError(t, q.Enqueue(make([]byte, fullDiskArenaSize+i)), "enqueue after space was given back")
	}
	require.NoError(t, q.Close())
	q, err = NewMmapQueue(dir, opts...)
	require.NoError(t, err)
	require.Equal(t, 3, q.Len())
	for i := range 3 {
		msg, err := q.Dequeue()
		require.NoError(t, err)
		require.Len(t, msg, fullDiskArenaSize+i)
	}
	require.NoError(t, q.Close())
	printChildResult(t, res)
}

// TestFullDiskInjected makes the allocation of arenas fail with ENOSPC
// through the allocateFile hook: Enqueue and EnqueueBatch return the error
// when they need a new arena and change nothing (no partial record is ever
// read, not even after a kill -9 and recovery), no arena file is left
// behind, a message that fits in the current arena still goes in, and once
// allocation works again so does Enqueue.
func TestFullDiskInjected(t *testing.T) {
	var full atomic.Bool
	var attempts atomic.Int64
	orig := allocateFile
	allocateFile = func(fd int, off, length int64) error {
		if full.Load() {
			attempts.Add(1)
			return fmt.Errorf("injected: %w", syscall.ENOSPC)
		}
		return orig(fd, off, length)
	}
	t.Cleanup(func() { allocateFile = orig })

	dir := t.TempDir()
	opts := []Option{SetArenaSize(4096), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	q, err := NewMmapQueue(dir, opts...)
	require.NoError(t, err)
	defer func() { _ = q.Close() }()

	// The very first arena cannot be made.
	full.Store(true)
	require.ErrorIs(t, q.Enqueue([]byte("first")), syscall.ENOSPC)
	require.Empty(t, arenaFileIDs(t, dir), "the failed first arena is left on disk")
	require.Equal(t, 0, q.Len())
	full.Store(false)

	small := func(i int) []byte { return []byte(fmt.Sprintf("small message %03d", i)) }
	var want [][]byte
	for i := range 10 {
		require.NoError(t, q.Enqueue(small(i)))
		want = append(want, small(i))
	}

	full.Store(true)
	big := contractPayload(7, 1) // the key alone
	big = append(big, make([]byte, 6000)...)
	require.ErrorIs(t, q.Enqueue(big), syscall.ENOSPC)
	require.ErrorIs(t, q.EnqueueBatch([][]byte{small(100), small(101), big}), syscall.ENOSPC)
	require.Equal(t, len(want), q.Len(), "a failed enqueue changed the length")
	require.Greater(t, attempts.Load(), int64(1))
	require.Equal(t, []int64{0}, arenaFileIDs(t, dir), "a failed allocation left an arena file")
	// A message that fits in the current arena needs no allocation.
	require.NoError(t, q.Enqueue(small(10)))
	want = append(want, small(10))

	// A kill -9 now (the files as the page cache holds them) recovers no
	// part of the failed records.
	crashed := t.TempDir()
	writeQueueDir(t, crashed, readQueueDir(t, dir))
	full.Store(false)
	q2, err := NewMmapQueue(crashed, opts...)
	require.NoError(t, err)
	require.NoError(t, q2.Check())
	for i, w := range want {
		msg, err := q2.Dequeue()
		require.NoError(t, err, "message %d after recovery", i)
		require.Equal(t, w, msg)
	}
	_, err = q2.Dequeue()
	require.ErrorIs(t, err, ErrEmptyQueue, "recovery found a record of a failed enqueue")
	require.NoError(t, q2.Close())

	// Space is back: the same enqueues work.
	require.NoError(t, q.Enqueue(big))
	require.NoError(t, q.EnqueueBatch([][]byte{small(100), small(101), big}))
	want = append(want, big, small(100), small(101), big)
	for i, w := range want {
		msg, err := q.Dequeue()
		require.NoError(t, err, "message %d", i)
		require.Equal(t, w, msg, "message %d", i)
	}
	_, err = q.Dequeue()
	require.ErrorIs(t, err, ErrEmptyQueue)
	require.NoError(t, q.Check())
}

// TestDiskFollowsData: with the default 128 MiB arenas, a queue of a few
// small messages allocates a chunk, not an arena (the spec allows 4 MiB of
// disk: it takes one chunk and the meta files), and the allocation grows a
// chunk at a time as messages come.
func TestDiskFollowsData(t *testing.T) {
	if allocChunk >= DefaultArenaSize {
		t.Skip("this platform allocates whole arenas (F_PREALLOCATE takes no range)")
	}
	q := openQueue(t, t.TempDir(), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	for i := range uint64(100) {
		require.NoError(t, q.Enqueue(seqMessage(i, 128)))
	}
	require.NoError(t, q.Flush())
	st, err := q.Stats()
	require.NoError(t, err)
	chunk := int64(allocChunk) // a variable: on macOS the constant is MaxInt
	require.LessOrEqual(t, st.DiskBytes, int64(firstStride)+4*metaSize, "a few messages take %d bytes of disk", st.DiskBytes)
	for q.tail.pos < 5*chunk+chunk/2 {
		require.NoError(t, q.Enqueue(make([]byte, 64<<10)))
	}
	require.NoError(t, q.Flush())
	st, err = q.Stats()
	require.NoError(t, err)
	require.Less(t, st.DiskBytes, 8*chunk+metaSize*8, "5.5 MiB of messages take %d bytes", st.DiskBytes)
	require.Greater(t, st.DiskBytes, 5*chunk)
}

// TestFullDiskAtAChunk: the disk fills while the writer is inside an arena.
// The allocation ahead of the writer fails quietly; the writer goes on to
// the end of what is allocated, a chunk boundary, and the Enqueue that needs
// the next chunk returns the error and publishes nothing; the queue reads
// back what it holds, and once there is room again enqueues go on where
// they stopped.
func TestFullDiskAtAChunk(t *testing.T) {
	if allocChunk >= 4<<20 {
		t.Skip("this platform allocates whole arenas")
	}
	var full atomic.Bool
	orig := allocateFile
	allocateFile = func(fd int, off, length int64) error {
		if full.Load() {
			return fmt.Errorf("injected: %w", syscall.ENOSPC)
		}
		return orig(fd, off, length)
	}
	t.Cleanup(func() { allocateFile = orig })

	q := openQueue(t, t.TempDir(), SetArenaSize(4<<20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	seq := uint64(0)
	for q.tail.pos < int64(allocChunk)-2000 {
		require.NoError(t, q.Enqueue(seqMessage(seq, 1000)))
		seq++
	}
	full.Store(true)
	var err error
	for range 4 * allocChunk / 1000 {
		if err = q.Enqueue(seqMessage(seq, 1000)); err != nil {
			break
		}
		seq++
	}
	require.ErrorIs(t, err, syscall.ENOSPC)
	a := q.s.am.mapping(q.s.messageArena(q.tail.pos))
	require.NotNil(t, a)
	require.Zero(t, a.allocated%allocChunk, "allocated up to a chunk boundary")
	_, off := q.s.arenaOf(q.s.recordStart(q.tail.pos))
	require.Greater(t, off+headerSize+1000+headerSize, a.allocated, "failed only where the allocated blocks end")
	require.LessOrEqual(t, off+headerSize, a.allocated)
	require.Equal(t, int(seq), q.Len(), "the failed Enqueue published nothing")
	full.Store(false)
	require.NoError(t, q.Enqueue(seqMessage(seq, 1000)))
	seq++
	for i := range seq {
		msg, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, msg, i, 1000)
	}
	require.NoError(t, q.Check())
}
