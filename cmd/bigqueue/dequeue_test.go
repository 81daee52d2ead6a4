package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-ff72c416/bigqueue"
)

// numbered returns n distinct messages "m0", "m1", ...
func numbered(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%d", i)
	}
	return out
}

func TestDequeueLimit(t *testing.T) {
	msgs := numbered(5)
	dir := newQueue(t, msgs...)

	assert.Equal(t, lines(msgs[0:2]...), mustRun(t, "", "dequeue", "-n", "2", dir).stdout)
	assert.Equal(t, lines(msgs[2]), mustRun(t, "", "dequeue", "-n", "1", dir).stdout)
	// -n larger than what is left takes what is left.
	assert.Equal(t, lines(msgs[3:]...), mustRun(t, "", "dequeue", "-n", "10", dir).stdout)
	assert.Empty(t, mustRun(t, "", "dequeue", "-n", "1", dir).stdout)
}

func TestDequeuePeek(t *testing.T) {
	dir := newQueue(t, "head", "second")

	for range 2 {
		r := mustRun(t, "", "dequeue", "-peek", dir)
		assert.Equal(t, "head\n", r.stdout)
	}
	assert.Equal(t, "head\n", mustRun(t, "", "dequeue", "-peek", "-n", "1", dir).stdout)
	// The peeks consumed nothing.
	assert.Equal(t, "head\n", mustRun(t, "", "dequeue", "-n", "1", dir).stdout)
	assert.Equal(t, "second\n", mustRun(t, "", "dequeue", "-peek", dir).stdout)
	assert.Equal(t, "second\n", mustRun(t, "", "dequeue", dir).stdout)
	assert.Empty(t, mustRun(t, "", "dequeue", "-peek", dir).stdout)
}

func TestDequeueConsumers(t *testing.T) {
	msgs := numbered(6)
	dir := newQueue(t, msgs...)

	// Each consumer has its own position, kept across runs.
	assert.Equal(t, lines(msgs[0:2]...), mustRun(t, "", "dequeue", "-consumer", "a", "-n", "2", dir).stdout)
	assert.Equal(t, lines(msgs[0]), mustRun(t, "", "dequeue", "-n", "1", dir).stdout)
	assert.Equal(t, lines(msgs[2]), mustRun(t, "", "dequeue", "-consumer", "a", "-peek", dir).stdout)
	assert.Equal(t, lines(msgs[2:]...), mustRun(t, "", "dequeue", "-consumer", "a", dir).stdout)
	// A new consumer starts at the oldest message still kept.
	assert.Equal(t, lines(msgs...), mustRun(t, "", "dequeue", "-consumer", "b/ünïcode", dir).stdout)
	assert.Equal(t, lines(msgs[1:]...), mustRun(t, "", "dequeue", dir).stdout)
	assert.Empty(t, mustRun(t, "", "dequeue", "-consumer", "a", dir).stdout)
}

func TestDequeueBadConsumerName(t *testing.T) {
	dir := newQueue(t, "x")
	r := runTool(t, "", "dequeue", "-consumer", strings.Repeat("n", 10000), dir)
	assertOneLineError(t, r, exitFail, "consumer")
	// The failed run released the queue.
	assert.Equal(t, "x\n", mustRun(t, "", "dequeue", dir).stdout)
}

func TestQueueInUse(t *testing.T) {
	dir := newQueue(t, "x")
	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(smallArena))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()

	for _, args := range [][]string{{"dequeue", dir}, {"enqueue", dir}} {
		r := runTool(t, "y\n", args...)
		assertOneLineError(t, r, exitFail, "queue "+dir+" is in use by another process")
	}
	// stat and check read beside the program that has the queue open.
	require.NoError(t, q.EnqueueString("z"))
	st := mustRun(t, "", "stat", "-json", dir)
	assert.Contains(t, st.stdout, `"messages": 2`)
	assert.Contains(t, mustRun(t, "", "check", dir).stdout, "ok: ")
	// So do a named consumer's dequeue and the consumers command.
	assert.Equal(t, "x\n", mustRun(t, "", "dequeue", "-consumer", "c", "-n", "1", dir).stdout)
	assert.Contains(t, mustRun(t, "", "consumers", dir).stdout, "c ")
	assert.Equal(t, "z\n", mustRun(t, "", "dequeue", "-consumer", "c", dir).stdout)
	assert.Equal(t, 2, q.Len(), "the tool enqueued and dequeued nothing")
}

