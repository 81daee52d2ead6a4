package bigqueue

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireRead reads the next message of c and checks that it is message
// seq of size bytes at offset seq.
func requireRead(t *testing.T, c *Consumer, seq uint64, size int) {
	t.Helper()
	m, err := c.Read()
	require.NoError(t, err, "read at offset %d", seq)
	require.Equal(t, seq, m.Offset)
	requireSeqMessage(t, m.Data, seq, size)
}

func TestReadCommitReopen(t *testing.T) {
	dir := t.TempDir()
	q := filledQueue(t, dir, 20, 100)
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	for i := range uint64(5) {
		requireRead(t, c, i, 100)
	}
	require.Equal(t, uint64(5), c.Cursor())
	require.Equal(t, uint64(0), c.Committed(), "Read commits nothing")
	require.Equal(t, 15, c.Len(), "Len looks from the cursor")
	require.NoError(t, c.Commit())
	require.Equal(t, uint64(5), c.Committed())
	for i := uint64(5); i < 9; i++ {
		requireRead(t, c, i, 100)
	}
	oldest, next := q.Offsets()
	require.Equal(t, [2]uint64{0, 20}, [2]uint64{oldest, next})

	// A kill -9: read-but-uncommitted messages 5..8 come again.
	dst := t.TempDir()
	writeQueueDir(t, dst, readQueueDir(t, dir))
	r := smallQueue(t, dst)
	rc, err := r.NewConsumer("c")
	require.NoError(t, err)
	require.Equal(t, uint64(5), rc.Cursor())
	require.Equal(t, uint64(5), rc.Committed())
	requireRead(t, rc, 5, 100)

	// Dequeue is Read then Commit.
	msg, err := rc.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, msg, 6, 100)
	require.Equal(t, uint64(7), rc.Committed())
	require.Equal(t, uint64(7), rc.Cursor())
}

func TestSeekAndCommitOffset(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	const n = 300
	for i := range uint64(n) {
		require.NoError(t, q.Enqueue(seqMessage(i, messageSize(i))))
	}
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	require.ErrorIs(t, c.Seek(n+1), ErrOffsetOutOfRange)
	require.ErrorIs(t, c.CommitOffset(n+1), ErrOffsetOutOfRange)

	require.NoError(t, c.Seek(n))
	_, err = c.Read()
	require.ErrorIs(t, err, ErrEmptyQueue)
	require.NoError(t, c.Seek(200))
	requireRead(t, c, 200, messageSize(200))
	require.NoError(t, c.Seek(3)) // back
	requireRead(t, c, 3, messageSize(3))
	require.Equal(t, uint64(0), c.Committed(), "Seek commits nothing")

	require.NoError(t, c.CommitOffset(150))
	require.Equal(t, uint64(150), c.Committed())
	require.Equal(t, uint64(4), c.Cursor(), "CommitOffset leaves the cursor")
	require.NoError(t, q.Flush())
	require.NoError(t, c.CommitOffset(100)) // back, behind the flushed one
	require.NoError(t, q.Close())

	q = smallQueue(t, dir)
	c, err = q.NewConsumer("c")
	require.NoError(t, err)
	require.Equal(t, uint64(100), c.Cursor(), "a reopened queue resumes at the committed offset")
	requireRead(t, c, 100, messageSize(100))
}

// TestSeekEveryOffset seeks to every offset of a queue whose records start
// at every offset around an arena's end, in random order, mapped and
// through windows, before and after a reopen (the offset index then comes
// from offsets.dat).
func TestSeekEveryOffset(t *testing.T) {
	const a = testArenaSize
	var sizes []int
	for d := -2 * headerSize; d <= 2*headerSize; d++ {
		sizes = append(sizes, a-headerSize+d, 8+(d+2*headerSize)%7, 2*a+d)
	}
	for _, maxMem := range []int{0, 3} {
		dir := t.TempDir()
		opts := []Option{SetMaxInMemArenas(maxMem)}
		q := smallQueue(t, dir, opts...)
		for i, size := range sizes {
			require.NoError(t, q.Enqueue(seqMessage(uint64(i), size)))
		}
		for round := range 2 {
			c, err := q.NewConsumer("c")
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(uint64(maxMem), uint64(round)))
			for _, o := range rng.Perm(len(sizes)) {
				require.NoError(t, c.Seek(uint64(o)))
				requireRead(t, c, uint64(o), sizes[o])
			}
			require.NoError(t, q.Close())
			q = smallQueue(t, dir, opts...)
		}
	}
}

