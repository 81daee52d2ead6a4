package bigqueue

import (
	"math/rand/v2"
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
