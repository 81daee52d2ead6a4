package bigqueue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDequeueWaitEnqueueWakesEveryConsumer(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	type result struct {
		msg []byte
		err error
	}
	fromQueue := make(chan result)
	fromConsumer := make(chan result)
	go func() {
		m, err := q.DequeueWait(context.Background())
		fromQueue <- result{m, err}
	}()
	go func() {
		m, err := c.DequeueWait(context.Background())
		fromConsumer <- result{m, err}
	}()
	// Whether or not the waiters are blocked yet, the Enqueue reaches both.
	require.NoError(t, q.Enqueue([]byte("wake")))
	for _, ch := range []chan result{fromQueue, fromConsumer} {
		select {
		case r := <-ch:
			require.NoError(t, r.err)
			require.Equal(t, "wake", string(r.msg))
		case <-time.After(10 * time.Second):
			t.Fatal("DequeueWait was not woken by Enqueue")
		}
	}
	require.True(t, q.IsEmpty())
}

func TestDequeueWaitDeadline(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := q.DequeueWait(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// A cancelled context never consumes a message.
	require.NoError(t, q.Enqueue([]byte("kept")))
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = q.DequeueWait(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, q.Len())
}

// TestCloseWakesDequeueWait blocks DequeueWait, of the default consumer and
// of a named one, in another goroutine and closes the queue: it returns
// ErrClosed. It waits for the goroutine to be blocked by watching the
// queue's waiter channel appear, not by sleeping.
func TestCloseWakesDequeueWait(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) {
			q, err := NewMmapQueue(t.TempDir(), closedTestOpts()...)
			require.NoError(t, err)
			c, err := q.NewConsumer("waiter")
			require.NoError(t, err)
			wait := q.DequeueWait
			if named {
				wait = c.DequeueWait
			}
			// One message first: DequeueWait returns it without waiting.
			require.NoError(t, q.EnqueueString("one"))
			msg, err := wait(context.Background())
			require.NoError(t, err)
			require.Equal(t, "one", string(msg))

			result := make(chan error, 1)
			go func() {
				msg, err := wait(context.Background())
				if err == nil {
					err = fmt.Errorf("DequeueWait returned %q on an empty queue", msg)
				}
				result <- err
			}()
			waitForWaiter(q)
			require.NoError(t, q.Close())
			select {
			case err := <-result:
				require.ErrorIs(t, err, ErrClosed)
			case <-time.After(10 * time.Second):
				t.Fatal("DequeueWait still blocked 10s after Close")
			}
		})
	}
}

// TestDequeueWaitWokenByEnqueue is the other half of the waiting contract,
// checked here because Close and Enqueue race for the same waiter channel:
// an Enqueue wakes a blocked DequeueWait with exactly that message.
func TestDequeueWaitWokenByEnqueue(t *testing.T) {
	q, err := NewMmapQueue(t.TempDir(), closedTestOpts()...)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	for i := range 20 {
		result := make(chan []byte, 1)
		go func() {
			msg, err := q.DequeueWait(context.Background())
			if err != nil {
				msg = []byte(err.Error())
			}
			result <- msg
		}()
		waitForWaiter(q)
		var want [8]byte
		binary.LittleEndian.PutUint64(want[:], uint64(i))
		require.NoError(t, q.Enqueue(want[:]))
		select {
		case got := <-result:
			require.Equal(t, want[:], got)
		case <-time.After(10 * time.Second):
			t.Fatal("DequeueWait not woken by Enqueue")
		}
	}
}

// waitForWaiter returns once a DequeueWait is blocked on q: waiters
// register under the lock before they block, so this is a condition, not a
// guess at timing.
func waitForWaiter(q *MmapQueue) {
	waitUntil(q, func() bool { return q.waiters != nil })
}

// waitUntil returns once cond, evaluated under q's lock, holds.
func waitUntil(q *MmapQueue, cond func() bool) {
	for {
		q.mu.Lock()
		ok := cond()
		q.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
}

// TestDeleteConsumerWakesItsWaiters: DequeueWait and ReadWait on a consumer
// that DeleteConsumer removes return ErrUnknownConsumer at once, even with
// a context that never ends; a waiter on another consumer keeps waiting.
func TestDeleteConsumerWakesItsWaiters(t *testing.T) {
	q := smallQueue(t, t.TempDir())
	doomed, err := q.NewConsumer("doomed")
	require.NoError(t, err)
	other, err := q.NewConsumer("other")
	require.NoError(t, err)
	results := make(chan error, 2)
	go func() {
		_, err := doomed.DequeueWait(context.Background())
		results <- err
	}()
	go func() {
		_, err := doomed.ReadWait(context.Background())
		results <- err
	}()
	otherDone := make(chan []byte, 1)
	go func() {
		msg, err := other.DequeueWait(context.Background())
		if err != nil {
			msg = []byte(err.Error())
		}
		otherDone <- msg
	}()
	waitUntil(q, func() bool { return q.waiting == 3 }) // all three block before the delete
	require.NoError(t, q.DeleteConsumer("doomed"))
	for range 2 {
		select {
		case err := <-results:
			require.ErrorIs(t, err, ErrUnknownConsumer)
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter on a deleted consumer still blocked 10s after DeleteConsumer")
		}
	}
	require.NoError(t, q.EnqueueString("for other"))
	require.Equal(t, "for other", string(<-otherDone))
}

// TestEnqueueWaitForRoom: at the disk cap, EnqueueWait waits instead of
// returning ErrQueueFull, and returns once a consumer has read past an
// arena; it returns ctx.Err() when its context ends and ErrClosed on Close.
// A message that could never fit gets ErrQueueFull at once.
func TestEnqueueWaitForRoom(t *testing.T) {
	q := smallQueue(t, t.TempDir(), SetMaxDiskUsage(minDiskUsage(testArenaSize)))
	seq := uint64(0)
	for {
		err := q.Enqueue(seqMessage(seq, 500))
		if errors.Is(err, ErrQueueFull) {
			break
		}
		require.NoError(t, err)
		seq++
	}
	require.ErrorIs(t, q.EnqueueWait(context.Background(), make([]byte, 3*testArenaSize)), ErrQueueFull,
		"a message that never fits does not wait")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, q.EnqueueWait(ctx, seqMessage(seq, 500)), context.Canceled)

	done := make(chan error, 1)
	go func() { done <- q.EnqueueWait(context.Background(), seqMessage(seq, 500)) }()
	waitUntil(q, func() bool { return q.roomWaiters != nil }) // it waits: a condition, not a guess
	// Reading the first arena makes room.
	for i := uint64(0); q.s.messageArena(q.def.committed.pos) == 0; i++ {
		msg, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, msg, i, 500)
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("EnqueueWait still blocked 10s after the consumer made room")
	}
	require.Equal(t, uint64(seq+1), func() uint64 { _, n := q.Offsets(); return n }())

	// Full again; Close wakes the waiter with ErrClosed.
	for q.Enqueue(seqMessage(0, 500)) == nil {
	}
	go func() { done <- q.EnqueueWait(context.Background(), seqMessage(0, 500)) }()
	waitUntil(q, func() bool { return q.roomWaiters != nil })
	require.NoError(t, q.Close())
	require.ErrorIs(t, <-done, ErrClosed)
}
