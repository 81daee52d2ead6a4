package bigqueue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// madeElsewhere makes consumer name in the queue in dir through a reader
// of its own, lets then use it, and closes that reader: a consumer this
// process's queues know from the directory only.
func madeElsewhere(t *testing.T, dir, name string, then func(c *Consumer)) {
	t.Helper()
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	c, err := r.NewConsumer(name)
	require.NoError(t, err)
	if then != nil {
		then(c)
	}
	require.NoError(t, r.Close())
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
	q := filledQueue(t, dir, 10, 100)
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

// TestConsumerNameTakenByNonFile: a directory, a FIFO or a symbolic link
// under a named consumer's file name is not a file of the queue's: the
// queue opens (a reader's open did not: it mapped the directory, ENODEV;
// a FIFO blocked it), reclaims as if it were not there, and leaves it
// alone; that name answers ErrCorrupt.
func TestConsumerNameTakenByNonFile(t *testing.T) {
	for _, kind := range []string{"dir", "fifo", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			w := drainedAcrossArenas(t, 40)
			_, err := w.NewConsumer("other")
			require.NoError(t, err)
			path := filepath.Join(w.dir, consumerFileName("d"))
			switch kind {
			case "dir":
				require.NoError(t, os.Mkdir(path, 0o755))
			case "fifo":
				require.NoError(t, unix.Mkfifo(path, 0o644))
			case "symlink": // to a consumer's file: not followed
				require.NoError(t, os.Symlink(consumerFileName("other"), path))
			}
			r, err := OpenReader(w.dir, SetArenaSize(testArenaSize))
			require.NoError(t, err)
			defer func() { require.NoError(t, r.Close()) }()
			for _, q := range []*MmapQueue{w, r} {
				_, err = q.NewConsumer("d")
				require.ErrorIs(t, err, ErrCorrupt)
				require.ErrorContains(t, err, "not a regular file")
				require.Error(t, q.DeleteConsumer("d"))
				st, err := q.Stats()
				require.NoError(t, err)
				require.Empty(t, st.DamagedConsumers)
			}
			lst, err := os.Lstat(path)
			require.NoError(t, err, "left to its owner")
			require.NotZero(t, lst.Mode()&(os.ModeDir|os.ModeNamedPipe|os.ModeSymlink))
			require.NoError(t, w.DeleteConsumer("other"))
			st, err := w.Stats()
			require.NoError(t, err)
			require.Equal(t, st.Tail, st.Head, "reclaimed as if it were not there")
		})
	}
}

// TestStrayConsumerLikeFile: a user's file whose name only looks like a
// consumer's (consumer-old.dat, a copy of one) is not the queue's: it
// neither stops reclaiming nor counts as a consumer, and stays.
func TestStrayConsumerLikeFile(t *testing.T) {
	w := drainedAcrossArenas(t, 40)
	_, err := w.NewConsumer("b")
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(w.dir, consumerFileName("b")))
	require.NoError(t, err)
	stray := []string{"consumer-old.dat", consumerFileName("b")[:40] + "-copy.dat", "consumer-" + strings.Repeat("A", 32) + ".dat"}
	for _, name := range stray {
		require.NoError(t, os.WriteFile(filepath.Join(w.dir, name), data, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(w.dir, name+".tmp"), data, 0o644))
	}
	require.NoError(t, w.DeleteConsumer("b"))
	st, err := w.Stats()
	require.NoError(t, err)
	require.Empty(t, st.DamagedConsumers)
	require.Empty(t, w.Consumers())
	require.Equal(t, st.Tail, st.Head)
	require.NoError(t, w.Close())
	w = smallQueue(t, w.dir) // and at open, which removes the queue's own temporary files
	require.Empty(t, w.Consumers())
	for _, name := range stray {
		require.FileExists(t, filepath.Join(w.dir, name))
		require.FileExists(t, filepath.Join(w.dir, name+".tmp"))
	}
}

