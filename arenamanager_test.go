package bigqueue

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var errENOMEMForTest error = unix.ENOMEM

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
	mmapFile = func(fd, size, prot int) ([]byte, error) {
		if refusals < 2 {
			refusals++
			return nil, errENOMEMForTest
		}
		return real(fd, size, prot)
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
// used arenas, reads the unmapped ones through a window instead of mapping
// them again, and every arena unmapped is counted off again.
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
	// At the limit, q1's evicted arenas are read through a window, not
	// mapped again (which would unmap the arenas it reads next).
	before := mappedArenas.Load()
	m, err := q1.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, m, 0, 200)
	require.True(t, q1.def.win.open, "read through the window")
	require.True(t, q1.s.am.mapping(0) == nil, "arena 0 not mapped to be read")
	for _, q := range []*MmapQueue{q1, q2} {
		for i := range uint64(n) {
			if q == q1 && i == 0 {
				continue
			}
			m, err := q.Dequeue()
			require.NoError(t, err)
			requireSeqMessage(t, m, i, 200)
			require.LessOrEqual(t, mappedArenas.Load(), before, "reading maps nothing more")
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
	}{{"65530\n", 57339}, {"262144", 229376}, {"garbage", defaultMapLimit}, {"1", defaultMapLimit}} {
		path := filepath.Join(dir, "max_map_count")
		require.NoError(t, os.WriteFile(path, []byte(c.content), 0o644))
		require.Equal(t, c.want, readMapLimit(path), c.content)
	}
	require.Equal(t, int64(defaultMapLimit), readMapLimit(filepath.Join(dir, "missing")))
}
