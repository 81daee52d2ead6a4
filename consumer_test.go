package bigqueue

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFromConsumerBackSurvivesCrash: FromConsumer may move a consumer back,
// behind the position its last flush made durable; a kill -9 right after
// must keep the move (contract 1), not fall back to the flushed position.
func TestFromConsumerBackSurvivesCrash(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	q := filledQueue(t, src, 10, 100)
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

func TestConsumers(t *testing.T) {
	dir := t.TempDir()
	q := filledQueue(t, dir, 10, 100)
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