// openTestQueue opens (or creates) the queue in dir with small arenas and
// closes it at the end of the test unless the test closed it.
func openTestQueue(t *testing.T, dir string) *bigqueue.MmapQueue {
	t.Helper()
	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(smallArena))
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// failingWriter accepts the first ok bytes written to it, then fails.
type failingWriter struct {
	ok     int
	writes int
	got    bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	room := w.ok - w.got.Len()
	if room >= len(p) {
		return w.got.Write(p)
	}
	w.got.Write(p[:max(room, 0)])
	return max(room, 0), errors.New("broken pipe")
}

func TestOutputFlushCountsWholeFrames(t *testing.T) {
	for _, tt := range []struct {
		ok       int // bytes the writer accepts
		wantDone int
		wantLast uint64
	}{
		{0, 0, 0}, {1, 0, 0}, {2, 1, 10}, {3, 1, 10}, {5, 1, 10}, {6, 2, 11}, {7, 3, 12}, {8, 3, 12},
	} {
		w := &failingWriter{ok: tt.ok}
		o := newOutput(w, frameLines)
		o.add([]byte("a"), 10)   // bytes 0-1
		o.add([]byte("bcd"), 11) // bytes 2-5
		o.add(nil, 12)           // byte 6
		o.add([]byte("e"), 13)   // bytes 7-8
		done, last, err := o.flush()
		assert.ErrorContains(t, err, "write stdout: broken pipe", "ok=%d", tt.ok)
		assert.Equal(t, tt.wantDone, done, "ok=%d", tt.ok)
		assert.Equal(t, tt.wantLast, last, "ok=%d", tt.ok)
		assert.Equal(t, 0, o.pending(), "the buffer is emptied")
	}
	w := &failingWriter{ok: 100}
	o := newOutput(w, frameLines)
	o.add([]byte("a"), 7)
	done, last, err := o.flush()
	require.NoError(t, err)
	assert.Equal(t, 1, done)
	assert.Equal(t, uint64(7), last)
	done, _, err = o.flush()
	assert.NoError(t, err)
	assert.Equal(t, 0, done, "nothing buffered, nothing written")
	assert.Equal(t, 1, w.writes)
}

// enqueueAll enqueues msgs into q.
func enqueueAll(t *testing.T, q *bigqueue.MmapQueue, msgs []string) {
	t.Helper()
	for _, m := range msgs {
		require.NoError(t, q.EnqueueString(m))
	}
}

// bigMessages returns n messages of about 10 KiB, each starting with its
// number.
func bigMessages(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%04d%s", i, strings.Repeat("x", 10<<10))
	}
	return out
}

func TestDrainConsumerWritesInBlocks(t *testing.T) {
	q := openTestQueue(t, t.TempDir())
	msgs := bigMessages(20) // about 200 KiB: four blocks
	enqueueAll(t, q, msgs)
	c, err := q.NewConsumer("c")
	require.NoError(t, err)

	w := &failingWriter{ok: 1 << 30}
	res, err := drainConsumer(context.Background(), c, newOutput(w, frameLines), 0, false)
	require.NoError(t, err)
	assert.Equal(t, drainResult{written: 20, committed: 20}, res)
	assert.Equal(t, lines(msgs...), w.got.String())
	assert.Equal(t, 3, w.writes, "one write per filled 64 KiB block (7 messages), then the rest")
	assert.Equal(t, uint64(20), c.Committed())
}

