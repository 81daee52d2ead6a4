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

func TestConsumers(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	for i := range uint64(10) {
		require.NoError(t, q.Enqueue(seqMessage(i, 100)))
	}
	for range 3 {
		_, err := q.Dequeue()
		require.NoError(t, err)
	}
	// A new consumer starts at the oldest message kept, not at the default
	// consumer's position.
	c, err := q.NewConsumer("a/b")
	require.NoError(t, err)
	assert.Equal(t, "a/b", c.Name())
	assert.Equal(t, 10, c.Len())
	for i := range uint64(4) {
		m, err := c.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, i, 100)
	}
	// The same name is the same consumer.
	c2, err := q.NewConsumer("a/b")
	require.NoError(t, err)
	assert.Equal(t, 6, c2.Len())
	// FromConsumer copies the position.
	d, err := q.FromConsumer("../x", c)
	require.NoError(t, err)
	m, err := d.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, m, 4, 100)
	assert.Equal(t, 6, c.Len(), "copy is independent")
	_, err = q.NewConsumer("ünïcode ✓")
	require.NoError(t, err)
	assert.Equal(t, []string{"../x", "a/b", "ünïcode ✓"}, q.Consumers())

	// Positions survive a restart.
	require.NoError(t, q.Close())
	q = smallQueue(t, dir)
	assert.Equal(t, []string{"../x", "a/b", "ünïcode ✓"}, q.Consumers())
	assert.Equal(t, 7, q.Len())
	c, err = q.NewConsumer("a/b")
	require.NoError(t, err)
	m, err = c.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, m, 4, 100)
	d, err = q.NewConsumer("../x")
	require.NoError(t, err)
	m, err = d.Peek()
	require.NoError(t, err)
	requireSeqMessage(t, m, 5, 100)
	// "../x" must not have escaped the directory.
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotEqual(t, "x", e.Name())
	}
}

func TestConsumerNames(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	_, err := q.NewConsumer("")
	require.ErrorIs(t, err, ErrInvalidConsumerName)
	_, err = q.NewConsumer(string(make([]byte, MaxConsumerNameLen+1)))
	require.ErrorIs(t, err, ErrInvalidConsumerName)
	c, err := q.NewConsumer(string(bytes.Repeat([]byte{0xff}, MaxConsumerNameLen)))
	require.NoError(t, err)
	assert.Len(t, c.Name(), MaxConsumerNameLen)
	_, err = q.NewConsumer("__default__")
	require.NoError(t, err)
}

