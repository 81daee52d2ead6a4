package bigqueue

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// testArenaSize is the smallest arena size, so tests cross arenas often.
const testArenaSize = 4096

// openQueue opens a queue in dir for a test and closes it at cleanup,
// unless the test closed it already.
func openQueue(t testing.TB, dir string, opts ...Option) *MmapQueue {
	t.Helper()
	q, err := NewMmapQueue(dir, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// smallQueue opens a queue with 4 KiB arenas and no background flush.
func smallQueue(t testing.TB, dir string, opts ...Option) *MmapQueue {
	t.Helper()
	base := []Option{SetArenaSize(testArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	return openQueue(t, dir, append(base, opts...)...)
}

// seqMessage returns a message of size bytes (at least 8 are used when
// size allows) that carries seq, so that a test sees reordering, loss and
// invention: the sequence number first, then bytes derived from it.
func seqMessage(seq uint64, size int) []byte {
	b := make([]byte, size)
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], seq)
	n := copy(b, hdr[:])
	for i := n; i < size; i++ {
		b[i] = byte(seq*31 + uint64(i)*7)
	}
	return b
}

// messageSize is the size of the seq-th message in tests that vary sizes.
func messageSize(seq uint64) int {
	return int(seq*37%300) + 8
}

// requireSeqMessage checks that msg is seqMessage(seq, size).
func requireSeqMessage(t testing.TB, msg []byte, seq uint64, size int) {
	t.Helper()
	want := seqMessage(seq, size)
	if string(msg) != string(want) {
		got := "short"
		if len(msg) >= 8 {
			got = fmt.Sprint(binary.LittleEndian.Uint64(msg))
		}
		t.Fatalf("message %d: got %d bytes (seq %s), want %d bytes", seq, len(msg), got, len(want))
	}
}

// waitForWaiter returns once a DequeueWait is blocked on q: waiters
// register under the lock before they block, so this is a condition, not a
// guess at timing.
func waitForWaiter(q *MmapQueue) {
	for {
		q.mu.Lock()
		blocked := q.waiters != nil
		q.mu.Unlock()
		if blocked {
			return
		}
		runtime.Gosched()
	}
}
