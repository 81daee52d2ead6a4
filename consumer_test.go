package bigqueue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFromConsumerBackSurvivesCrash: FromConsumer may move a consumer back,
// behind the position its last flush made durable; a kill -9 right after
// must keep the move (contract 1), not fall back to the flushed position.
func TestFromConsumerBackSurvivesCrash(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	q := smallQueue(t, src)
	for i := range uint64(10) {
		require.NoError(t, q.Enqueue(seqMessage(i, 100)))
	}
	slow, err := q.NewConsumer("slow")
	require.NoError(t, err)
	fast, err := q.NewConsumer("fast")
	require.NoError(t, err)
	for range 7 {
		_, err := fast.Dequeue()
		require.NoError(t, err)
	}
	require.NoError(t, q.Flush()) // fast's durable position: message 7
	_, err = q.FromConsumer("fast", slow)
	require.NoError(t, err)

	writeQueueDir(t, dst, readQueueDir(t, src)) // as a kill -9 leaves them
	r := smallQueue(t, dst)
	c, err := r.NewConsumer("fast")
	require.NoError(t, err)
	require.Equal(t, 10, c.Len())
	msg, err := c.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, msg, 0, 100)
}
