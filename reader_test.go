package bigqueue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
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
	} {
		require.ErrorIs(t, err, ErrReadOnly)
	}
	require.NoError(t, r.Flush(), "nothing of its own to flush")

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
	pr := startChildWithPipe(t, cmd)
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

// TestReaderConsumers: named consumers in a reader read and commit as in
// the writer; a consumer is held by one handle at a time across open files
// (ErrLocked for the writer and for another reader); the writer keeps what
// a reader's consumer has not committed, and gives it back once it has;
// a consumer the reader creates during reclamation starts at a head that
// exists; ReadWait in a reader sees the writer's next message.
func TestReaderConsumers(t *testing.T) {
	dir := t.TempDir()
	w := filledQueue(t, dir, 100, 300)
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	c, err := r.NewConsumer("audit")
	require.NoError(t, err)
	_, err = w.NewConsumer("audit")
	require.ErrorIs(t, err, ErrLocked, "held by the reader")
	r2, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	_, err = r2.NewConsumer("audit")
	require.ErrorIs(t, err, ErrLocked, "held by the other reader")
	require.NoError(t, r2.Close())

	for i := range uint64(30) {
		requireRead(t, c, i, 300)
	}
	require.NoError(t, c.Commit())
	// The writer drains its default consumer: it keeps what audit needs.
	for range 100 {
		_, err := w.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, w.Flush())
	oldest, _ := w.Offsets()
	require.LessOrEqual(t, oldest, uint64(30), "the writer keeps what the reader's consumer has not committed")
	for i := uint64(30); i < 100; i++ {
		m, err := c.Read()
		require.NoError(t, err, "offset %d", i)
		requireSeqMessage(t, m.Data, i, 300)
	}
	require.NoError(t, c.Commit())
	require.NoError(t, w.Flush())
	oldest, _ = w.Offsets()
	require.Greater(t, oldest, uint64(80), "and gives it back once committed")
	requireNoDeletedDescriptors(t, dir)

	// ReadWait in the reader sees the writer's next message.
	got := make(chan Message, 1)
	go func() {
		m, err := c.ReadWait(context.Background())
		if err != nil {
			m.Data = []byte(err.Error())
		}
		got <- m
	}()
	require.NoError(t, w.Enqueue(seqMessage(100, 300)))
	m := <-got
	require.Equal(t, uint64(100), m.Offset)
	requireSeqMessage(t, m.Data, 100, 300)

	// A consumer created while the writer reclaims starts at a head that
	// exists, and reads on from it.
	for i := uint64(101); i < 400; i++ {
		require.NoError(t, w.Enqueue(seqMessage(i, 300)))
		_, err := w.Dequeue()
		require.NoError(t, err)
		if i%37 == 0 {
			require.NoError(t, c.Seek(i))
			require.NoError(t, c.Commit())
			name := fmt.Sprint("late-", i)
			lc, err := r.NewConsumer(name)
			require.NoError(t, err)
			m, err := lc.Read()
			require.NoError(t, err, "a consumer created during reclamation")
			requireSeqMessage(t, m.Data, m.Offset, 300)
			require.NoError(t, w.Flush())
			require.NoError(t, r.DeleteConsumer(name))
		}
	}
	// Deleted by the reader: the writer forgets it at its next flush.
	require.NoError(t, w.Flush())
	require.Equal(t, []string{"audit"}, w.Consumers())
}

// osReaderChild opens the queue as a reader, reads consumer "worker",
// commits every K messages and reports "c OFFSET" after each commit on
// fd 3, then "held" once it has read everything, and waits to be killed.
func osReaderChild(t *testing.T, dir string, arg []byte) {
	var p readerParams
	require.NoError(t, json.Unmarshal(arg, &p))
	out := os.NewFile(3, "progress")
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	c, err := r.NewConsumer("worker")
	require.NoError(t, err)
	readCommitting(t, c, p.K, out, false)
	_, err = fmt.Fprintln(out, "held")
	require.NoError(t, err)
	select {} // until killed
}

// TestReaderProcessKilled: a reader in another process holds consumer
// "worker" (the writer's NewConsumer gets ErrLocked), commits every 10
// messages and is killed with SIGKILL. It leaves only its consumer file:
// the writer then takes the consumer over and resumes at its last commit.
func TestReaderProcessKilled(t *testing.T) {
	dir := t.TempDir()
	w := smallQueue(t, dir)
	const n = 505
	for i := range uint64(n) {
		require.NoError(t, w.Enqueue(seqMessage(i, messageSize(i))))
	}
	before, err := os.ReadDir(dir)
	require.NoError(t, err)

	cmd := childCommand(t, "osreader", dir, readerParams{K: 10})
	pr := startChildWithPipe(t, cmd)
	sc := bufio.NewScanner(pr)
	last := int64(-1)
	for sc.Scan() {
		if sc.Text() == "held" {
			break
		}
		_, err := fmt.Sscanf(sc.Text(), "c %d", &last)
		require.NoError(t, err)
	}
	require.Equal(t, int64(500), last)
	_, err = w.NewConsumer("worker")
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, cmd.Process.Kill())
	_, _ = io.Copy(io.Discard, pr)
	_ = cmd.Wait()

	c, err := w.NewConsumer("worker")
	require.NoError(t, err, "a killed reader's hold is gone")
	require.Equal(t, uint64(500), c.Committed())
	requireRead(t, c, 500, messageSize(500))
	after, err := os.ReadDir(dir)
	require.NoError(t, err)
	var added []string
	for _, e := range after {
		if !slices.ContainsFunc(before, func(b os.DirEntry) bool { return b.Name() == e.Name() }) {
			added = append(added, e.Name())
		}
	}
	require.Equal(t, []string{consumerFileName("worker")}, added, "the reader left its consumer file only")
}