// TestSeekWithoutOffsetIndex: a queue whose offsets.dat is missing (as one
// written before it existed) or damaged still seeks, walking further.
func TestSeekWithoutOffsetIndex(t *testing.T) {
	for _, damage := range []string{"missing", "garbage", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			q := smallQueue(t, dir)
			for i := range uint64(200) {
				require.NoError(t, q.Enqueue(seqMessage(i, messageSize(i))))
			}
			require.NoError(t, q.Close())
			path := filepath.Join(dir, offsetsName)
			switch damage {
			case "missing":
				require.NoError(t, os.Remove(path))
			case "garbage":
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				for i := offsetsHeaderSize; i < len(b); i += 7 {
					b[i] ^= 0x5a
				}
				require.NoError(t, os.WriteFile(path, b, 0o644))
			case "truncated":
				require.NoError(t, os.Truncate(path, offsetsHeaderSize+offsetsEntrySize*3+5))
			}
			q = smallQueue(t, dir)
			c, err := q.NewConsumer("c")
			require.NoError(t, err)
			for _, o := range []uint64{150, 7, 199, 0, 120} {
				require.NoError(t, c.Seek(o))
				requireRead(t, c, o, messageSize(o))
			}
			require.NoError(t, q.Check())
		})
	}
}

func TestRetention(t *testing.T) {
	fillN := func(t *testing.T, n uint64, size int, opts ...Option) *MmapQueue {
		q := smallQueue(t, t.TempDir(), opts...)
		for i := range n {
			require.NoError(t, q.Enqueue(seqMessage(i, size)))
		}
		for range n {
			_, err := q.Dequeue()
			require.NoError(t, err)
		}
		require.NoError(t, q.Flush())
		return q
	}
	fill := func(t *testing.T, opts ...Option) *MmapQueue { return fillN(t, 200, 200, opts...) }
	t.Run("none", func(t *testing.T) {
		q := fill(t)
		oldest, next := q.Offsets()
		require.Equal(t, uint64(200), next)
		require.Greater(t, oldest, uint64(180), "every arena behind the consumer went")
	})
	t.Run("all", func(t *testing.T) {
		q := fill(t, SetRetention(-1))
		oldest, _ := q.Offsets()
		require.Equal(t, uint64(0), oldest)
		late, err := q.NewConsumer("late")
		require.NoError(t, err)
		requireRead(t, late, 0, 200) // replays the whole history, as the reference
	})
	t.Run("bytes", func(t *testing.T) {
		const keep = 5 * testArenaSize / 2
		q := fill(t, SetRetention(keep))
		oldest, next := q.Offsets()
		kept := (next - oldest) * 200
		require.GreaterOrEqual(t, kept, uint64(keep), "at least the newest %d bytes of messages", keep)
		require.Less(t, kept, uint64(keep+2*testArenaSize), "whole arenas beyond it go")
		c, err := q.NewConsumer("replay")
		require.NoError(t, err)
		require.NoError(t, c.Seek(oldest))
		requireRead(t, c, oldest, 200)
	})
	t.Run("small-messages", func(t *testing.T) {
		// Headers are 44% of these records: bytes of messages, not of
		// records, are what is kept.
		const keep, size = 2 * testArenaSize, 20
		q := fillN(t, 2000, size, SetRetention(keep))
		oldest, next := q.Offsets()
		kept := (next - oldest) * size
		require.GreaterOrEqual(t, kept, uint64(keep), "at least the newest %d bytes of messages", keep)
		require.Less(t, (next-oldest)*(size+headerSize), uint64(keep*(size+headerSize)/size+2*testArenaSize), "whole arenas beyond it go")
	})
	t.Run("empty-messages", func(t *testing.T) {
		// Empty messages never add up to a byte: every one is kept.
		q := fillN(t, 1000, 0, SetRetention(1))
		oldest, _ := q.Offsets()
		require.Equal(t, uint64(0), oldest)
	})
	_, err := NewMmapQueue(t.TempDir(), SetRetention(-2))
	require.ErrorIs(t, err, ErrInvalidRetention)
}

