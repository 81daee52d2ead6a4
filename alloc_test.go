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
