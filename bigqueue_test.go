package bigqueue

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	_, err := NewMmapQueue(dir, SetArenaSize(os.Getpagesize()-1))
	require.ErrorIs(t, err, ErrTooSmallArenaSize)
	for _, n := range []int{1, 2} {
		_, err = NewMmapQueue(dir, SetMaxInMemArenas(n))
		require.ErrorIs(t, err, ErrTooFewInMemArenas)
	}
	for _, n := range []int{0, 3, 10} {
		q, err := NewMmapQueue(dir, SetMaxInMemArenas(n), SetArenaSize(testArenaSize))
		require.NoError(t, err, "max in mem %d", n)
		require.NoError(t, q.Close())
	}
	c := defaultConfig()
	assert.Equal(t, 128<<20, c.arenaSize)
	assert.Equal(t, 3, c.maxInMemArenas)
	assert.Equal(t, int64(1_000_000), c.flushOps)
	assert.Equal(t, time.Second, c.flushPeriod)
	assert.Equal(t, int64(0), c.maxDiskUsage)
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := NewMmapQueue(filepath.Join(t.TempDir(), "nope"))
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestOpenFileNotDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	_, err := NewMmapQueue(path)
	require.Error(t, err)
}

func TestReopenWithOtherArenaSize(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	require.NoError(t, q.Close())
	_, err := NewMmapQueue(dir, SetArenaSize(2*testArenaSize))
	require.ErrorIs(t, err, ErrInvalidArenaSize)
	size, err := ReadArenaSize(dir)
	require.NoError(t, err)
	assert.Equal(t, testArenaSize, size)
	_, err = ReadArenaSize(t.TempDir())
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestReferenceDirectoryIsIncompatible(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, referenceMetadataName), make([]byte, 56), 0o644))
	_, err := NewMmapQueue(dir)
	require.ErrorIs(t, err, ErrIncompatibleVersion)
}

func TestEnqueueDequeueFIFO(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	assert.True(t, q.IsEmpty())
	_, err := q.Dequeue()
	require.ErrorIs(t, err, ErrEmptyQueue)
	_, err = q.DequeueString()
	require.ErrorIs(t, err, ErrEmptyQueue)
	_, err = q.Peek()
	require.ErrorIs(t, err, ErrEmptyQueue)

	const n = 500
	for i := range uint64(n) {
		require.NoError(t, q.Enqueue(seqMessage(i, messageSize(i))))
	}
	assert.False(t, q.IsEmpty())
	assert.Equal(t, n, q.Len())
	for i := range uint64(n) {
		if i%2 == 0 {
			p, err := q.Peek()
			require.NoError(t, err)
			requireSeqMessage(t, p, i, messageSize(i))
		}
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, i, messageSize(i))
		assert.Equal(t, n-int(i)-1, q.Len())
	}
	assert.True(t, q.IsEmpty())
}

func TestStrings(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	words := []string{"", "a", "héllo, wörld", string(bytes.Repeat([]byte("xyz"), 3000))}
	for _, w := range words {
		require.NoError(t, q.EnqueueString(w))
	}
	for _, w := range words {
		got, err := q.DequeueString()
		require.NoError(t, err)
		require.Equal(t, w, got)
	}
}

func TestZeroLengthMessages(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	for range 1000 { // 16-byte records: crosses several arenas
		require.NoError(t, q.Enqueue(nil))
	}
	require.NoError(t, q.Close())
	q = smallQueue(t, dir)
	require.Equal(t, 1000, q.Len())
	for range 1000 {
		m, err := q.Dequeue()
		require.NoError(t, err)
		require.NotNil(t, m)
		require.Empty(t, m)
	}
	_, err := q.Dequeue()
	require.ErrorIs(t, err, ErrEmptyQueue)
}

func TestMessagesLargerThanArena(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir, SetMaxInMemArenas(3))
	sizes := []int{testArenaSize * 5, 1, testArenaSize*3 + 17, 0, 1 << 20}
	for i, s := range sizes {
		require.NoError(t, q.Enqueue(seqMessage(uint64(i), s+8)))
	}
	require.NoError(t, q.Close())
	q = smallQueue(t, dir, SetMaxInMemArenas(3))
	for i, s := range sizes {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, uint64(i), s+8)
	}
}

func TestDequeueReturnsOwnedSlice(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	require.NoError(t, q.Enqueue([]byte("first")))
	require.NoError(t, q.Enqueue([]byte("second")))
	a, err := q.Dequeue()
	require.NoError(t, err)
	a[0] = 'X' // must not touch the queue's memory
	q2, err := q.NewConsumer("c")
	require.NoError(t, err)
	m, err := q2.Dequeue()
	require.NoError(t, err)
	require.Equal(t, "first", string(m))
}