func TestMessagesIterator(t *testing.T) {
	q := filledQueue(t, t.TempDir(), 10, 50)
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []uint64
	var last error
	for m, err := range c.Messages(ctx) {
		if err != nil {
			last = err
			break
		}
		requireSeqMessage(t, m.Data, m.Offset, 50)
		got = append(got, m.Offset)
		if m.Offset == 4 {
			require.NoError(t, c.Commit())
		}
		if m.Offset == 9 {
			cancel() // the next ReadWait returns ctx.Err()
		}
	}
	require.ErrorIs(t, last, context.Canceled)
	require.Equal(t, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, got)
	require.Equal(t, uint64(5), c.Committed(), "the iterator never commits")
	require.Equal(t, uint64(10), c.Cursor())
}

// TestReadDamagedThenSkip: a damaged message stops Read with ErrCorrupt
// naming its offset and leaves the cursor; Seek past it reads on.
func TestReadDamagedThenSkip(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	var ends []int64
	for i := range uint64(100) {
		require.NoError(t, q.Enqueue(seqMessage(i, 300)))
		ends = append(ends, q.tail.pos)
	}
	require.NoError(t, q.Close())
	// Flip a payload byte of message 40, and the header magic of 60.
	flip := func(pos int64) {
		id, off := (&stream{size: testArenaSize}).arenaOf(pos)
		path := filepath.Join(dir, arenaName(id))
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		b[off] ^= 0xff
		require.NoError(t, os.WriteFile(path, b, 0o644))
	}
	layout := &stream{size: testArenaSize}
	flip(layout.recordStart(ends[39]) + headerSize + 20)
	flip(layout.recordStart(ends[59]))

	q = smallQueue(t, dir)
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	require.NoError(t, c.Seek(39))
	requireRead(t, c, 39, 300)
	_, err = c.Read()
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), "offset 40")
	require.Equal(t, uint64(40), c.Cursor(), "the cursor stays")
	require.NoError(t, c.Seek(41), "the length of a record with a bad checksum is trusted")
	requireRead(t, c, 41, 300)

	require.NoError(t, c.Seek(59))
	requireRead(t, c, 59, 300)
	_, err = c.Read()
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), "offset 60")
	require.Error(t, c.Seek(60+1), "a bad header cannot be walked past")
	// The first offset of the next arena is always reachable.
	next, _ := layout.arenaOf(layout.recordStart(ends[59]))
	first := -1
	for i := 60; i < 100; i++ {
		if id, _ := layout.arenaOf(layout.recordStart(ends[i-1])); id > next {
			first = i
			break
		}
	}
	require.Positive(t, first)
	require.NoError(t, c.Seek(uint64(first)))
	for i := first; i < 100; i++ {
		requireRead(t, c, uint64(i), 300)
	}
	_, err = c.Read()
	require.True(t, errors.Is(err, ErrEmptyQueue))
}

// TestOffsetIndexCompacts: offsets.dat gains an entry an arena and drops
// those of retired arenas when they are most of it, so its size follows
// the queue, not its history; seeking works after a reopen.
func TestOffsetIndexCompacts(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	seq := uint64(0)
	for round := range 4 {
		for range 450 * testArenaSize / 512 { // 450 arenas of 512-byte records
			require.NoError(t, q.Enqueue(seqMessage(seq, 512-headerSize)))
			seq++
		}
		for c.Len() > 100 {
			_, err := c.Dequeue()
			require.NoError(t, err)
			_, err = q.Dequeue()
			require.NoError(t, err)
		}
		require.NoError(t, q.Flush())
		fi, err := os.Stat(filepath.Join(dir, offsetsName))
		require.NoError(t, err)
		entries := (fi.Size() - offsetsHeaderSize) / offsetsEntrySize
		require.LessOrEqual(t, entries, int64(1024+64), "round %d: %d entries (of %d arenas so far)", round, entries, (round+1)*450)
	}
	require.NoError(t, q.Close())
	q = smallQueue(t, dir)
	c, err = q.NewConsumer("c")
	require.NoError(t, err)
	oldest, next := q.Offsets()
	require.Equal(t, seq, next)
	for _, o := range []uint64{oldest, next - 1, (oldest + next) / 2} {
		require.NoError(t, c.Seek(o))
		requireRead(t, c, o, 512-headerSize)
	}
}