func TestDrainConsumerCommitsOnlyWhatWasWritten(t *testing.T) {
	dir := t.TempDir()
	q := openTestQueue(t, dir)
	msgs := bigMessages(20)
	enqueueAll(t, q, msgs)
	c, err := q.NewConsumer("c")
	require.NoError(t, err)

	// The first block is written, the second only in part: 7 messages
	// are whole, the 8th is cut.
	frame := len(msgs[0]) + 1
	w := &failingWriter{ok: 7*frame + 100}
	res, err := drainConsumer(context.Background(), c, newOutput(w, frameLines), 0, false)
	assert.ErrorContains(t, err, "write stdout: broken pipe")
	assert.Equal(t, drainResult{written: 7, committed: 7}, res)
	assert.Equal(t, uint64(7), c.Committed(), "the cut message is not committed")
	require.NoError(t, q.Close())

	// Reopened, the consumer resumes with the cut message.
	q = openTestQueue(t, dir)
	c, err = q.NewConsumer("c")
	require.NoError(t, err)
	m, err := c.Read()
	require.NoError(t, err)
	assert.Equal(t, uint64(7), m.Offset)
	assert.Equal(t, msgs[7], string(m.Data))
}

func TestDrainConsumerLimitAndReadError(t *testing.T) {
	q := openTestQueue(t, t.TempDir())
	enqueueAll(t, q, numbered(5))
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	var out bytes.Buffer
	res, err := drainConsumer(context.Background(), c, newOutput(&out, frameLines), 2, false)
	require.NoError(t, err)
	assert.Equal(t, drainResult{written: 2, committed: 2}, res)
	assert.Equal(t, "m0\nm1\n", out.String())
	assert.Equal(t, uint64(2), c.Committed())

	// A failing read (here: the consumer was deleted) is returned.
	require.NoError(t, q.DeleteConsumer("c"))
	_, err = drainConsumer(context.Background(), c, newOutput(&out, frameLines), 0, false)
	assert.ErrorIs(t, err, bigqueue.ErrUnknownConsumer)
}

func TestDrainDefaultCommitsOnlyWhatWasWritten(t *testing.T) {
	q := openTestQueue(t, t.TempDir())
	msgs := numbered(10)
	enqueueAll(t, q, msgs)

	w := &failingWriter{ok: len("m0\nm1\nm2\nm") + 0}
	res, err := drainDefault(context.Background(), q, newOutput(w, frameLines), 0)
	assert.ErrorContains(t, err, "write stdout: broken pipe")
	assert.Equal(t, drainResult{written: 3, committed: 3}, res)
	assert.Equal(t, 4, w.writes, "one write per message")
	assert.Equal(t, 7, q.Len(), "the message that failed stays in the queue")
	head, err := q.Peek()
	require.NoError(t, err)
	assert.Equal(t, "m3", string(head))

	var out bytes.Buffer
	res, err = drainDefault(context.Background(), q, newOutput(&out, frameLines), 5)
	require.NoError(t, err)
	assert.Equal(t, drainResult{written: 5, committed: 5}, res)
	assert.Equal(t, lines(msgs[3:8]...), out.String())
}

func TestDrainStopsWhenInterrupted(t *testing.T) {
	q := openTestQueue(t, t.TempDir())
	enqueueAll(t, q, numbered(3))
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	var out bytes.Buffer
	res, err := drainConsumer(ctx, c, newOutput(&out, frameLines), 0, false)
	require.NoError(t, err)
	assert.Equal(t, drainResult{interrupted: true}, res)
	res, err = drainDefault(ctx, q, newOutput(&out, frameLines), 0)
	require.NoError(t, err)
	assert.Equal(t, drainResult{interrupted: true}, res)
	assert.Empty(t, out.String())
	assert.Equal(t, 3, q.Len())
	assert.Equal(t, 3, c.Len())
}

// drainOutcome is what a drain run in a goroutine returned.
type drainOutcome struct {
	res drainResult
	err error
}

