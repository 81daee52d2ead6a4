package bigqueue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFlushSyncsWhatWasWritten: a Flush writes back, of the mapped arenas,
// the range from the tail of the flush before to its own tail, and the
// header slot cleared after it; every byte of every record written in
// between is in a range synced, whatever the records' sizes and however
// they straddle arenas. (The ranges stop there: the pages the populator
// faulted in past the tail are not written back as zeros at every flush.)
func TestFlushSyncsWhatWasWritten(t *testing.T) {
	type span struct{ from, to int64 } // stream positions
	var synced []span
	testHookSync = func(id int64, from, to int) {
		base := id * testArenaSize
		synced = append(synced, span{base + int64(from), base + int64(to)})
	}
	t.Cleanup(func() { testHookSync = nil })

	q := smallQueue(t, t.TempDir())
	rng := rand.New(rand.NewPCG(7, 11))
	var sizes []int
	for round := range 60 {
		before := q.tail.pos
		for range rng.IntN(6) {
			size := rng.IntN(testArenaSize * 2)
			if rng.IntN(2) == 0 {
				size = rng.IntN(200)
			}
			require.NoError(t, q.Enqueue(seqMessage(uint64(len(sizes)), size)))
			sizes = append(sizes, size)
		}
		synced = synced[:0]
		require.NoError(t, q.Flush())
		after := q.tail.pos
		if after == before {
			require.Empty(t, synced, "round %d: nothing written, nothing synced", round)
			continue
		}
		// Every byte from the old tail to the new one, and the header slot
		// after it within the last arena written, is in a synced span.
		lastArenaEnd := ((after-1)/testArenaSize + 1) * testArenaSize
		want := span{before, min(after+headerSize, lastArenaEnd)}
		for p := want.from; p < want.to; p++ {
			covered := false
			for _, s := range synced {
				if p >= s.from && p < s.to {
					covered = true
					break
				}
			}
			require.True(t, covered, "round %d: position %d of [%d, %d) not synced (spans %v)", round, p, want.from, want.to, synced)
		}
		for _, s := range synced {
			require.GreaterOrEqual(t, s.from, want.from, "round %d: synced before the old tail", round)
			require.LessOrEqual(t, s.to, want.to, "round %d: synced past the new tail's header slot", round)
		}
	}
	for i, size := range sizes {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, uint64(i), size)
	}
}

// TestSyncBehindWithoutLock: a Flush with several MiB to sync first syncs
// them with the queue's lock released (an Enqueue could run meanwhile),
// all but the page the writer is filling; the flush itself then syncs the
// rest, and the queue reads back whole.
func TestSyncBehindWithoutLock(t *testing.T) {
	const size = 1000
	var synced, calls int
	var lockFree bool
	q := openQueue(t, t.TempDir(), SetArenaSize(1<<20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	testHookSyncBehind = func(n int) {
		calls++
		synced += n
		lockFree = q.mu.TryLock()
		if lockFree {
			q.mu.Unlock()
		}
		require.True(t, lockFree, "synced behind with the queue's lock held")
	}
	t.Cleanup(func() { testHookSyncBehind = nil })

	n := 3 * (1 << 20) / (size + headerSize)
	for i := range n {
		require.NoError(t, q.Enqueue(seqMessage(uint64(i), size)))
	}
	tail := q.tail.pos
	require.NoError(t, q.Flush())
	require.GreaterOrEqual(t, calls, 3, "one range per arena")
	require.Equal(t, int(tail&^pageMask), synced, "from the start to the page being filled")
	require.Equal(t, tail, q.syncedTail.pos)

	synced, calls = 0, 0
	require.NoError(t, q.Enqueue(seqMessage(uint64(n), size)))
	require.NoError(t, q.Flush())
	require.Zero(t, calls, "less than a MiB to sync: the flush alone does it")
	for i := range n + 1 {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, uint64(i), size)
	}
}

// TestSyncBehindUnderChurn: flushes that sync behind the lock while a
// producer writes, a consumer reads and arenas are evicted (a cap of 3
// mapped) and retired under them: nothing is lost, reordered or damaged,
// and every flush returns nil (an arena unmapped during the unlocked msync
// is no error). The producer asks for a flush after every 1,500 messages
// (1.5 MB, over the 1 MiB that syncing behind needs), and nothing else
// flushes.
func TestSyncBehindUnderChurn(t *testing.T) {
	const n, size, every = 6000, 1000, 1500
	q := openQueue(t, t.TempDir(), SetArenaSize(64<<10), SetMaxInMemArenas(3),
		SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	var behind atomic.Int64
	testHookSyncBehind = func(int) { behind.Add(1) }
	t.Cleanup(func() { testHookSyncBehind = nil })

	errs := make(chan error, 3)
	flushes := make(chan struct{}, n/every)
	go func() {
		defer close(flushes)
		for i := range n {
			if err := q.Enqueue(seqMessage(uint64(i), size)); err != nil {
				errs <- err
				return
			}
			if (i+1)%every == 0 {
				flushes <- struct{}{}
			}
		}
		errs <- nil
	}()
	go func() {
		for range flushes {
			if err := q.Flush(); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	go func() {
		for i := 0; i < n; i++ {
			m, err := q.DequeueWait(context.Background())
			if err != nil {
				errs <- err
				return
			}
			if string(m) != string(seqMessage(uint64(i), size)) {
				errs <- fmt.Errorf("message %d: got %d bytes, not the message enqueued", i, len(m))
				return
			}
		}
		errs <- nil
	}()
	for range 3 {
		require.NoError(t, <-errs)
	}
	require.NoError(t, q.Flush())
	require.Positive(t, behind.Load(), "the flushes synced behind the lock")
	require.Zero(t, q.Len())
}