// wakeWriterChild enqueues N messages holding the wall-clock time of their
// Enqueue, at random intervals of up to 2 ms, so that the reader is found
// both polling fast and idle.
func wakeWriterChild(t *testing.T, dir string, arg []byte) {
	var p writerParams
	require.NoError(t, json.Unmarshal(arg, &p))
	q, err := NewMmapQueue(dir, SetArenaSize(1<<20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(uint64(p.N), 7))
	msg := make([]byte, 16)
	for range p.N {
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond) // load shape, not synchronisation
		binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
		require.NoError(t, q.Enqueue(msg))
	}
	require.NoError(t, q.Close())
}

// BenchmarkReaderWake measures how long after a writer's Enqueue, in
// another process, a reader's ReadWait returns the message (p50, p99,
// max), and the CPU an idle reader's ReadWait takes (cpu-%: CPU time over
// wall time while nothing comes, over 200 ms).
func BenchmarkReaderWake(b *testing.B) {
	dir := b.TempDir()
	w, err := NewMmapQueue(dir, SetArenaSize(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	r, err := OpenReader(dir, SetArenaSize(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	c, err := r.NewConsumer("waker")
	if err != nil {
		b.Fatal(err)
	}

	// Idle: a ReadWait with nothing to read, for 200 ms.
	var before, after unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &before)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	start := time.Now()
	_, err = c.ReadWait(ctx)
	cancel()
	idle := time.Since(start)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &after)
	if !errors.Is(err, context.DeadlineExceeded) {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond

	cmd := childCommand(b, "wakewriter", dir, writerParams{N: b.N})
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		m, err := c.ReadWait(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(time.Unix(0, int64(binary.LittleEndian.Uint64(m.Data)))))
	}
	b.StopTimer()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("writer: %v\n%s", err, out.String())
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	b.ReportMetric(100*float64(cpu)/float64(idle), "idle-cpu-%")
}

// TestReaderWakesSleepingReadWait: Close of a reader wakes its ReadWait
// with ErrClosed, and DeleteConsumer of its consumer with
// ErrUnknownConsumer, at once (it sleeps on the shared wake word, not on
// a channel, and nothing else would bump the word).
func TestReaderWakesSleepingReadWait(t *testing.T) {
	for _, tc := range []struct {
		op   string
		want error
	}{{"Close", ErrClosed}, {"DeleteConsumer", ErrUnknownConsumer}} {
		t.Run(tc.op, func(t *testing.T) {
			dir := t.TempDir()
			smallQueue(t, dir)
			r, err := OpenReader(dir, SetArenaSize(testArenaSize))
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })
			c, err := r.NewConsumer("c")
			require.NoError(t, err)
			readerSleep = time.Hour // much longer than this test
			defer func() { readerSleep = time.Second }()
			done := make(chan error, 1)
			go func() {
				_, err := c.ReadWait(context.Background())
				done <- err
			}()
			if haveFutex {
				for atomic.LoadUint32(r.wake.waiters()) == 0 {
					runtime.Gosched()
				}
			}
			if tc.op == "Close" {
				require.NoError(t, r.Close())
			} else {
				require.NoError(t, r.DeleteConsumer("c"))
			}
			select {
			case err := <-done:
				require.ErrorIs(t, err, tc.want)
			case <-time.After(30 * time.Second):
				t.Fatalf("ReadWait still blocked 30s after %s", tc.op)
			}
		})
	}
}

// TestClosedReaderReturnsErrClosed: after Close, a reader's methods return
// ErrClosed, those that would return ErrReadOnly on an open reader too.
func TestClosedReaderReturnsErrClosed(t *testing.T) {
	dir := t.TempDir()
	w := smallQueue(t, dir)
	require.NoError(t, w.Enqueue([]byte("m")))
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	c, err := r.NewConsumer("c")
	require.NoError(t, err)
	require.NoError(t, r.Close())
	live := context.Background()
	ended, cancel := context.WithCancel(live)
	cancel()
	for name, call := range map[string]func() error{
		"Enqueue":                    func() error { return r.Enqueue([]byte("x")) },
		"EnqueueWait":                func() error { return r.EnqueueWait(live, []byte("x")) },
		"Dequeue":                    func() error { _, err := r.Dequeue(); return err },
		"DequeueWait":                func() error { _, err := r.DequeueWait(live); return err },
		"DequeueWait, ended context": func() error { _, err := r.DequeueWait(ended); return err },
		"Peek":                       func() error { _, err := r.Peek(); return err },
		"Flush":                      r.Flush,
		"NewConsumer":                func() error { _, err := r.NewConsumer("d"); return err },
		"DeleteConsumer":             func() error { return r.DeleteConsumer("c") },
		"Stats":                      func() error { _, err := r.Stats(); return err },
		"Check":                      r.Check,
		"Consumer.Read":              func() error { _, err := c.Read(); return err },
		"Consumer.ReadWait":          func() error { _, err := c.ReadWait(ended); return err },
		"Consumer.DequeueWait":       func() error { _, err := c.DequeueWait(ended); return err },
		"Consumer.Commit":            c.Commit,
		"Close":                      r.Close,
	} {
		require.ErrorIs(t, call(), ErrClosed, name)
	}
}

