package bigqueue

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The lock tests check "one owner" (SPEC section 3): a directory is opened by
// one MmapQueue at a time, in this process or another; the lock goes with
// Close and with the death of its holder.

// lockOpts are the options of every queue in the lock tests.
func lockOpts() []Option {
	return []Option{SetArenaSize(4096), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
}

// TestLockSameProcess opens a directory twice in this process: the second
// open fails with ErrLocked, whatever its options, and neither disturbs the
// holder nor takes its lock away; after Close the directory opens again.
func TestLockSameProcess(t *testing.T) {
	dir := t.TempDir()
	q, err := NewMmapQueue(dir, lockOpts()...)
	require.NoError(t, err)
	require.NoError(t, q.EnqueueString("first"))

	_, err = NewMmapQueue(dir, lockOpts()...)
	require.ErrorIs(t, err, ErrLocked)
	// The lock comes before anything is read: another arena size is
	// refused for the lock too, not for the size.
	_, err = NewMmapQueue(dir, SetArenaSize(8192))
	require.ErrorIs(t, err, ErrLocked)
	require.NotErrorIs(t, err, ErrInvalidArenaSize)
	// A refused open closed only its own descriptor: the holder keeps the
	// lock (flock, not fcntl, semantics) and keeps working.
	_, err = NewMmapQueue(dir, lockOpts()...)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, q.EnqueueString("second"))
	require.NoError(t, q.Flush())

	require.NoError(t, q.Close())
	q2, err := NewMmapQueue(dir, lockOpts()...)
	require.NoError(t, err, "open after Close")
	for _, want := range []string{"first", "second"} {
		got, err := q2.DequeueString()
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err = NewMmapQueue(dir, lockOpts()...)
	require.ErrorIs(t, err, ErrLocked, "the reopened queue holds the lock")
	require.NoError(t, q2.Close())
}

// lockChildResult is what the trylock child reports.
type lockChildResult struct {
	Locked bool   // NewMmapQueue failed with ErrLocked
	Opened bool   // NewMmapQueue succeeded (and the queue was closed)
	Err    string // any other error
	Len    int    // messages in the queue when it opened
}

// tryLockChild opens the queue in dir once and reports how that went.
func tryLockChild(t *testing.T, dir string) {
	var res lockChildResult
	q, err := NewMmapQueue(dir, lockOpts()...)
	switch {
	case errors.Is(err, ErrLocked):
		res.Locked = true
	case err != nil:
		res.Err = err.Error()
	default:
		res.Opened, res.Len = true, q.Len()
		require.NoError(t, q.Close())
	}
	printChildResult(t, res)
}

// lockHoldChild opens the queue in dir, enqueues a message, says "ready" on
// standard output and holds the queue until it reads "close" from standard
// input (or is killed).
func lockHoldChild(t *testing.T, dir string) {
	q, err := NewMmapQueue(dir, lockOpts()...)
	require.NoError(t, err)
	require.NoError(t, q.EnqueueString("from the child"))
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "close\n", line)
	require.NoError(t, q.Close())
	fmt.Println("closed")
}

// runTryLock runs the trylock child on dir.
func runTryLock(t *testing.T, dir string) lockChildResult {
	t.Helper()
	out, err := childCommand(t, "trylock", dir, nil).CombinedOutput()
	requireChildOK(t, err, out)
	var res lockChildResult
	require.NoError(t, childResult(out, &res), "trylock child:\n%s", out)
	return res
}

// TestLockOtherProcess checks the lock across processes, both ways: a child
// cannot open what this process holds, this process cannot open what a child
// holds, and the lock is released by Close and by SIGKILL of the holder.
func TestLockOtherProcess(t *testing.T) {
	dir := t.TempDir()

	// This process holds it: the child gets ErrLocked.
	q, err := NewMmapQueue(dir, lockOpts()...)
	require.NoError(t, err)
	require.NoError(t, q.EnqueueString("from the parent"))
	res := runTryLock(t, dir)
	require.True(t, res.Locked, "child opened a queue this process holds: %+v", res)
	require.NoError(t, q.Close())
	res = runTryLock(t, dir)
	require.True(t, res.Opened, "child could not open after Close: %+v", res)
	require.Equal(t, 1, res.Len)
	q, err = NewMmapQueue(dir, lockOpts()...)
	require.NoError(t, err, "open after the child closed")
	msg, err := q.DequeueString()
	require.NoError(t, err)
	require.Equal(t, "from the parent", msg)
	require.NoError(t, q.Close())

	for _, how := range []string{"close", "kill"} {
		t.Run(how, func(t *testing.T) {
			cmd := childCommand(t, "lockhold", dir, nil)
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			out := bufio.NewReader(stdout)
			line, err := out.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "ready\n", line)

			_, err = NewMmapQueue(dir, lockOpts()...)
			require.ErrorIs(t, err, ErrLocked, "opened a queue a child holds")

			if how == "close" {
				_, err = stdin.Write([]byte("close\n"))
				require.NoError(t, err)
				line, err = out.ReadString('\n')
				require.NoError(t, err)
				require.Equal(t, "closed\n", line)
				require.NoError(t, cmd.Wait())
			} else {
				require.NoError(t, cmd.Process.Kill())
				err = cmd.Wait()
				require.Error(t, err, "the child was killed")
			}

			q, err := NewMmapQueue(dir, lockOpts()...)
			require.NoError(t, err, "open after the holder's %s", how)
			// The child's enqueue returned before "ready": it survives
			// the kill too (contract 1).
			assert.Equal(t, 1, q.Len())
			msg, err := q.DequeueString()
			require.NoError(t, err)
			assert.Equal(t, "from the child", msg)
			require.NoError(t, q.Close())
		})
	}
}

// TestDescriptorsPerQueue: an open queue holds two descriptors, its
// directory's and the LOCK file's (flocked), whatever it does, so that a
// program can keep hundreds open (the reference's external sort keeps
// 300); every other file is mapped and closed, or opened when used.
func TestDescriptorsPerQueue(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to count descriptors")
	}
	count := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		require.NoError(t, err)
		return len(entries)
	}
	const n = 20
	before := count()
	var qs []*MmapQueue
	for range n {
		q, err := NewMmapQueue(t.TempDir(), SetArenaSize(testArenaSize), SetPeriodicFlushDuration(0))
		require.NoError(t, err)
		for i := range 100 { // across arenas, with a flush that reclaims
			require.NoError(t, q.Enqueue(seqMessage(uint64(i), 100)))
		}
		for range 100 {
			_, err := q.Dequeue()
			require.NoError(t, err)
		}
		require.NoError(t, q.Flush())
		qs = append(qs, q)
	}
	require.LessOrEqual(t, count()-before, 2*n, "descriptors held by %d open queues", n)
	for _, q := range qs {
		require.NoError(t, q.Close())
	}
	require.LessOrEqual(t, count(), before, "descriptors left after Close")
}
