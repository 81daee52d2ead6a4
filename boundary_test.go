package bigqueue

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestArenaBoundaries writes messages of every size around the arena size,
// and headers at every offset around an arena's end, then reads them back
// through a consumer, after a reopen and through the default consumer; with
// a power-of-two arena size and another, not a multiple of the page size.
func TestArenaBoundaries(t *testing.T) {
	for _, a := range []int{testArenaSize, testArenaSize + 1000} {
		t.Run(fmt.Sprint(a), func(t *testing.T) { testArenaBoundaries(t, a) })
	}
}

func testArenaBoundaries(t *testing.T, a int) {
	// Every message size within 16 bytes of one and two arenas, each written
	// at three offsets: an arena's start, its middle, its last header slot.
	type pair struct{ off, size int }
	var pairs []pair
	for d := -16; d <= 16; d++ {
		for _, off := range []int{0, a / 2, a - headerSize} {
			pairs = append(pairs, pair{off, a + d}, pair{off, 2*a + d})
		}
	}
	// Every offset within headerSize+8 bytes of an arena's end, and the
	// first 8 of the next, each with a few sizes.
	for off := a - headerSize - 8; off < a+8; off++ {
		for _, size := range []int{0, 1, 8, a - headerSize, a - 1, a, a + 1} {
			pairs = append(pairs, pair{off % a, size})
		}
	}

	dir := t.TempDir()
	q := smallQueue(t, dir, SetArenaSize(a))
	c, err := q.NewConsumer("reader")
	require.NoError(t, err)
	type msg struct {
		seq  uint64
		size int
	}
	var want []msg
	seq := uint64(0)
	enqueue := func(size int) {
		require.NoError(t, q.Enqueue(seqMessage(seq, size)))
		want = append(want, msg{seq, size})
		seq++
	}
	read := func(dequeue func() ([]byte, error), from int) {
		for _, w := range want[from:] {
			m, err := dequeue()
			require.NoError(t, err, "message %d", w.seq)
			if w.size < 8 {
				require.Len(t, m, w.size)
				continue
			}
			requireSeqMessage(t, m, w.seq, w.size)
		}
		_, err := dequeue()
		require.ErrorIs(t, err, ErrEmptyQueue)
	}
	for i, p := range pairs {
		off, size := p.off, p.size
		// Pad so that the next record is written at offset off.
		pad := 8
		for int(q.s.recordEnd(q.tail.pos, pad)%int64(a)) != off {
			pad++
		}
		enqueue(pad)
		before := q.tail.pos
		enqueue(size)
		// The header never straddles an arena.
		start := q.s.recordStart(before)
		require.LessOrEqual(t, start%int64(a)+headerSize, int64(a))
		if a-off >= headerSize {
			require.Equal(t, before, start, "header fits at offset %d", off)
		} else {
			require.Equal(t, int64(0), start%int64(a), "header skips to the next arena from offset %d", off)
		}
		if i%50 == 49 || i == len(pairs)-1 {
			read(c.Dequeue, len(want)-2*(i%50+1))
		}
	}
	require.NoError(t, q.Check())
	require.NoError(t, q.Close())

	q = smallQueue(t, dir, SetArenaSize(a), SetMaxInMemArenas(3))
	require.Equal(t, len(want), q.Len())
	read(q.Dequeue, 0)
}

// TestEmptyMessageNotNil: an empty message reads back as an empty slice,
// not nil, as with the reference: read as written in this session (the
// fast path, mappedRecord) and after a reopen (the checked path).
func TestEmptyMessageNotNil(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	for range 4 {
		require.NoError(t, q.Enqueue(nil))
	}
	m, err := q.Dequeue()
	require.NoError(t, err)
	require.NotNil(t, m)
	require.Empty(t, m)
	m, err = q.DequeueAppend(make([]byte, 0, 8))
	require.NoError(t, err)
	require.NotNil(t, m)
	require.Empty(t, m)
	require.NoError(t, q.Close())

	q = smallQueue(t, dir)
	m, err = q.Dequeue()
	require.NoError(t, err)
	require.NotNil(t, m)
	require.Empty(t, m)
}
