package forward

import (
	"context"
	"strings"
	"testing"

	"github.com/seed-ff72c416/bigqueue"
	"github.com/stretchr/testify/require"
)

// requireSaysBigqueueOnce checks that err's message starts with this
// package's prefix and says "bigqueue:" nowhere else.
func requireSaysBigqueueOnce(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "bigqueue: forward: "), "%q", err)
	require.Equal(t, 1, strings.Count(err.Error(), "bigqueue:"), "%q", err)
}

// TestErrorsSayBigqueueOnce: the forwarder's errors start with
// "bigqueue: forward: " once, also when they wrap its own sentinel or the
// library's errors, which still match with errors.Is.
func TestErrorsSayBigqueueOnce(t *testing.T) {
	_, err := Dial("amqp://localhost/events")
	requireSaysBigqueueOnce(t, err)
	require.ErrorIs(t, err, ErrBadSink)
	require.Contains(t, err.Error(), "bad sink")

	q, err := bigqueue.NewMmapQueue(t.TempDir(), bigqueue.SetArenaSize(64<<10))
	require.NoError(t, err)
	c, err := q.NewConsumer("f")
	require.NoError(t, err)
	require.NoError(t, q.Close())
	err = New(c, &sizeSink{}, Options{}).Run(context.Background())
	requireSaysBigqueueOnce(t, err)
	require.ErrorIs(t, err, bigqueue.ErrClosed)
}
