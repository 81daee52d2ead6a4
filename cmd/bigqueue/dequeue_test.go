package main

import (
	"bytes"
	"errors"
	"fmt"
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

	for _, args := range [][]string{{"dequeue", dir}, {"stat", dir}, {"check", dir}, {"enqueue", dir}} {
		r := runTool(t, "y\n", args...)
		assertOneLineError(t, r, exitFail, "queue "+dir+" is in use by another process")
	}
	assert.Equal(t, 1, q.Len(), "nothing was enqueued or dequeued")
}

// fakeSource serves messages from a slice, like a queue would.
type fakeSource struct {
	msgs []string
	err  error // returned once the messages run out, instead of ErrEmptyQueue
}

func (f *fakeSource) DequeueAppend(dst []byte) ([]byte, error) {
	if len(f.msgs) == 0 {
		if f.err != nil {
			return dst, f.err
		}
		return dst, bigqueue.ErrEmptyQueue
	}
	m := f.msgs[0]
	f.msgs = f.msgs[1:]
	return append(dst, m...), nil
}

func (f *fakeSource) Peek() ([]byte, error) {
	if len(f.msgs) == 0 {
		return nil, bigqueue.ErrEmptyQueue
	}
	return []byte(f.msgs[0]), nil
}

// failingWriter accepts ok writes, then fails every write.
type failingWriter struct {
	ok     int
	writes int
	got    bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.ok {
		return 0, errors.New("broken pipe")
	}
	return w.got.Write(p)
}

func TestDequeueToWritesInBlocks(t *testing.T) {
	big := strings.Repeat("b", 40<<10)
	src := &fakeSource{msgs: []string{"a", big, big, "c", big, "d"}}
	w := &failingWriter{ok: 100}
	require.NoError(t, dequeueTo(src, 0, w))
	assert.Equal(t, lines("a", big, big, "c", big, "d"), w.got.String())
	assert.Equal(t, 2, w.writes, "one write per filled 64 KiB block, then the rest")
}

func TestDequeueToReportsLostMessages(t *testing.T) {
	big := strings.Repeat("b", 40<<10)
	// The first block (a, big, big) is written; the second (c, big, big) fails.
	src := &fakeSource{msgs: []string{"a", big, big, "c", big, big, "d", "e"}}
	w := &failingWriter{ok: 1}
	err := dequeueTo(src, 0, w)
	assert.ErrorContains(t, err, "write stdout: broken pipe (3 dequeued messages were not written and are lost)")
	assert.Equal(t, lines("a", big, big), w.got.String())
	assert.Equal(t, []string{"d", "e"}, src.msgs, "dequeue stops at the failed write")
}

func TestDequeueToWritesWhatItHasOnError(t *testing.T) {
	src := &fakeSource{msgs: []string{"a", "b"}, err: bigqueue.ErrCorrupt}
	w := &failingWriter{ok: 100}
	err := dequeueTo(src, 0, w)
	assert.ErrorIs(t, err, bigqueue.ErrCorrupt)
	assert.Equal(t, "a\nb\n", w.got.String(), "messages dequeued before the error are not lost")
}

func TestDequeueToLimit(t *testing.T) {
	src := &fakeSource{msgs: []string{"a", "b", "c"}}
	var out bytes.Buffer
	require.NoError(t, dequeueTo(src, 2, &out))
	assert.Equal(t, "a\nb\n", out.String())
	assert.Equal(t, []string{"c"}, src.msgs)
}
