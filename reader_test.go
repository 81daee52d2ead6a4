package bigqueue

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReaderBesideWriter: a reader opened beside a writer in the same
// process sees what the writer publishes (Len, Peek, Offsets, Stats, Check),
// changes nothing (ErrReadOnly), and follows the head as the writer
// retires arenas, without holding a deleted file open.
func TestReaderBesideWriter(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.ErrorIs(t, err, fs.ErrNotExist, "no queue yet")

	w := smallQueue(t, dir)
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	_, err = OpenReader(dir, SetArenaSize(2*testArenaSize))
	require.ErrorIs(t, err, ErrInvalidArenaSize)

	require.Zero(t, r.Len())
	require.True(t, r.IsEmpty())
	for i := range uint64(60) {
		require.NoError(t, w.Enqueue(seqMessage(i, 300)))
		require.Equal(t, int(i+1), r.Len(), "published at once, no Flush")
	}
	msg, err := r.Peek()
	require.NoError(t, err)
	requireSeqMessage(t, msg, 0, 300)
	require.NoError(t, r.Check())

	for _, err := range []error{
		r.Enqueue([]byte("x")), r.EnqueueBatch([][]byte{{1}}), errOf(r.Dequeue()), errOf(r.DequeueAppend(nil)),
		errOf(r.NewConsumer("c")), r.DeleteConsumer("c"),
	} {
		require.ErrorIs(t, err, ErrReadOnly)
	}
	require.NoError(t, r.Flush(), "nothing to flush")

	// The writer consumes and retires arenas; the reader follows.
	for i := range uint64(50) {
		msg, err := w.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, msg, i, 300)
	}
	require.NoError(t, w.Flush())
	require.Equal(t, 10, r.Len())
	msg, err = r.Peek()
	require.NoError(t, err)
	requireSeqMessage(t, msg, 50, 300)
	oldest, next := r.Offsets()
	require.Equal(t, uint64(60), next)
	require.Greater(t, oldest, uint64(0))
	require.NoError(t, r.Check())
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, 10, st.Consumers[0].Backlog)
	requireNoDeletedDescriptors(t, dir)

	require.NoError(t, r.Close())
	require.ErrorIs(t, r.Close(), ErrClosed)
	// The reader left nothing behind, and the writer goes on.
	require.NoError(t, w.Enqueue(seqMessage(60, 300)))
}

func errOf[T any](_ T, err error) error { return err }

// requireNoDeletedDescriptors fails when a descriptor of the process points
// at a deleted file of dir (Linux only: it reads /proc/self/fd).
func requireNoDeletedDescriptors(t *testing.T, dir string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir) {
			require.NotContains(t, target, "(deleted)", "descriptor %s", fd.Name())
		}
	}
}

// writerParams is what the writer child gets.
type writerParams struct{ N int }

// writerChild enqueues N messages, reporting each on fd 3 once Enqueue has
// returned, then waits to be killed.
func writerChild(t *testing.T, dir string, arg []byte) {
	var p writerParams
	require.NoError(t, json.Unmarshal(arg, &p))
	out := os.NewFile(3, "progress")
	q, err := NewMmapQueue(dir, SetArenaSize(testArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.NoError(t, err)
	for i := range uint64(p.N) {
		require.NoError(t, q.Enqueue(seqMessage(i, messageSize(i))))
		_, err := fmt.Fprintf(out, "%d\n", i)
		require.NoError(t, err)
	}
	_, err = fmt.Fprintln(out, "done")
	require.NoError(t, err)
	select {} // until killed
}

// TestReaderOfAnotherProcess: a writer in a child process enqueues while a
// reader here follows; the writer is killed with SIGKILL. Every message the
// writer reported is visible to the reader, whole and in order, before and
// after the kill, with no Flush ever; a new writer then opens the queue and
// the reader sees what it appends.
func TestReaderOfAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir) // create the queue, then hand it to the child
	require.NoError(t, q.Close())
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })

	const n = 3000
	cmd := childCommand(t, "writer", dir, writerParams{N: n})
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	cmd.ExtraFiles = []*os.File{pw}
	require.NoError(t, cmd.Start())
	require.NoError(t, pw.Close())
	sc := bufio.NewScanner(pr)
	reported := 0
	for sc.Scan() {
		if sc.Text() == "done" {
			break
		}
		reported++
		if reported%500 == 0 {
			// What the writer reported is visible now.
			require.GreaterOrEqual(t, r.Len(), reported)
		}
	}
	require.Equal(t, n, reported)
	require.NoError(t, cmd.Process.Kill())
	_, _ = io.Copy(io.Discard, pr)
	_ = cmd.Wait()

	require.Equal(t, n, r.Len())
	require.NoError(t, r.Check())
	msg, err := r.Peek()
	require.NoError(t, err)
	requireSeqMessage(t, msg, 0, messageSize(0))

	// A new writer after the crash: the reader goes on with what it appends.
	w := smallQueue(t, dir)
	for i := uint64(n); i < n+100; i++ {
		require.NoError(t, w.Enqueue(seqMessage(i, messageSize(i))))
	}
	require.Equal(t, n+100, r.Len())
	require.NoError(t, r.Check())
	for i := range uint64(n + 100) {
		msg, err := w.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, msg, i, messageSize(i))
	}
	_, err = w.Dequeue()
	require.True(t, errors.Is(err, ErrEmptyQueue))
}