// TestDamagedInPlaceWhileOpen: the file of a consumer that the writer
// knows but does not hold (a reader's, closed) is cut short or zeroed where
// it is: the writer's next flush sets it aside instead of reading its
// mapping (cut short: a SIGBUS) or keeping the position it last read
// (zeroed: reclaiming went on as if nothing were wrong).
func TestDamagedInPlaceWhileOpen(t *testing.T) {
	for _, how := range []string{"truncate", "zero"} {
		t.Run(how, func(t *testing.T) {
			w := drainedWriter(t, 40, 1024)
			madeElsewhere(t, w.dir, "a", nil)
			require.NoError(t, w.Flush())
			require.Equal(t, []string{"a"}, w.Consumers())
			path := filepath.Join(w.dir, consumerFileName("a"))
			if how == "truncate" {
				require.NoError(t, os.Truncate(path, 0))
			} else {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				require.NoError(t, err)
				_, err = f.WriteAt(make([]byte, metaSize), 0)
				require.NoError(t, errors.Join(err, f.Close()))
			}

			require.NoError(t, w.Flush())
			st, err := w.Stats()
			require.NoError(t, err)
			require.Equal(t, []string{consumerFileName("a")}, st.DamagedConsumers)
			require.Equal(t, int64(0), st.Head)
			require.Empty(t, w.Consumers())
			require.ErrorIs(t, w.Check(), ErrCorrupt)
			require.NoError(t, w.DeleteConsumer("a"))
			st, err = w.Stats()
			require.NoError(t, err)
			require.Equal(t, st.Tail, st.Head)
		})
	}
}

// TestConsumerFilePastTheTail: a consumer file whose position lies past
// the queue's tail (copied from another queue, here with its name) is
// taken at the tail, in a reader as the writer's open does (clampConsumers):
// its Len was -700, and Check named its position.
func TestConsumerFilePastTheTail(t *testing.T) {
	other := filledQueue(t, t.TempDir(), 1000, 20)
	c, err := other.NewConsumer("a")
	require.NoError(t, err)
	for range 900 {
		_, err := c.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, other.Close())
	data, err := os.ReadFile(filepath.Join(other.dir, consumerFileName("a")))
	require.NoError(t, err)

	w := filledQueue(t, t.TempDir(), 200, 20)
	require.NoError(t, os.WriteFile(filepath.Join(w.dir, consumerFileName("a")), data, 0o644))
	require.NoError(t, w.Flush()) // the writer learns of it
	wst, err := w.Stats()
	require.NoError(t, err)
	require.Equal(t, "a", wst.Consumers[1].Name)
	require.Equal(t, 0, wst.Consumers[1].Backlog)
	r, err := OpenReader(w.dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, 0, st.Consumers[1].Backlog)
	require.NoError(t, r.Check())
	ra, err := r.NewConsumer("a")
	require.NoError(t, err)
	require.Equal(t, 0, ra.Len())
	require.Equal(t, uint64(200), ra.Committed())
	require.NoError(t, w.Enqueue(seqMessage(200, 20)))
	msg, err := ra.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, msg, 200, 20)
}

// TestReaderLearnsOthersConsumers: a reader's Stats and Check read the
// directory again, as the writer's reclaim does: a consumer another process
// cut short is set aside (reading its mapping was a SIGBUS in the reader's
// Stats), one removed is gone from its view (its damage was reported
// forever), one made since it opened is listed (it was not).
func TestReaderLearnsOthersConsumers(t *testing.T) {
	w := drainedWriter(t, 40, 1024)
	madeElsewhere(t, w.dir, "x", nil)

	r, err := OpenReader(w.dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	require.Equal(t, []string{"x"}, r.Consumers())
	path := filepath.Join(w.dir, consumerFileName("x"))
	require.NoError(t, os.Truncate(path, 0))

	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, []string{consumerFileName("x")}, st.DamagedConsumers)
	require.Empty(t, r.Consumers())
	require.ErrorIs(t, r.Check(), ErrCorrupt)

	require.NoError(t, os.Remove(path))
	madeElsewhere(t, w.dir, "y", nil)
	st, err = r.Stats()
	require.NoError(t, err)
	require.Empty(t, st.DamagedConsumers)
	require.Equal(t, []string{"y"}, r.Consumers())
	require.Len(t, st.Consumers, 2)
	require.NoError(t, r.Check())
}