func TestDequeueAppend(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	require.NoError(t, q.Enqueue([]byte("abc")))
	require.NoError(t, q.Enqueue([]byte("defg")))
	buf := make([]byte, 0, 64)
	buf = append(buf, "x:"...)
	out, err := q.DequeueAppend(buf)
	require.NoError(t, err)
	require.Equal(t, "x:abc", string(out))
	require.Equal(t, &buf[:1][0], &out[:1][0], "appended in place")
	out, err = q.DequeueAppend(out[:0])
	require.NoError(t, err)
	require.Equal(t, "defg", string(out))
	out, err = q.DequeueAppend(out)
	require.ErrorIs(t, err, ErrEmptyQueue)
	require.Equal(t, "defg", string(out), "dst unchanged on error")
}

func TestEnqueueBatch(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	require.NoError(t, q.EnqueueBatch(nil))
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = seqMessage(uint64(i), messageSize(uint64(i)))
	}
	require.NoError(t, q.EnqueueBatch(batch))
	require.Equal(t, 100, q.Len())
	require.NoError(t, q.Close())
	q = smallQueue(t, dir)
	for i := range batch {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, uint64(i), messageSize(uint64(i)))
	}
}

// TestConcurrentProducersConsumers checks that concurrent producers and
// consumers lose nothing, duplicate nothing and keep each producer's order.
func TestConcurrentProducersConsumers(t *testing.T) {
	q := smallQueue(t, t.TempDir(), SetMaxInMemArenas(4), SetPeriodicFlushOps(500))
	const producers, perProducer, consumers = 4, 2000, 3
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProducer {
				seq := uint64(p)<<32 | uint64(i)
				if err := q.Enqueue(seqMessage(seq, messageSize(uint64(i)))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	got := make([][]uint64, consumers)
	done := make(chan struct{})
	var cwg sync.WaitGroup
	for c := range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				m, err := q.Dequeue()
				if errors.Is(err, ErrEmptyQueue) {
					select {
					case <-done:
						if q.IsEmpty() {
							return
						}
					default:
					}
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				seq := leUint64(m)
				if len(m) != messageSize(seq&0xffffffff) || string(m) != string(seqMessage(seq, len(m))) {
					t.Errorf("bad message %x", seq)
				}
				mu.Lock()
				got[c] = append(got[c], seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(done)
	cwg.Wait()

	seen := make(map[uint64]bool)
	for c := range consumers {
		last := make(map[uint64]int64)
		for _, seq := range got[c] {
			require.False(t, seen[seq], "duplicate %x", seq)
			seen[seq] = true
			p, i := seq>>32, int64(seq&0xffffffff)
			if prev, ok := last[p]; ok {
				require.Greater(t, i, prev, "producer %d out of order for consumer %d", p, c)
			}
			last[p] = i
		}
	}
	require.Len(t, seen, producers*perProducer)
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// TestMappedWindow: under a memory cap, arenas of mapWindowMin bytes or more
// that are not mapped are read through a window that maps a part of the
// arena at a time: messages that cross the window's end, that are larger
// than it (read straight into the result), empty or a few bytes come back
// whole, both as this queue wrote them (a consumer reading behind the
// writer) and as found on disk after a reopen (checksums verified through
// the window); the window's mapping is counted while it lives and released
// when the arena is retired and at Close.
func TestMappedWindow(t *testing.T) {
	const arena = 2 * mapWindowMin
	base := mappedArenas.Load()
	dir := t.TempDir()
	opts := []Option{SetArenaSize(arena), SetMaxInMemArenas(3), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	var sizes []int
	for range 2 {
		sizes = append(sizes, 300<<10, 300<<10, 300<<10, 300<<10, 300<<10, 3*mapWindowSize/2, 5,
			mapWindowSize+1, 0, 700<<10, 64<<10, mapWindowSize-headerSize)
	}
	type reader interface {
		Dequeue() ([]byte, error)
		DequeueAppend(dst []byte) ([]byte, error)
	}
	read := func(c reader, i int) {
		t.Helper()
		if i%2 == 0 {
			m, err := c.Dequeue()
			require.NoError(t, err)
			requireSeqMessage(t, m, uint64(i), sizes[i])
			return
		}
		out, err := c.DequeueAppend([]byte("prefix"))
		require.NoError(t, err)
		require.Equal(t, "prefix", string(out[:6]))
		requireSeqMessage(t, out[6:], uint64(i), sizes[i])
	}

	q := openQueue(t, dir, opts...)
	c, err := q.NewConsumer("behind")
	require.NoError(t, err)
	for i, s := range sizes {
		require.NoError(t, q.Enqueue(seqMessage(uint64(i), s)))
	}
	tailArena, _ := q.s.arenaOf(q.tail.pos)
	require.True(t, q.s.am.mapping(tailArena) != nil, "the writer's arena stays mapped")
	require.True(t, q.s.am.mapping(0) == nil, "the first arenas were unmapped under the cap")
	read(c, 0)
	require.True(t, c.st.win.mapped != nil, "an unmapped arena of %d bytes is read through a mapping", arena)
	require.Equal(t, int64(len(q.s.am.mapped)+1), mappedArenas.Load()-base, "the window's mapping is counted")
	for i := 1; i < len(sizes); i++ {
		read(c, i)
	}
	require.NoError(t, q.Close())
	require.Equal(t, base, mappedArenas.Load(), "every mapping released at Close")

	q = openQueue(t, dir, opts...)
	// A record that starts inside a page, in an unmapped arena: the
	// window maps from the page before it.
	seek, err := q.NewConsumer("seek")
	require.NoError(t, err)
	require.NoError(t, seek.Seek(4))
	m, err := seek.Read()
	require.NoError(t, err)
	requireSeqMessage(t, m.Data, 4, sizes[4])
	require.NotZero(t, seek.st.win.off%mapWindowSize, "a window mapped from inside the arena's first window")
	require.NoError(t, q.DeleteConsumer("seek"))
	for i := range sizes {
		read(q, i)
	}
	require.NoError(t, q.Close())
	require.Equal(t, base, mappedArenas.Load(), "every mapping released at Close")
}

// TestWindowShortArena: under a memory cap, arenas that are not mapped are
// read through a window, with pread. An arena file that this session's
// writer sized is opened without checking its size again; cut short behind
// the queue's back, it still gives only intact messages: those that lie
// whole in what the window read before the cut come back in order, the
// first read that meets the cut fails with ErrCorrupt naming the arena, and
// so does the next; a consumer that seeks to the first message of the next
// arena reads on from there. After a reopen the file is one found on disk:
// its size is checked as it is opened, and a consumer that reaches it gets
// ErrCorrupt at its first message.
func TestWindowShortArena(t *testing.T) {
	const arena, size, n, cut = 256 << 10, 1000, 1100, 100 << 10
	const rec = headerSize + size
	dir := t.TempDir()
	opts := []Option{SetArenaSize(arena), SetMaxInMemArenas(3), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	q := openQueue(t, dir, opts...)
	_, err := q.NewConsumer("late") // keeps every arena on disk
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, q.Enqueue(seqMessage(uint64(i), size)))
	}
	var starts []int64
	for i, pos := 0, int64(0); i < n; i++ {
		pos = q.s.recordStart(pos)
		starts = append(starts, pos)
		pos += rec
	}
	require.Nil(t, q.s.am.mapping(1), "arena 1 is read through a window")
	require.NoError(t, os.Truncate(filepath.Join(dir, arenaName(1)), cut))

	got := 0
	for ; got < n; got++ {
		var m []byte
		if m, err = q.Dequeue(); err != nil {
			break
		}
		requireSeqMessage(t, m, uint64(got), size)
	}
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, filepath.Join(dir, arenaName(1)))
	require.LessOrEqual(t, starts[got-1]+rec, int64(arena+cut), "nothing past the cut was served")
	require.Greater(t, starts[got]+rec, int64(arena+windowSize)-rec, "the messages in arena 1's first window were served")
	_, err = q.Dequeue()
	require.ErrorIs(t, err, ErrCorrupt, "the same error again")

	next := 0
	for starts[next] < 2*arena {
		next++
	}
	c, err := q.NewConsumer("skip")
	require.NoError(t, err)
	require.NoError(t, c.Seek(uint64(next)))
	for i := next; i < n; i++ {
		m, err := c.Read()
		require.NoError(t, err)
		require.Equal(t, uint64(i), m.Offset)
		requireSeqMessage(t, m.Data, uint64(i), size)
	}
	require.NoError(t, q.Close())

	q = openQueue(t, dir, opts...)
	require.NoError(t, q.Enqueue([]byte("the writer takes its arena")))
	late, err := q.NewConsumer("late")
	require.NoError(t, err)
	for i := 0; ; i++ {
		m, err := late.Read()
		if starts[i]+rec > arena {
			require.ErrorIs(t, err, ErrCorrupt, "message %d, the first in the short arena", i)
			require.ErrorContains(t, err, filepath.Join(dir, arenaName(1)))
			break
		}
		require.NoError(t, err)
		requireSeqMessage(t, m.Data, uint64(i), size)
		require.NoError(t, late.Commit())
	}
}

// TestWindowLargeMessages: under a memory cap, messages of more than a
// window (64 KiB) in arenas that are not mapped are read partly from the
// window the header's read filled and partly straight into the result, by
// Dequeue (a new slice) and DequeueAppend (after bytes already there), and
// come back whole; the checksums of records found on disk are verified on
// the way.
func TestWindowLargeMessages(t *testing.T) {
	const arena = 256 << 10
	dir := t.TempDir()
	opts := []Option{SetArenaSize(arena), SetMaxInMemArenas(3), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	sizes := []int{100 << 10, 64<<10 - 16, 64 << 10, 64<<10 + 1, 200 << 10, 300 << 10, 5, 130 << 10}
	q := openQueue(t, dir, opts...)
	for i, s := range sizes {
		require.NoError(t, q.Enqueue(seqMessage(uint64(i), s)))
	}
	require.NoError(t, q.Close())

	q = openQueue(t, dir, opts...)
	for i, s := range sizes {
		if i%2 == 0 {
			m, err := q.Dequeue()
			require.NoError(t, err)
			requireSeqMessage(t, m, uint64(i), s)
			continue
		}
		out, err := q.DequeueAppend([]byte("prefix"))
		require.NoError(t, err)
		require.Equal(t, "prefix", string(out[:6]))
		requireSeqMessage(t, out[6:], uint64(i), s)
	}
}
