package bigqueue

import (
	"fmt"
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

// TestCheckDoesNotStopTheQueue: between arenas Check holds no lock, and
// producers and consumers work while it runs, here from its hook and from
// two goroutines; it still verifies what it set out to, and every message
// comes out whole and in order.
func TestCheckDoesNotStopTheQueue(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	const before = 2000
	for i := range uint64(before) {
		require.NoError(t, q.Enqueue(seqMessage(i, messageSize(i))))
	}
	var hooks int
	next := uint64(before)
	checkHook = func() {
		hooks++
		// Check holds no lock here (the mutex is not reentrant: were it
		// held, this Enqueue would never return).
		require.NoError(t, q.Enqueue(seqMessage(next, messageSize(next))))
		next++
	}
	defer func() { checkHook = nil }()
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		// Consume concurrently; the head moves as arenas are retired.
		for i := range uint64(before / 2) {
			msg, err := c.Dequeue()
			if err != nil {
				done <- err
				return
			}
			if len(msg) != messageSize(i) {
				done <- fmt.Errorf("message %d: %d bytes", i, len(msg))
				return
			}
			if i%100 == 0 {
				if _, err := q.Dequeue(); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	require.NoError(t, q.Check())
	require.NoError(t, <-done)
	require.Greater(t, hooks, 10, "Check went arena by arena")
	checkHook = nil
	require.NoError(t, q.Check())
	require.NoError(t, c.Seek(before/2))
	for i := uint64(before / 2); i < next; i++ {
		requireRead(t, c, i, messageSize(i))
	}
}
