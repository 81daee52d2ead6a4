package bigqueue

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenRemovesOnlyItsTemps: a crash can leave the temporary file of a
// meta file being written; open removes those, and nothing else that ends
// in .tmp (a user's file, a directory).
func TestOpenRemovesOnlyItsTemps(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	_, err := q.NewConsumer("c")
	require.NoError(t, err)
	require.NoError(t, q.Close())

	ours := []string{indexName + tmpSuffix, defaultConsumerFile + tmpSuffix, consumerFileName("c") + tmpSuffix}
	for _, name := range ours {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("half written"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.tmp"), []byte("mine"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "work.tmp", "inside"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, indexName+tmpSuffix+"d"), 0o755))

	q = smallQueue(t, dir)
	require.Equal(t, []string{"c"}, q.Consumers())
	for _, name := range ours {
		require.NoFileExists(t, filepath.Join(dir, name))
	}
	require.FileExists(t, filepath.Join(dir, "notes.tmp"))
	require.DirExists(t, filepath.Join(dir, "work.tmp", "inside"))
}

// TestMetaVersionBeforeChecksum: a meta file of a later format version
// reads as incompatible, not as corrupt, whatever its checksum says.
func TestMetaVersionBeforeChecksum(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	require.NoError(t, q.Close())
	path := filepath.Join(dir, indexName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	binary.LittleEndian.PutUint32(b[metaVersionOffset:], formatVersion+1) // the header CRC no longer holds
	require.NoError(t, os.WriteFile(path, b, 0o644))

	_, err = NewMmapQueue(dir, SetArenaSize(testArenaSize))
	require.ErrorIs(t, err, ErrIncompatibleVersion)
	require.NotErrorIs(t, err, ErrCorrupt)
}

// TestRefusedOptionLeavesDirectory: a refused option (an arena size above
// 1 TiB, math.MaxInt64 included, "file too large" as with the reference)
// creates nothing, and the directory then
// opens as a new queue.
func TestRefusedOptionLeavesDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{1<<40 + 1, 1 << 41, math.MaxInt64} {
		_, err := NewMmapQueue(dir, SetArenaSize(size))
		require.ErrorIs(t, err, ErrTooLargeArenaSize, "size %d", size)
		// The reference's error for it, which its users look for.
		require.ErrorIs(t, err, syscall.EFBIG, "size %d", size)
		require.Contains(t, err.Error(), "file too large")
	}
	_, err := NewMmapQueue(dir, SetArenaSize(testArenaSize), SetRetention(-5))
	require.ErrorIs(t, err, ErrInvalidRetention)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "a refused option wrote files")
	q := smallQueue(t, dir)
	require.NoError(t, q.EnqueueString("usable"))
}

// TestRenamedDirectory: every file of an open queue is reached through the
// directory it was opened in. Renamed while open, with a new directory made
// at the old path, the queue goes on in its own directory (new consumer,
// enqueues across arenas, a flush, Stats) and leaves the other untouched.
func TestRenamedDirectory(t *testing.T) {
	parent := t.TempDir()
	old, moved := filepath.Join(parent, "q"), filepath.Join(parent, "q-moved")
	require.NoError(t, os.Mkdir(old, 0o755))
	q := smallQueue(t, old)
	require.NoError(t, q.EnqueueString("before"))
	require.NoError(t, os.Rename(old, moved))
	require.NoError(t, os.Mkdir(old, 0o755))

	_, err := q.NewConsumer("late")
	require.NoError(t, err)
	for i := range uint64(40) {
		require.NoError(t, q.Enqueue(seqMessage(i, 300)))
	}
	_, err = q.Stats()
	require.NoError(t, err)
	require.NoError(t, q.Flush())
	require.NoError(t, q.DeleteConsumer("late"))
	_, err = q.NewConsumer("kept")
	require.NoError(t, err)
	require.NoError(t, q.Close())

	entries, err := os.ReadDir(old)
	require.NoError(t, err)
	require.Empty(t, entries, "the queue wrote into the directory now at its old path")
	r := smallQueue(t, moved)
	require.Equal(t, []string{"kept"}, r.Consumers())
	msg, err := r.DequeueString()
	require.NoError(t, err)
	require.Equal(t, "before", msg)
	require.Equal(t, 40, r.Len())
}