// TestReaderSeekBackIsKept: a reader's consumer that seeks back behind its
// committed offset publishes its cursor, and the writer keeps what it
// points to through its flushes; once the cursor is past the committed
// offset again, the writer gives it back.
func TestReaderSeekBackIsKept(t *testing.T) {
	dir := t.TempDir()
	w := filledQueue(t, dir, 200, 300)
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	c, err := r.NewConsumer("replay")
	require.NoError(t, err)
	require.NoError(t, c.Seek(150)) // a cursor left at 0 would keep it all
	require.NoError(t, c.CommitOffset(150))
	for range 200 {
		_, err := w.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, w.Flush())
	oldest, _ := w.Offsets()
	require.Greater(t, oldest, uint64(100), "only what the committed offset needs is kept")
	require.NoError(t, c.Seek(oldest+2))    // back, behind the committed 150
	require.NoError(t, c.CommitOffset(190)) // and the committed offset far ahead
	require.NoError(t, w.Flush())
	kept, _ := w.Offsets()
	require.LessOrEqual(t, kept, oldest+2, "the writer keeps what the reader's cursor needs")
	for i := oldest + 2; i < 200; i++ {
		requireRead(t, c, i, 300)
	}
	require.NoError(t, c.Commit())
	require.NoError(t, w.Flush())
	after, _ := w.Offsets()
	require.Greater(t, after, uint64(180), "and gives it back once the cursor is past the committed offset")
	require.ErrorIs(t, c.Seek(kept), ErrOffsetOutOfRange)
}

// TestReaderSeekCatchesUp: a reader opened before the writer wrote most of
// the queue seeks from the offset index entries the writer has written
// since (flushed or not: it appends each as it starts an arena), not by
// walking every record header from where the reader started: with the
// header of an early message damaged on disk, a Seek to a later arena
// still works, and reads the message sought.
func TestReaderSeekCatchesUp(t *testing.T) {
	for _, flush := range []bool{true, false} {
		t.Run(fmt.Sprintf("flush=%v", flush), func(t *testing.T) { readerSeekCatchesUp(t, flush) })
	}
}

func readerSeekCatchesUp(t *testing.T, flush bool) {
	const n, size = 300, 100
	dir := t.TempDir()
	w, r := writerAndReader(t, dir, size)
	known := len(r.s.idx.entries)

	var starts []int64
	for i, pos := 0, int64(0); i < n; i++ {
		pos = w.s.recordStart(pos)
		starts = append(starts, pos)
		pos += headerSize + size
		if i > 0 {
			require.NoError(t, w.Enqueue(seqMessage(uint64(i), size)))
		}
	}
	if flush {
		require.NoError(t, w.Flush())
	}
	scribble(t, filepath.Join(dir, arenaName(0)), starts[5])

	target := 0
	for starts[target] < 5*testArenaSize {
		target++
	}
	c, err := r.NewConsumer("late")
	require.NoError(t, err)
	require.NoError(t, c.Seek(uint64(target)))
	require.Greater(t, len(r.s.idx.entries), known, "the reader took in the writer's new entries")
	m, err := c.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(target), m.Offset)
	requireSeqMessage(t, m.Data, uint64(target), size)

	require.NoError(t, c.Seek(5))
	_, err = c.Read()
	require.ErrorIs(t, err, ErrCorrupt, "the damaged message itself")
}

// TestReaderSeekAfterCompaction: the writer rewrites offsets.dat (a new
// file) once most of its entries are for retired arenas; a reader opened
// before that takes in the new file's entries too, and seeks past a
// damaged header written after it.
func TestReaderSeekAfterCompaction(t *testing.T) {
	const size = 100
	dir := t.TempDir()
	w, r := writerAndReader(t, dir, size)
	inode := func() uint64 {
		var st unix.Stat_t
		require.NoError(t, unix.Stat(filepath.Join(dir, offsetsName), &st))
		return uint64(st.Ino)
	}
	before := inode()

	seq := uint64(1)
	for ; w.tail.pos < (compactMin+100)*testArenaSize; seq++ {
		require.NoError(t, w.Enqueue(seqMessage(seq, size)))
	}
	for range seq {
		_, err := w.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, w.Flush())
	require.NotEqual(t, before, inode(), "offsets.dat was rewritten")

	first := seq
	var starts []int64
	for pos := w.tail.pos; seq < first+300; seq++ {
		pos = w.s.recordStart(pos)
		starts = append(starts, pos)
		pos += headerSize + size
		require.NoError(t, w.Enqueue(seqMessage(seq, size)))
	}
	require.NoError(t, w.Flush())
	arena, _ := w.s.arenaOf(starts[5])
	scribble(t, filepath.Join(dir, arenaName(arena)), starts[5]%testArenaSize)

	target := 0
	for starts[target] < starts[0]+5*testArenaSize {
		target++
	}
	c, err := r.NewConsumer("late")
	require.NoError(t, err)
	require.Equal(t, first, c.Cursor(), "a new consumer starts at the oldest message kept")
	require.NoError(t, c.Seek(first+uint64(target)))
	m, err := c.Read()
	require.NoError(t, err)
	require.Equal(t, first+uint64(target), m.Offset)
	requireSeqMessage(t, m.Data, first+uint64(target), size)
}