func TestFromConsumerDifferentQueues(t *testing.T) {
	q1 := smallQueue(t, t.TempDir())
	q2 := smallQueue(t, t.TempDir())
	c, err := q1.NewConsumer("c")
	require.NoError(t, err)
	_, err = q2.FromConsumer("c", c)
	require.ErrorIs(t, err, ErrDifferentQueues)
	_, err = q2.FromConsumer("c", nil)
	require.ErrorIs(t, err, ErrDifferentQueues)
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

// TestMemoryCap checks that no more than SetMaxInMemArenas arenas are ever
// mapped, with a writer and two readers spread over many arenas.
func TestMemoryCap(t *testing.T) {
	for _, limit := range []int{3, 5} {
		q := smallQueue(t, t.TempDir(), SetMaxInMemArenas(limit))
		c, err := q.NewConsumer("slow")
		require.NoError(t, err)
		maxMapped := 0
		observe := func() {
			q.mu.Lock()
			maxMapped = max(maxMapped, len(q.s.am.mapped))
			q.mu.Unlock()
		}
		for i := range uint64(3000) {
			require.NoError(t, q.Enqueue(seqMessage(i, messageSize(i))))
			observe()
			if i%2 == 0 {
				m, err := q.Dequeue()
				require.NoError(t, err)
				requireSeqMessage(t, m, i/2, messageSize(i/2))
				observe()
			}
			if i%5 == 0 {
				m, err := c.Dequeue()
				require.NoError(t, err)
				requireSeqMessage(t, m, i/5, messageSize(i/5))
				observe()
			}
		}
		require.Greater(t, q.s.am.count(), 3*limit, "test must span many arenas")
		require.LessOrEqual(t, maxMapped, limit)
		require.Equal(t, limit, maxMapped, "the cap is used")
	}
}

func TestNoMemoryCapMapsEverything(t *testing.T) {
	q := smallQueue(t, t.TempDir(), SetMaxInMemArenas(0))
	for i := range uint64(500) {
		require.NoError(t, q.Enqueue(seqMessage(i, 200)))
	}
	require.Equal(t, q.s.am.count(), len(q.s.am.mapped))
}

// TestMmapENOMEMEvicts checks that a refused mapping evicts and retries.
func TestMmapENOMEMEvicts(t *testing.T) {
	q := smallQueue(t, t.TempDir(), SetMaxInMemArenas(0))
	for i := range uint64(200) {
		require.NoError(t, q.Enqueue(seqMessage(i, 200)))
	}
	real := mmapFile
	t.Cleanup(func() { mmapFile = real })
	q.mu.Lock()
	mappedBefore := len(q.s.am.mapped)
	q.mu.Unlock()
	refusals := 0
	mmapFile = func(fd, size int) ([]byte, error) {
		if refusals < 2 {
			refusals++
			return nil, errENOMEMForTest
		}
		return real(fd, size)
	}
	c, err := q.NewConsumer("c") // reads from arena 0, which stays mapped
	require.NoError(t, err)
	q.mu.Lock()
	require.NoError(t, q.s.am.evict()) // unmap one so the next read must map
	q.mu.Unlock()
	for i := range uint64(200) {
		m, err := c.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, i, 200)
		if i == 0 {
			// One evicted by hand, one per refusal, then arena 0 mapped.
			q.mu.Lock()
			require.Equal(t, mappedBefore-2, len(q.s.am.mapped))
			q.mu.Unlock()
		}
	}
	require.Equal(t, 2, refusals)
}

// TestMapLimitEvicts checks that the queues of a process share mapLimit:
// past it, a queue without SetMaxInMemArenas unmaps its own least recently
// used arenas, and every arena unmapped is counted off again.
func TestMapLimitEvicts(t *testing.T) {
	base := mappedArenas.Load()
	real := mapLimit
	t.Cleanup(func() { mapLimit = real })
	const limit = 8
	mapLimit = func() int64 { return base + limit }

	q1 := smallQueue(t, t.TempDir(), SetMaxInMemArenas(0))
	q2 := smallQueue(t, t.TempDir(), SetMaxInMemArenas(0))
	const n = 500 // about 27 arenas each
	for i := range uint64(n) {
		require.NoError(t, q1.Enqueue(seqMessage(i, 200)))
		require.LessOrEqual(t, mappedArenas.Load()-base, int64(limit))
	}
	require.Equal(t, limit, len(q1.s.am.mapped))
	for i := range uint64(n) {
		require.NoError(t, q2.Enqueue(seqMessage(i, 200)))
		// q1's arenas are q1's to unmap: q2 keeps to one of its own.
		require.LessOrEqual(t, len(q2.s.am.mapped), 1)
	}
	for _, q := range []*MmapQueue{q1, q2} {
		for i := range uint64(n) {
			m, err := q.Dequeue()
			require.NoError(t, err)
			requireSeqMessage(t, m, i, 200)
		}
	}
	require.NoError(t, q1.Close())
	require.NoError(t, q2.Close())
	require.Equal(t, base, mappedArenas.Load(), "every unmapped arena counted off")
}

func TestReadMapLimit(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		content string
		want    int64
	}{{"65530\n", 32765}, {"262144", 131072}, {"garbage", defaultMapLimit}, {"1", defaultMapLimit}} {
		path := filepath.Join(dir, "max_map_count")
		require.NoError(t, os.WriteFile(path, []byte(c.content), 0o644))
		require.Equal(t, c.want, readMapLimit(path), c.content)
	}
	require.Equal(t, int64(defaultMapLimit), readMapLimit(filepath.Join(dir, "missing")))
}
