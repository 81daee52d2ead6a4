package bigqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of "After Close" (SPEC section 3): every method returns
// ErrClosed, never a panic and never a touch of unmapped memory, also when
// Close races with other calls.

func closedTestOpts() []Option {
	return []Option{SetArenaSize(4096), SetMaxInMemArenas(3), SetPeriodicFlushOps(5), SetPeriodicFlushDuration(time.Millisecond)}
}

// TestClosedQueueReturnsErrClosed calls every method of a closed queue and
// of its consumers.
func TestClosedQueueReturnsErrClosed(t *testing.T) {
	dir := t.TempDir()
	q, err := NewMmapQueue(dir, closedTestOpts()...)
	require.NoError(t, err)
	c, err := q.NewConsumer("reader")
	require.NoError(t, err)
	for i := range 50 {
		require.NoError(t, q.Enqueue(contractPayload(uint64(i), 6000)))
	}
	_, err = q.Dequeue()
	require.NoError(t, err)
	require.NoError(t, q.Close())

	ctx := context.Background()
	buf := make([]byte, 3, 100)
	for name, call := range map[string]func() error{
		"Enqueue":       func() error { return q.Enqueue([]byte("x")) },
		"Enqueue empty": func() error { return q.Enqueue(nil) },
		"EnqueueString": func() error { return q.EnqueueString("x") },
		"EnqueueBatch":  func() error { return q.EnqueueBatch([][]byte{[]byte("x"), []byte("y")}) },
		"EnqueueBatch empty": func() error {
			return q.EnqueueBatch(nil)
		},
		"Dequeue":       func() error { _, err := q.Dequeue(); return err },
		"DequeueString": func() error { _, err := q.DequeueString(); return err },
		"DequeueAppend": func() error {
			out, err := q.DequeueAppend(buf)
			if len(out) != len(buf) {
				return fmt.Errorf("DequeueAppend returned %d bytes, gave %d", len(out), len(buf))
			}
			return err
		},
		"Peek":        func() error { _, err := q.Peek(); return err },
		"DequeueWait": func() error { _, err := q.DequeueWait(ctx); return err },
		"Flush":       q.Flush,
		"NewConsumer": func() error { _, err := q.NewConsumer("new"); return err },
		"NewConsumer existing": func() error {
			_, err := q.NewConsumer("reader")
			return err
		},
		"FromConsumer":   func() error { _, err := q.FromConsumer("copy", c); return err },
		"DeleteConsumer": func() error { return q.DeleteConsumer("reader") },
		"Stats":          func() error { _, err := q.Stats(); return err },
		"Check":          q.Check,
		"Consumer.Dequeue": func() error {
			_, err := c.Dequeue()
			return err
		},
		"Consumer.DequeueString": func() error { _, err := c.DequeueString(); return err },
		"Consumer.DequeueAppend": func() error { _, err := c.DequeueAppend(buf); return err },
		"Consumer.Peek":          func() error { _, err := c.Peek(); return err },
		"Consumer.DequeueWait":   func() error { _, err := c.DequeueWait(ctx); return err },
		"Close":                  q.Close,
	} {
		assert.ErrorIs(t, call(), ErrClosed, name)
	}
	assert.True(t, q.IsEmpty())
	assert.Equal(t, 0, q.Len())
	assert.True(t, c.IsEmpty())
	assert.Equal(t, 0, c.Len())
	assert.Equal(t, "reader", c.Name())
	assert.Empty(t, q.Consumers())
	// The waiting calls too, when their context has ended as well.
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = q.DequeueWait(done)
	assert.ErrorIs(t, err, ErrClosed, "DequeueWait, ended context")
	_, err = c.DequeueWait(done)
	assert.ErrorIs(t, err, ErrClosed, "Consumer.DequeueWait, ended context")
	_, err = c.ReadWait(done)
	assert.ErrorIs(t, err, ErrClosed, "ReadWait, ended context")
	assert.ErrorIs(t, q.EnqueueWait(done, []byte("x")), ErrClosed, "EnqueueWait, ended context")

	// Nothing was changed by the calls: the closed queue's consumer file
	// is still there, no "new" or "copy" consumer was created, and the
	// data reopens as it was.
	for _, name := range []string{"new", "copy"} {
		_, err := os.Stat(filepath.Join(dir, consumerFileName(name)))
		assert.ErrorIs(t, err, os.ErrNotExist, "consumer %q created after Close", name)
	}
	q, err = NewMmapQueue(dir, closedTestOpts()...)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	assert.Equal(t, 49, q.Len())
	assert.Equal(t, []string{"reader"}, q.Consumers())
	c, err = q.NewConsumer("reader")
	require.NoError(t, err)
	assert.Equal(t, 50, c.Len())
	require.NoError(t, q.Check())
}

