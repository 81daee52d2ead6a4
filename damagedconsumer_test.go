package bigqueue

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A named consumer's damaged file costs that consumer, not the queue (see
// isDamage): TestDamageMatrix damages the file of a queue closed with it;
// these tests cover the other ways to meet one.

// zeroConsumerFile overwrites the file of consumer name in dir with zeros.
func zeroConsumerFile(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, consumerFileName(name))
	require.NoError(t, os.WriteFile(path, make([]byte, metaSize), 0o644))
	return path
}

// drainedAcrossArenas returns a writer whose default consumer has read
// all of n messages of 1 KiB, spread over several 4 KiB arenas, none yet
// retired (no flush since).
func drainedAcrossArenas(t *testing.T, n int) *MmapQueue {
	t.Helper()
	w := drainedWriter(t, n, 1024)
	st, err := w.Stats()
	require.NoError(t, err)
	require.Equal(t, int64(0), st.Head)
	require.Greater(t, st.Arenas, 3)
	return w
}

// TestDamagedConsumerAppearsWhileOpen: a damaged consumer file that
// appears beside a writer (a reader's, damaged) stops reclaiming from the
// writer's next flush on; once it is gone, the next flush retires what
// every other consumer has read.
func TestDamagedConsumerAppearsWhileOpen(t *testing.T) {
	w := drainedAcrossArenas(t, 40)
	zeroConsumerFile(t, w.dir, "late")

	require.NoError(t, w.Flush())
	st, err := w.Stats()
	require.NoError(t, err)
	require.Equal(t, []string{consumerFileName("late")}, st.DamagedConsumers)
	require.Equal(t, int64(0), st.Head, "a flush retired arenas while a consumer file was damaged")
	require.ErrorIs(t, w.Check(), ErrCorrupt)

	require.NoError(t, os.Remove(filepath.Join(w.dir, consumerFileName("late"))))
	require.NoError(t, w.Flush())
	st, err = w.Stats()
	require.NoError(t, err)
	require.Empty(t, st.DamagedConsumers)
	require.Equal(t, st.Tail, st.Head, "the damaged file is gone: everything read is retired")
	require.NoError(t, w.Check())
}

// TestDamagedConsumerWrongName: a consumer file that holds another
// consumer's name (copied over it) is damaged: that name answers
// ErrCorrupt, the other keeps its own file, and DeleteConsumer removes
// only the wrong one.
func TestDamagedConsumerWrongName(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	for i := range uint64(10) {
		require.NoError(t, q.Enqueue(seqMessage(i, 100)))
	}
	b, err := q.NewConsumer("b")
	require.NoError(t, err)
	_, err = b.Dequeue()
	require.NoError(t, err)
	require.NoError(t, q.Close())
	data, err := os.ReadFile(filepath.Join(dir, consumerFileName("b")))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, consumerFileName("a")), data, 0o644))

	q = smallQueue(t, dir)
	require.Equal(t, []string{"b"}, q.Consumers())
	_, err = q.NewConsumer("a")
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, `holds name "b"`)
	b, err = q.NewConsumer("b")
	require.NoError(t, err)
	require.Equal(t, uint64(1), b.Committed())

	require.NoError(t, q.DeleteConsumer("a"))
	require.NoFileExists(t, filepath.Join(dir, consumerFileName("a")))
	require.FileExists(t, filepath.Join(dir, consumerFileName("b")))
	a, err := q.NewConsumer("a")
	require.NoError(t, err)
	require.Equal(t, 10, a.Len(), "a new consumer starts at the oldest message kept")
}

// TestDamagedConsumerInReader: a reader opens beside a damaged consumer
// file; its NewConsumer of that name answers ErrCorrupt and leaves the file
// as it is; its DeleteConsumer removes it, and the writer's next flush
// retires what the default consumer has read.
func TestDamagedConsumerInReader(t *testing.T) {
	w := drainedAcrossArenas(t, 40)
	path := zeroConsumerFile(t, w.dir, "r")
	require.NoError(t, w.Flush())

	r, err := OpenReader(w.dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, []string{consumerFileName("r")}, st.DamagedConsumers)
	_, err = r.NewConsumer("r")
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "deleting it starts it anew")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, make([]byte, metaSize), data, "NewConsumer wrote over the damaged file")

	require.NoError(t, r.DeleteConsumer("r"))
	require.NoFileExists(t, path)
	st, err = r.Stats()
	require.NoError(t, err)
	require.Empty(t, st.DamagedConsumers)

	require.NoError(t, w.Flush())
	st, err = w.Stats()
	require.NoError(t, err)
	require.Empty(t, st.DamagedConsumers)
	require.Equal(t, st.Tail, st.Head)
}

// TestDeleteDamagedConsumerHeld: a damaged consumer file that a process
// holds (it had the consumer before the damage, and reads its own
// mapping) is not removed: ErrLocked.
func TestDeleteDamagedConsumerHeld(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	path := zeroConsumerFile(t, dir, "held")
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	require.NoError(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))

	err = q.DeleteConsumer("held")
	require.ErrorIs(t, err, ErrLocked)
	require.FileExists(t, path)
	_, err = q.NewConsumer("held")
	require.ErrorIs(t, err, ErrCorrupt)
}

// TestDamagedConsumerIsADirectory: a directory under a named consumer's
// file name is damage too (it was EISDIR, and no open): the queue opens,
// the name answers ErrCorrupt, and DeleteConsumer leaves a directory to
// its owner.
func TestDamagedConsumerIsADirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, smallQueue(t, dir).Close())
	sub := filepath.Join(dir, consumerFileName("d"))
	require.NoError(t, os.Mkdir(sub, 0o755))
	q := smallQueue(t, dir)
	st, err := q.Stats()
	require.NoError(t, err)
	require.Equal(t, []string{consumerFileName("d")}, st.DamagedConsumers)
	_, err = q.NewConsumer("d")
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "is a directory")
	require.Error(t, q.DeleteConsumer("d"))
	require.DirExists(t, sub)

	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err, "a reader opens a directory read-only, then finds it is one")
	defer func() { require.NoError(t, r.Close()) }()
	_, err = r.NewConsumer("d")
	require.ErrorIs(t, err, ErrCorrupt)
}