// writerAndReader opens a writer on a new queue in dir (4 KiB arenas, no
// periodic flush), enqueues message 0 of size bytes and flushes it, and
// opens a reader beside it, closed at the test's end.
func writerAndReader(t *testing.T, dir string, size int) (w, r *MmapQueue) {
	t.Helper()
	opts := []Option{SetArenaSize(testArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	w = openQueue(t, dir, opts...)
	require.NoError(t, w.Enqueue(seqMessage(0, size)))
	require.NoError(t, w.Flush())
	r, err := OpenReader(dir, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return w, r
}

// scribble overwrites the 4 bytes at off of the file at path (a record's
// magic, when off is where a record starts).
func scribble(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// TestConsumerTakenOverFromReader: a consumer a reader created and let go
// is taken by the writer where the reader left it, not where the writer
// last read its file (at a flush), and not behind the head that
// SetDropOldest moved while nobody held it.
func TestConsumerTakenOverFromReader(t *testing.T) {
	t.Run("position", func(t *testing.T) {
		dir := t.TempDir()
		q := filledQueue(t, dir, 20, 100)
		r, err := OpenReader(dir, SetArenaSize(testArenaSize))
		require.NoError(t, err)
		rc, err := r.NewConsumer("x")
		require.NoError(t, err)
		require.NoError(t, q.Flush()) // the writer reads x's file: offset 0
		for i := range uint64(5) {
			m, err := rc.Dequeue()
			require.NoError(t, err)
			requireSeqMessage(t, m, i, 100)
		}
		require.NoError(t, r.Close())

		c, err := q.NewConsumer("x")
		require.NoError(t, err)
		require.Equal(t, uint64(5), c.Committed())
		m, err := c.Read()
		require.NoError(t, err)
		require.Equal(t, uint64(5), m.Offset)
		require.NoError(t, c.Commit())
		// What a kill -9 now leaves: the writer's commit outranks the
		// live slots the reader wrote (a later generation).
		st, err := openConsumerFile(q.d, consumerFileName("x"), true)
		require.NoError(t, err)
		defer func() { require.NoError(t, st.mf.close()) }()
		require.Equal(t, int64(6), st.committed.seq)
	})
	t.Run("dropped", func(t *testing.T) {
		dir := t.TempDir()
		q := openQueue(t, dir, SetArenaSize(4096), SetMaxDiskUsage(64<<10), SetDropOldest(),
			SetPeriodicFlushDuration(0), SetPeriodicFlushOps(0))
		for range 10 {
			require.NoError(t, q.Enqueue(make([]byte, 100)))
		}
		r, err := OpenReader(dir, SetArenaSize(4096))
		require.NoError(t, err)
		_, err = r.NewConsumer("x")
		require.NoError(t, err)
		require.NoError(t, r.Close())
		require.NoError(t, q.Flush())
		for range 2000 { // 200 KiB through a 64 KiB cap: arenas dropped
			require.NoError(t, q.Enqueue(make([]byte, 100)))
		}
		oldest, _ := q.Offsets()
		require.Positive(t, oldest)
		c, err := q.NewConsumer("x")
		require.NoError(t, err)
		m, err := c.Read()
		require.NoError(t, err, "the first message of a consumer passed by SetDropOldest")
		require.GreaterOrEqual(t, m.Offset, oldest)
	})
}

// drainedWriter opens a writer (4 KiB arenas, no background flush) with n
// messages of size bytes (seqMessage), all dequeued by its default
// consumer, so that only named consumers keep them.
func drainedWriter(t *testing.T, n, size int) *MmapQueue {
	t.Helper()
	w := filledQueue(t, t.TempDir(), n, size)
	for range n {
		_, err := w.Dequeue()
		require.NoError(t, err)
	}
	return w
}

// readBesideDrained is drainedWriter and a reader beside it, closed at
// cleanup.
func readBesideDrained(t *testing.T, n, size int) (w, r *MmapQueue) {
	t.Helper()
	w = drainedWriter(t, n, size)
	r, err := OpenReader(w.dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return w, r
}

// readerWaitsForReclaimLock returns a channel that receives when a reader
// is about to wait for the reclaim lock (testHookLockReclaim).
func readerWaitsForReclaimLock(t *testing.T) <-chan struct{} {
	waiting := make(chan struct{}, 1)
	testHookLockReclaim = func(reader bool) {
		if reader {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
	}
	t.Cleanup(func() { testHookLockReclaim = nil })
	return waiting
}

// TestReaderCommitAheadPinsFirst: a reader's CommitOffset past its cursor
// publishes the pin that keeps the cursor's arenas before the committed
// offset, both under the reclaim lock: a writer's reclaim between the two
// used to retire what the cursor still needed (its next Read found the
// queue empty, or the pin failed with ErrOffsetOutOfRange). The test holds
// the reclaim lock while the reader waits for it, and looks at what the
// consumer's file says then.
func TestReaderCommitAheadPinsFirst(t *testing.T) {
	q, r := readBesideDrained(t, 200, 100)
	c, err := r.NewConsumer("r") // at offset 0: keeps every arena
	require.NoError(t, err)
	require.NoError(t, q.Flush())
	for i := range uint64(10) { // the cursor at offset 10
		m, err := c.Read()
		require.NoError(t, err)
		require.Equal(t, i, m.Offset)
	}

	lock, err := os.OpenFile(filepath.Join(q.dir, reclaimLockName), os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lock.Close() }) // on a failure too, before r.Close
	require.NoError(t, unix.Flock(int(lock.Fd()), unix.LOCK_EX))
	waiting := readerWaitsForReclaimLock(t)
	done := make(chan error, 1)
	go func() { done <- c.CommitOffset(200) }() // the cursor stays at 10
	<-waiting
	// The reader waits for the lock: a reclaim now would read the file.
	st, err := openConsumerFile(q.d, consumerFileName("r"), true)
	require.NoError(t, err)
	require.Equal(t, int64(0), st.committed.seq, "committed offset published before the pin")
	require.NoError(t, st.mf.close())
	require.NoError(t, lock.Close())
	require.NoError(t, <-done)

	require.NoError(t, q.Flush()) // must keep the arenas the cursor needs
	m, err := c.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(10), m.Offset)
	requireSeqMessage(t, m.Data, 10, 100)
}

// TestReaderPinAtQueueStart: a reader's cursor at the queue's very first
// byte (offset 0, position 0) is pinned like any other when its consumer
// commits past it: the writer's reclaim keeps message 0 for its Read.
func TestReaderPinAtQueueStart(t *testing.T) {
	q, r := readBesideDrained(t, 200, 100)
	c, err := r.NewConsumer("r") // at offset 0: keeps every arena
	require.NoError(t, err)
	require.NoError(t, c.CommitOffset(100)) // the cursor stays at 0
	require.NoError(t, q.Flush())           // must keep what the cursor needs
	for i := range uint64(3) {
		m, err := c.Read()
		require.NoError(t, err)
		require.Equal(t, i, m.Offset)
		requireSeqMessage(t, m.Data, i, 100)
	}
}

// TestReaderFromConsumerPins: a reader's consumer copied by FromConsumer
// from one whose cursor is behind its committed offset pins that cursor,
// so that the writer keeps its messages after the original is deleted.
func TestReaderFromConsumerPins(t *testing.T) {
	q, r := readBesideDrained(t, 200, 100)
	c1, err := r.NewConsumer("c1")
	require.NoError(t, err)
	for range 10 {
		_, err := c1.Read()
		require.NoError(t, err)
	}
	require.NoError(t, c1.CommitOffset(100)) // cursor 10, committed 100
	c2, err := r.FromConsumer("c2", c1)
	require.NoError(t, err)
	require.NoError(t, r.DeleteConsumer("c1"))
	require.NoError(t, q.Flush()) // must keep what c2's cursor needs
	m, err := c2.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(10), m.Offset)
	requireSeqMessage(t, m.Data, 10, 100)
}

// TestWriterAndReaderCreateSameConsumer: a writer and a reader that create
// the same consumer at once get one consumer between them: one call
// returns it, the other an error wrapping ErrLocked, never a file one of
// them clobbered (bare ENOENT, or a missing or empty file read as
// ErrCorrupt).
func TestWriterAndReaderCreateSameConsumer(t *testing.T) {
	dir := t.TempDir()
	w := smallQueue(t, dir)
	require.NoError(t, w.Enqueue([]byte("m")))
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	for i := range 300 {
		name := fmt.Sprint("c", i)
		var errs [2]error
		start := make(chan struct{})
		done := make(chan struct{}, 2)
		for k, q := range []*MmapQueue{w, r} {
			go func() {
				<-start
				_, errs[k] = q.NewConsumer(name)
				done <- struct{}{}
			}()
		}
		close(start)
		<-done
		<-done
		holders := 0
		for k, err := range errs {
			if err == nil {
				holders++
				require.NoError(t, []*MmapQueue{w, r}[k].DeleteConsumer(name), "round %d", i)
				continue
			}
			require.ErrorIs(t, err, ErrLocked, "round %d, queue %d", i, k)
		}
		require.Equal(t, 1, holders, "round %d: %v", i, errs)
	}
}

// TestWriterTakesConsumerMadeAnew: a consumer the writer listed, which a
// reader then deleted and made anew under the same name, is taken by the
// writer's NewConsumer from the new file, not the deleted one it had
// mapped: what it commits is there on reopen.
func TestWriterTakesConsumerMadeAnew(t *testing.T) {
	dir := t.TempDir()
	w := filledQueue(t, dir, 10, 100)
	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	_, err = r.NewConsumer("a")
	require.NoError(t, err)
	require.NoError(t, w.Flush()) // the writer lists "a", mapping its file
	require.NoError(t, r.DeleteConsumer("a"))
	_, err = r.NewConsumer("a") // another file under the same name
	require.NoError(t, err)
	require.NoError(t, r.Close()) // and let go

	c, err := w.NewConsumer("a")
	require.NoError(t, err)
	for i := range uint64(3) {
		m, err := c.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, i, 100)
	}
	require.NoError(t, w.Close())
	w = smallQueue(t, dir)
	c, err = w.NewConsumer("a")
	require.NoError(t, err)
	m, err := c.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, m, 3, 100)
}

// TestOpenReaderWhileConsumersDeleted: OpenReader succeeds while the writer
// creates and deletes consumers: a consumer file deleted between the
// reader's listing and its open is one that no longer exists, not damage.
func TestOpenReaderWhileConsumersDeleted(t *testing.T) {
	dir := t.TempDir()
	w := smallQueue(t, dir)
	require.NoError(t, w.Enqueue([]byte("m")))
	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				churned <- nil
				return
			default:
			}
			name := fmt.Sprint("c", i%4)
			if _, err := w.NewConsumer(name); err != nil {
				churned <- err
				return
			}
			if err := w.DeleteConsumer(name); err != nil {
				churned <- err
				return
			}
		}
	}()
	for range 300 {
		r, err := OpenReader(dir, SetArenaSize(testArenaSize))
		if err != nil {
			close(stop)
			require.NoError(t, <-churned)
			require.NoError(t, err)
		}
		require.NoError(t, r.Close())
	}
	close(stop)
	require.NoError(t, <-churned)
}