func TestDrainConsumerFollow(t *testing.T) {
	q := openTestQueue(t, t.TempDir())
	enqueueAll(t, q, []string{"backlog0", "backlog1"})
	c, err := q.NewConsumer("c")
	require.NoError(t, err)

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan drainOutcome, 1)
	go func() {
		res, err := drainConsumer(ctx, c, newOutput(pw, frameLines), 0, true)
		done <- drainOutcome{res, err}
		_ = pw.Close()
	}()
	br := bufio.NewReader(pr)
	readLine := func() string {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		return line
	}
	// The backlog, then each new message as it comes: each is written
	// (and the reader gets it) while the follower waits for the next.
	assert.Equal(t, "backlog0\n", readLine())
	assert.Equal(t, "backlog1\n", readLine())
	for i := range 5 {
		msg := fmt.Sprintf("new%d", i)
		require.NoError(t, q.EnqueueString(msg))
		assert.Equal(t, msg+"\n", readLine())
	}
	cancel()
	out := <-done
	require.NoError(t, out.err)
	assert.Equal(t, drainResult{written: 7, committed: 7, interrupted: true}, out.res)
	assert.Equal(t, uint64(7), c.Committed(), "everything written is committed")

	// -n ends a follow too, once enough messages came.
	done2 := make(chan drainOutcome, 1)
	var buf bytes.Buffer
	go func() {
		res, err := drainConsumer(context.Background(), c, newOutput(&buf, frameLines), 2, true)
		done2 <- drainOutcome{res, err}
	}()
	require.NoError(t, q.EnqueueString("a"))
	require.NoError(t, q.EnqueueString("b"))
	out = <-done2
	require.NoError(t, out.err)
	assert.Equal(t, drainResult{written: 2, committed: 2}, out.res)
	assert.Equal(t, "a\nb\n", buf.String())
}

func TestDequeueWriteErrorSaysWhatWasWritten(t *testing.T) {
	for _, consumer := range []string{"", "c"} {
		dir := newQueue(t, numbered(10)...)
		args := []string{"dequeue", dir}
		if consumer != "" {
			args = []string{"dequeue", "-consumer", consumer, dir}
		}
		w := &failingWriter{ok: len("m0\nm1\nm2\nm")}
		var stderr bytes.Buffer
		code := run(args, strings.NewReader(""), w, &stderr)
		r := result{code: code, stderr: stderr.String()}
		assertOneLineError(t, r, exitFail, "write stdout: broken pipe (3 messages written and consumed; nothing lost, the rest stay in the queue)")
		assert.True(t, strings.HasPrefix(r.stderr, "bigqueue: dequeue from "+dir+": "), r.stderr)

		// The rest is all there, starting with the message cut short.
		args[len(args)-1] = dir
		assert.Equal(t, lines(numbered(10)[3:]...), mustRun(t, "", args...).stdout, "consumer %q", consumer)
	}
}

func TestDequeueVerbose(t *testing.T) {
	dir := newQueue(t, "a", "b")
	r := mustRun(t, "", "dequeue", "-v", dir)
	assert.Equal(t, "a\nb\n", r.stdout)
	assert.Equal(t, "dequeued 2 messages from "+dir+"\n", r.stderr)
}

func TestDequeueStopsAtDamage(t *testing.T) {
	// Messages of 100 bytes over four 16 KiB arenas; bytes flipped in the
	// middle of the second.
	msgs := make([]string, 500)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("%06d%s", i, strings.Repeat("x", 94))
	}
	for _, consumer := range []string{"c", ""} {
		dir := newQueue(t, msgs...)
		second := filepath.Join(dir, "arena-1.dat")
		data, err := os.ReadFile(second)
		require.NoError(t, err)
		for i := 8000; i < 8200; i++ {
			data[i] ^= 0xff
		}
		require.NoError(t, os.WriteFile(second, data, 0o644))

		r := runTool(t, "", dequeueArgs(consumer, dir)...)
		n := strings.Count(r.stdout, "\n")
		assert.Equal(t, exitFail, r.code)
		assert.Equal(t, lines(msgs[:n]...), r.stdout, "the messages before the damage are written")
		assert.Greater(t, n, 100)
		assert.Regexp(t, `^bigqueue: dequeue from .*: queue data is corrupt \(`+strconv.Itoa(n)+
			` messages written and consumed; nothing lost, the rest stay in the queue\)\n$`, r.stderr)
		assert.Equal(t, len(msgs), n+backlogOf(t, dir, consumer), "consumed are exactly those written")
	}
}
