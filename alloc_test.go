package bigqueue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNoAllocations checks SPEC section 5: no allocation per Enqueue,
// EnqueueString or DequeueAppend into a buffer with room.
func TestNoAllocations(t *testing.T) {
	q := openQueue(t, t.TempDir(), SetArenaSize(1<<20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	msg := make([]byte, 128)
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		if err := q.Enqueue(msg); err != nil {
			t.Fatal(err)
		}
	}))
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		if err := q.EnqueueString("a string message"); err != nil {
			t.Fatal(err)
		}
	}))
	buf := make([]byte, 0, 256)
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		var err error
		if buf, err = q.DequeueAppend(buf[:0]); err != nil {
			t.Fatal(err)
		}
	}))
}

// TestCommitsDoNotAllocate: a commit writes the live slot of the
// consumer's mapped file in place; Seek and CommitOffset walk record
// headers in place; none allocates. Consumer.DequeueAppend does not either.
func TestCommitsDoNotAllocate(t *testing.T) {
	q := openQueue(t, t.TempDir(), SetArenaSize(1<<20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	msg := make([]byte, 128)
	for range 5000 {
		require.NoError(t, q.Enqueue(msg))
	}
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	buf := make([]byte, 0, 256)
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		var err error
		if buf, err = c.DequeueAppend(buf[:0]); err != nil {
			t.Fatal(err)
		}
	}))
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		if err := c.Seek(c.Cursor() + 1); err != nil {
			t.Fatal(err)
		}
		if err := c.Commit(); err != nil {
			t.Fatal(err)
		}
	}))
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		if err := c.CommitOffset(c.Committed() + 1); err != nil {
			t.Fatal(err)
		}
	}))
}