// readBesideDropping opens a writer with 4 KiB arenas under a cap of
// capBytes with SetDropOldest (no background flush) holding n messages of
// size bytes (seqMessage), and a reader beside it, closed at cleanup.
func readBesideDropping(t *testing.T, capBytes int64, n, size int) (w, r *MmapQueue) {
	t.Helper()
	dir := t.TempDir()
	w = openQueue(t, dir, SetArenaSize(4096), SetMaxDiskUsage(capBytes), SetDropOldest(),
		SetPeriodicFlushDuration(0), SetPeriodicFlushOps(0))
	for i := range uint64(n) {
		require.NoError(t, w.Enqueue(seqMessage(i, size)))
	}
	r, err := OpenReader(dir, SetArenaSize(4096))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return w, r
}

// dropOnReaderRefresh makes a reader's next look at the head
// (testHookReaderRefreshed) enqueue 2,000 messages of 100 bytes, from
// offset next on, into w: 200 KiB through its 64 KiB cap, so that
// SetDropOldest retires the arenas the reader has just looked at. The bool
// says whether it ran.
func dropOnReaderRefresh(t *testing.T, w *MmapQueue, next uint64) *bool {
	once := new(bool)
	testHookReaderRefreshed = func() {
		if *once {
			return
		}
		*once = true
		for i := range uint64(2000) {
			require.NoError(t, w.Enqueue(seqMessage(next+i, 100)))
		}
	}
	t.Cleanup(func() { testHookReaderRefreshed = nil })
	return once
}