// TestStatsLooksAtLocksUnderReclaimLock: Stats and Check, in a reader and
// in the writer, try the lock of a consumer whose file holds a pin (its
// last holder Seeked back and closed) only under the reclaim lock, as the
// writer's reclaim does: a process taking hold of that consumer meanwhile
// (NewConsumer, DeleteConsumer: under the reclaim lock) got a false
// ErrLocked (a helper saw 10 to 16 in 1,000 tries beside a reader calling
// Stats in a loop).
func TestStatsLooksAtLocksUnderReclaimLock(t *testing.T) {
	w := drainedWriter(t, 40, 1024)
	r, err := OpenReader(w.dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	madeElsewhere(t, w.dir, "x", func(c *Consumer) {
		_, err := c.Dequeue()
		require.NoError(t, err)
		require.NoError(t, c.Seek(c.Committed()-1)) // a pin, left by Close
	})

	looked := 0
	testHookHeldElsewhere = func() {
		looked++
		fd, err := openat(w.d.fd, reclaimLockName, unix.O_RDWR)
		require.NoError(t, err)
		defer func() { require.NoError(t, unix.Close(fd)) }()
		require.ErrorIs(t, flockNB(fd), unix.EWOULDBLOCK, "the reclaim lock is not held")
	}
	t.Cleanup(func() { testHookHeldElsewhere = nil })
	for _, q := range []*MmapQueue{r, w} {
		_, err := q.Stats()
		require.NoError(t, err)
		require.NoError(t, q.Check())
	}
	require.Equal(t, 4, looked, "each looked at the pinned consumer's lock")
}

// TestReaderStatsWithReadAccessOnly: a reader that may only read the
// queue's directory (another user, say a monitor) still gets Stats and
// Check, which look at consumers under the reclaim lock: the lock file is
// opened read-only for its flock (opened read-write, it was EACCES). The
// child runs as nobody when the test runs as root, else with the lock file
// and the directory made read-only for it.
func TestReaderStatsWithReadAccessOnly(t *testing.T) {
	// A copy of this test binary that another user can run.
	bin := filepath.Join(t.TempDir(), "child.test")
	data, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, data, 0o755))
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin))} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	// Without the lock file too (a queue last opened by a build before
	// it, or the file removed): it cannot be made, and nobody needs it.
	for _, lockFile := range []bool{true, false} {
		t.Run(fmt.Sprintf("lockfile=%v", lockFile), func(t *testing.T) {
			dir := t.TempDir()
			w := filledQueue(t, dir, 50, 100)
			_, err := w.NewConsumer("c")
			require.NoError(t, err)
			require.NoError(t, w.Close())
			if !lockFile {
				require.NoError(t, os.Remove(filepath.Join(dir, reclaimLockName)))
			}
			for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
				require.NoError(t, os.Chmod(d, 0o755)) // a path the child can walk
			}
			cmd := childCommand(t, "lookonly", dir, nil)
			cmd.Path, cmd.Args[0] = bin, bin
			if os.Geteuid() == 0 {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			} else {
				if lockFile {
					require.NoError(t, os.Chmod(filepath.Join(dir, reclaimLockName), 0o444))
				}
				require.NoError(t, os.Chmod(dir, 0o555))
				t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
			}
			out, err := cmd.CombinedOutput()
			requireChildOK(t, err, out)
			var got Stats
			require.NoError(t, childResult(out, &got), "%s", out)
			require.Equal(t, 50, got.Messages)
			require.Len(t, got.Consumers, 2)
		})
	}
}

// lookOnlyChild opens the queue in dir as a reader, checks it and prints
// its Stats.
func lookOnlyChild(t *testing.T, dir string) {
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	st, err := r.Stats()
	require.NoError(t, err)
	require.NoError(t, r.Check())
	require.NoError(t, r.Close())
	printChildResult(t, st)
}
