package bigqueue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckAfterRecoveryWalk: a recovery that walks past the tail (both
// live slots of the index unusable) reads arena bytes beyond the eventual
// tail; records written there afterwards must read back intact through
// Check, also once their arena is no longer mapped. Check used to share
// recovery's pread window and returned "bad magic 0x0000" for records that
// Dequeue read intact.
func TestCheckAfterRecoveryWalk(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	q := smallQueue(t, src)
	seq := uint64(0)
	for ; q.tail.pos < testArenaSize/2; seq++ {
		require.NoError(t, q.Enqueue(seqMessage(seq, messageSize(seq))))
	}
	// The files as a kill -9 leaves them, with both live slots of the
	// index unusable: recovery walks the records to the end of the arenas.
	files := readQueueDir(t, src)
	clear(files[indexName][metaLiveOffset : metaLiveOffset+2*metaLiveSlotSize])
	writeQueueDir(t, dst, files)

	r := smallQueue(t, dst, SetMaxInMemArenas(3))
	require.Equal(t, q.tail, r.tail, "recovery finds every record")
	// Fill on until the arenas recovery read are no longer mapped.
	for ; r.s.am.mapping(0) != nil; seq++ {
		require.NoError(t, r.Enqueue(seqMessage(seq, messageSize(seq))))
	}
	require.NoError(t, r.Check())
	for i := range seq {
		msg, err := r.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, msg, i, messageSize(i))
	}
	require.NoError(t, r.Check())
}