// TestReaderDequeueAfterDrop: a reader's Dequeue, DequeueWait or Peek
// whose arena the writer's SetDropOldest retires between the reader's look
// at the head and its read returns the oldest message kept, as Read does,
// not ErrCorrupt for the missing arena.
func TestReaderDequeueAfterDrop(t *testing.T) {
	for _, op := range []string{"Dequeue", "DequeueWait", "Peek"} {
		t.Run(op, func(t *testing.T) {
			w, r := readBesideDropping(t, 64<<10, 10, 100)
			c, err := r.NewConsumer("x") // at offset 0, in arena 0
			require.NoError(t, err)
			once := dropOnReaderRefresh(t, w, 10)
			var m []byte
			switch op {
			case "Dequeue":
				m, err = c.Dequeue()
			case "DequeueWait":
				m, err = c.DequeueWait(context.Background())
			default:
				m, err = c.Peek()
			}
			require.True(t, *once)
			require.NoError(t, err)
			oldest, _ := w.Offsets()
			require.Positive(t, oldest)
			requireSeqMessage(t, m, oldest, 100)
		})
	}
}

// TestWriterStatsAfterDropWithReaderConsumer: the writer's Stats shows a
// consumer a reader holds at the head or after it once SetDropOldest has
// moved the head past it, as it does the writer's own consumers.
func TestWriterStatsAfterDropWithReaderConsumer(t *testing.T) {
	dir := t.TempDir()
	w := openQueue(t, dir, SetArenaSize(4096), SetMaxDiskUsage(64<<10), SetDropOldest(),
		SetPeriodicFlushDuration(0), SetPeriodicFlushOps(0))
	require.NoError(t, w.Enqueue(seqMessage(0, 100)))
	r, err := OpenReader(dir, SetArenaSize(4096))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	_, err = r.NewConsumer("x") // at offset 0
	require.NoError(t, err)
	require.NoError(t, w.Flush()) // the writer lists it
	for i := range uint64(2000) { // 200 KiB through a 64 KiB cap
		require.NoError(t, w.Enqueue(seqMessage(1+i, 100)))
	}
	oldest, _ := w.Offsets()
	require.Positive(t, oldest)
	s, err := w.Stats()
	require.NoError(t, err)
	require.Len(t, s.Consumers, 2)
	x := s.Consumers[1]
	require.Equal(t, "x", x.Name)
	require.GreaterOrEqual(t, x.Committed, oldest)
	require.GreaterOrEqual(t, x.Cursor, oldest)
	require.LessOrEqual(t, x.Backlog, s.Messages)
}

// TestReaderCommitBackDuringReclaim: a reader's CommitOffset back to an
// offset the writer's reclaim is about to retire (it has read the
// consumer's committed offset from before) either keeps it or fails with
// ErrOffsetOutOfRange; it never returns nil for an offset then gone.
func TestReaderCommitBackDuringReclaim(t *testing.T) {
	w, r := readBesideDrained(t, 200, 100)
	c, err := r.NewConsumer("r") // keeps every arena
	require.NoError(t, err)
	require.NoError(t, c.Seek(200))
	require.NoError(t, c.Commit()) // cursor and committed at the tail

	waiting := readerWaitsForReclaimLock(t)
	done := make(chan error, 1)
	testHookReclaimLearned = func() {
		testHookReclaimLearned = nil
		// The writer has read committed=200; the reader commits back now.
		go func() { done <- c.CommitOffset(0) }()
		select {
		case <-waiting: // it waits for this reclaim to end
		case err := <-done:
			done <- err
		}
	}
	t.Cleanup(func() { testHookReclaimLearned = nil })
	require.NoError(t, w.Flush())
	oldest, _ := w.Offsets()
	require.Positive(t, oldest, "the reclaim retired what only the reader had needed")
	if err := <-done; err != nil {
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
		return
	}
	require.NoError(t, c.Seek(0), "CommitOffset(0) returned nil")
	m, err := c.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(0), m.Offset)
}