// TestCloseWhileBusy closes the queue while producers, consumers and other
// callers run (go-diskqueue's torture test): no panic, every call fails
// with ErrClosed once closed, and a reopen finds exactly the successful
// enqueues that the successful dequeues did not take, for each consumer.
func TestCloseWhileBusy(t *testing.T) {
	const producers, rounds = 3, 6
	dir := t.TempDir()
	enqueued := make(map[uint64]bool) // key -> enqueued successfully
	var dequeued [2]map[uint64]bool   // consumer -> keys taken before Close
	for i := range dequeued {
		dequeued[i] = make(map[uint64]bool)
	}
	const maxLen = 5000
	for round := range rounds {
		q, err := NewMmapQueue(dir, closedTestOpts()...)
		require.NoError(t, err)
		c, err := q.NewConsumer("reader")
		require.NoError(t, err)

		var mu sync.Mutex // guards enqueued, dequeued and firstErr
		var firstErr error
		fail := func(err error) {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
		var progress atomic.Int64
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				// Keys grow within a producer; every fifth call is a
				// batch of two.
				for n := uint64(0); ; n++ {
					key := uint64(round)<<40 | uint64(p)<<32 | n
					keys := []uint64{key}
					var err error
					if n%5 == 4 {
						n++
						keys = append(keys, key+1)
						err = q.EnqueueBatch([][]byte{contractPayload(key, maxLen), contractPayload(key+1, maxLen)})
					} else {
						err = q.Enqueue(contractPayload(key, maxLen))
					}
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						fail(fmt.Errorf("enqueue: %w", err))
						return
					}
					mu.Lock()
					for _, k := range keys {
						enqueued[k] = true
					}
					mu.Unlock()
					progress.Add(1)
				}
			})
		}
		for i, deq := range []func() ([]byte, error){q.Dequeue, c.Dequeue} {
			wg.Go(func() {
				for {
					msg, err := deq()
					if errors.Is(err, ErrEmptyQueue) {
						runtime.Gosched()
						continue
					}
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						fail(fmt.Errorf("dequeue %d: %w", i, err))
						return
					}
					key, err := checkContractPayload(msg, maxLen)
					if err != nil {
						fail(err)
						return
					}
					mu.Lock()
					if dequeued[i][key] {
						fail(fmt.Errorf("consumer %d: %#x dequeued twice", i, key))
					}
					dequeued[i][key] = true
					mu.Unlock()
				}
			})
		}
		// Readers of state and a flusher, which must also stop cleanly.
		wg.Go(func() {
			for {
				_, err := q.Stats()
				_ = q.Len()
				_ = c.IsEmpty()
				_, _ = c.Peek()
				if errors.Is(err, ErrClosed) {
					return
				}
				if ferr := q.Flush(); ferr != nil && !errors.Is(ferr, ErrClosed) {
					fail(fmt.Errorf("flush: %w", ferr))
					return
				}
			}
		})
		// Wait for some progress, different in each round, then close.
		target := int64(50 + 60*round)
		for progress.Load() < target {
			runtime.Gosched()
		}
		require.NoError(t, q.Close())
		wg.Wait()
		require.NoError(t, firstErr, "round %d", round)
		require.ErrorIs(t, q.Close(), ErrClosed)
	}

	// Each consumer reads, after the reopen, exactly what was enqueued and
	// it did not dequeue before a Close, in each producer's order.
	q, err := NewMmapQueue(dir, closedTestOpts()...)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	c, err := q.NewConsumer("reader")
	require.NoError(t, err)
	for i, deq := range []func() ([]byte, error){q.Dequeue, c.Dequeue} {
		want := 0
		for key := range enqueued {
			if !dequeued[i][key] {
				want++
			}
		}
		length := q.Len()
		if i == 1 {
			length = c.Len()
		}
		require.Equal(t, want, length, "consumer %d: Len after reopen", i)
		last := make(map[uint64]uint64) // producer -> last key read
		for range want {
			msg, err := deq()
			require.NoError(t, err)
			key, err := checkContractPayload(msg, maxLen)
			require.NoError(t, err)
			require.True(t, enqueued[key], "consumer %d: %#x was never enqueued successfully", i, key)
			require.False(t, dequeued[i][key], "consumer %d: %#x was dequeued before Close", i, key)
			producer := key >> 32
			if prev, ok := last[producer]; ok {
				require.Greater(t, key, prev, "consumer %d: producer %#x out of order", i, producer)
			}
			last[producer] = key
		}
		_, err = deq()
		require.ErrorIs(t, err, ErrEmptyQueue, "consumer %d", i)
	}
	require.NoError(t, q.Check())
}