// TestDeleteConsumerMadeAnew: DeleteConsumer of a name whose file another
// process deleted and made anew since this one last looked, or made since
// this one last listed, deletes the file that is there, in the writer and
// in a reader, rather than answer ErrUnknownConsumer for a name that
// exists.
func TestDeleteConsumerMadeAnew(t *testing.T) {
	open := func(t *testing.T, dir string) *MmapQueue {
		r, err := OpenReader(dir, SetArenaSize(testArenaSize))
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	gone := func(t *testing.T, dir string) {
		r := open(t, dir)
		require.NotContains(t, r.Consumers(), "c")
		require.NoError(t, r.Close())
	}
	t.Run("reader, made anew", func(t *testing.T) {
		dir := t.TempDir()
		w := smallQueue(t, dir)
		_, err := w.NewConsumer("c")
		require.NoError(t, err)
		r1 := open(t, dir) // lists "c"
		require.NoError(t, w.DeleteConsumer("c"))
		r2 := open(t, dir)
		_, err = r2.NewConsumer("c")
		require.NoError(t, err)
		require.NoError(t, r2.Close())
		require.NoError(t, r1.DeleteConsumer("c"))
		gone(t, dir)
	})
	t.Run("writer, made anew", func(t *testing.T) {
		dir := t.TempDir()
		w := smallQueue(t, dir)
		r1 := open(t, dir)
		_, err := r1.NewConsumer("c")
		require.NoError(t, err)
		require.NoError(t, w.Flush()) // the writer lists "c"
		require.NoError(t, r1.DeleteConsumer("c"))
		_, err = r1.NewConsumer("c")
		require.NoError(t, err)
		require.NoError(t, r1.Close())
		require.NoError(t, w.DeleteConsumer("c"))
		require.NotContains(t, w.Consumers(), "c")
		gone(t, dir)
	})
	t.Run("writer, made since its last listing", func(t *testing.T) {
		dir := t.TempDir()
		w := smallQueue(t, dir)
		madeElsewhere(t, dir, "c", nil)
		require.NoError(t, w.DeleteConsumer("c"))
		gone(t, dir)
	})
}

// TestReaderSeekAfterDrop: a reader's Seek or CommitOffset to an offset in
// an arena the writer's SetDropOldest retires after the reader looked at
// the head is out of range (ErrOffsetOutOfRange), not damage (ErrCorrupt).
func TestReaderSeekAfterDrop(t *testing.T) {
	for _, op := range []string{"Seek", "CommitOffset"} {
		t.Run(op, func(t *testing.T) {
			w, r := readBesideDropping(t, 64<<10, 100, 100)
			c, err := r.NewConsumer("x")
			require.NoError(t, err)
			require.NoError(t, c.Seek(100))
			require.NoError(t, c.Commit())
			once := dropOnReaderRefresh(t, w, 100)
			if op == "Seek" {
				err = c.Seek(50)
			} else {
				err = c.CommitOffset(50)
			}
			require.True(t, *once)
			require.ErrorIs(t, err, ErrOffsetOutOfRange)
			require.NotErrorIs(t, err, ErrCorrupt)
		})
	}
}

// TestConsumerChurnAcrossProcesses: a writer and two readers that create,
// copy and delete the same few consumers at once get, from each call, the
// consumer or an error with a sentinel (ErrLocked when another holds it,
// ErrUnknownConsumer when it is gone), never a bare error about a file
// another of them deleted or made meanwhile.
func TestConsumerChurnAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	w := smallQueue(t, dir)
	require.NoError(t, w.Enqueue([]byte("m")))
	queues := []*MmapQueue{w}
	for range 2 {
		r, err := OpenReader(dir, SetArenaSize(testArenaSize))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, r.Close()) })
		queues = append(queues, r)
	}
	names := []string{"a", "b", "c"}
	errs := make(chan error, len(queues))
	for k, q := range queues {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(k), 1))
			var held []*Consumer
			for range 1500 {
				name := names[rng.IntN(len(names))]
				var err error
				switch rng.IntN(3) {
				case 0:
					var c *Consumer
					if c, err = q.NewConsumer(name); err == nil {
						held = append(held, c)
					}
				case 1:
					if len(held) > 0 {
						_, err = q.FromConsumer(name, held[rng.IntN(len(held))])
					}
				default:
					err = q.DeleteConsumer(name)
				}
				if err != nil && !errors.Is(err, ErrLocked) && !errors.Is(err, ErrUnknownConsumer) {
					errs <- fmt.Errorf("queue %d: %w", k, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range queues {
		require.NoError(t, <-errs)
	}
}

// TestReaderCursorDroppedMeanwhile: a reader's consumer whose cursor the
// writer's SetDropOldest passes while the reader waits for the reclaim
// lock moves to the oldest message kept, as the writer's consumers do:
// Commit, Dequeue, CommitOffset ahead of the cursor and FromConsumer
// succeed (they returned ErrOffsetOutOfRange for an offset the caller
// never chose).
func TestReaderCursorDroppedMeanwhile(t *testing.T) {
	for _, op := range []string{"Commit", "Dequeue", "CommitOffset", "FromConsumer"} {
		t.Run(op, func(t *testing.T) {
			w, r := readBesideDropping(t, 48<<10, 20, 300)
			c, err := r.NewConsumer("c")
			require.NoError(t, err)
			_, err = r.NewConsumer("c2") // held: FromConsumer takes no lock for it
			require.NoError(t, err)
			require.NoError(t, c.Seek(20))
			require.NoError(t, c.Commit())
			require.NoError(t, c.Seek(0)) // pinned at 0, committed 20

			// dropArena enqueues until the cap drops the oldest arena, and
			// no more.
			dropArena := func() {
				before, next := w.Offsets()
				for i := next; ; i++ {
					require.NoError(t, w.Enqueue(seqMessage(i, 300)))
					if oldest, _ := w.Offsets(); oldest > before {
						return
					}
				}
			}
			var target uint64
			if op == "CommitOffset" {
				// The cursor's arena is dropped first, and the reader's
				// look at the head before the commit moves it on; the
				// next arena goes while the commit waits for the lock.
				dropArena()
				_, target = w.Offsets()
			}
			dropped := false
			testHookLockReclaim = func(reader bool) {
				if !reader || dropped {
					return
				}
				dropped = true
				dropArena()
			}
			t.Cleanup(func() { testHookLockReclaim = nil })
			switch op {
			case "Commit":
				require.NoError(t, c.Commit())
			case "Dequeue":
				_, err := c.Dequeue()
				require.NoError(t, err)
			case "CommitOffset":
				require.NoError(t, c.CommitOffset(target))
			case "FromConsumer":
				got, err := r.FromConsumer("c2", c)
				require.NoError(t, err)
				c = got
			}
			require.True(t, dropped)
			oldest, _ := w.Offsets()
			require.GreaterOrEqual(t, c.Committed(), oldest)
			m, err := c.Read()
			require.NoError(t, err)
			require.GreaterOrEqual(t, m.Offset, oldest)
			requireSeqMessage(t, m.Data, m.Offset, 300)
		})
	}
}

// TestWriterFollowsConsumerMadeAnew: a consumer that readers deleted and
// made anew under the same name, after the writer had listed it, is read
// by the writer from its new file: the writer keeps what the new one needs
// (it kept following the deleted file's offset, and retired messages the
// new consumer had not read).
func TestWriterFollowsConsumerMadeAnew(t *testing.T) {
	w, r1 := readBesideDrained(t, 300, 200)
	r2, err := OpenReader(w.dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r2.Close()) })
	_, err = r1.NewConsumer("hold") // keeps everything for now
	require.NoError(t, err)
	c, err := r1.NewConsumer("t")
	require.NoError(t, err)
	require.NoError(t, c.Seek(250))
	require.NoError(t, c.Commit())
	require.NoError(t, w.Flush()) // the writer lists "t" at 250

	require.NoError(t, r1.DeleteConsumer("t"))
	c2, err := r2.NewConsumer("t") // anew, at offset 0
	require.NoError(t, err)
	require.Equal(t, uint64(0), c2.Committed())
	require.NoError(t, r1.DeleteConsumer("hold"))
	require.NoError(t, w.Flush())
	oldest, _ := w.Offsets()
	require.Zero(t, oldest, "the writer retired what the new consumer needs")
	m, err := c2.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(0), m.Offset)
}

// TestKilledReaderPinGivenBack: the pin of a reader that is gone (killed,
// or closed without withdrawing it) no longer keeps messages: the writer
// keeps from the consumer's committed offset, and whoever takes the
// consumer next starts there.
func TestKilledReaderPinGivenBack(t *testing.T) {
	w := drainedWriter(t, 300, 200)
	r, err := OpenReader(w.dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	c, err := r.NewConsumer("k")
	require.NoError(t, err)
	require.NoError(t, c.CommitOffset(250)) // the cursor stays at 0: pinned
	require.NoError(t, w.Flush())
	oldest, _ := w.Offsets()
	require.Zero(t, oldest, "the live reader's pin keeps offset 0")
	require.NoError(t, r.Close()) // what a kill leaves: the pin in the file

	require.NoError(t, w.Flush())
	oldest, _ = w.Offsets()
	require.Greater(t, oldest, uint64(200), "the dead reader's pin still keeps messages")
	k, err := w.NewConsumer("k")
	require.NoError(t, err)
	m, err := k.Read()
	require.NoError(t, err)
	require.Equal(t, uint64(250), m.Offset)
	st, err := openConsumerFile(w.d, consumerFileName("k"), true)
	require.NoError(t, err)
	defer func() { require.NoError(t, st.mf.close()) }()
	_, v, ok := st.mf.durable()
	require.True(t, ok)
	_, pinned := pinOf(v)
	require.False(t, pinned, "the pin is withdrawn when the consumer is taken")
}

// TestWriterAfterReaderDeletedConsumer: a consumer a reader deleted after
// the writer had listed it (at a flush) is unknown to the writer's
// DeleteConsumer, and the writer's NewConsumer makes it anew, at the head,
// rather than failing on the missing file.
func TestWriterAfterReaderDeletedConsumer(t *testing.T) {
	for _, op := range []string{"new", "delete"} {
		t.Run(op, func(t *testing.T) {
			dir := t.TempDir()
			q := smallQueue(t, dir)
			require.NoError(t, q.Enqueue([]byte("m")))
			r, err := OpenReader(dir, SetArenaSize(testArenaSize))
			require.NoError(t, err)
			defer func() { require.NoError(t, r.Close()) }()
			_, err = r.NewConsumer("a")
			require.NoError(t, err)
			require.NoError(t, q.Flush()) // the writer lists "a"
			require.NoError(t, r.DeleteConsumer("a"))
			if op == "delete" {
				require.ErrorIs(t, q.DeleteConsumer("a"), ErrUnknownConsumer)
				require.Empty(t, q.Consumers())
				return
			}
			c, err := q.NewConsumer("a")
			require.NoError(t, err)
			m, err := c.Dequeue()
			require.NoError(t, err)
			require.Equal(t, "m", string(m))
			require.Equal(t, []string{"a"}, q.Consumers())
		})
	}
}
