package forward

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/seed-ff72c416/bigqueue"
	"github.com/stretchr/testify/require"
)

// flakySink is a cluster that refuses some sends, acknowledging a random
// prefix of the batch first, and records what it acknowledged.
type flakySink struct {
	t        *testing.T
	c        *bigqueue.Consumer
	rng      *rand.Rand
	failRate float64

	mu      sync.Mutex
	acked   []uint64 // offsets, in the order acknowledged
	batches int
	maxLen  int
}

var errRefused = errors.New("injected: cluster refused")

func (s *flakySink) Send(_ context.Context, batch []Record) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	s.maxLen = max(s.maxLen, len(batch))
	// Nothing is committed before the cluster acknowledged it.
	if got := s.c.Committed(); got != batch[0].Offset {
		s.t.Errorf("batch starts at %d, committed is %d", batch[0].Offset, got)
	}
	for i, r := range batch {
		if want := fmt.Sprintf("msg-%d", r.Offset); string(r.Data) != want {
			s.t.Errorf("record %d of the batch: offset %d holds %q", i, r.Offset, r.Data)
		}
	}
	n := len(batch)
	var err error
	if s.rng.Float64() < s.failRate {
		n, err = s.rng.IntN(len(batch)+1), errRefused
	}
	for _, r := range batch[:n] {
		s.acked = append(s.acked, r.Offset)
	}
	return n, err
}

func fill(t *testing.T, q *bigqueue.MmapQueue, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		require.NoError(t, q.EnqueueString(fmt.Sprintf("msg-%d", i)))
	}
}

// forwardAll runs a Forwarder of c into sink with opts until it has
// committed offset n; opts.Progress, if set, sees each report first.
func forwardAll(t testing.TB, c *bigqueue.Consumer, sink Sink, opts Options, n uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	report := opts.Progress
	opts.Progress = func(p Progress) {
		if report != nil {
			report(p)
		}
		if p.Committed == n {
			cancel()
		}
	}
	require.ErrorIs(t, New(c, sink, opts).Run(ctx), context.Canceled)
}

// TestForwardAtLeastOnceInOrder: with a cluster that refuses a third of
// the sends after acknowledging part of them, every message arrives, in
// order, exactly once (acknowledged prefixes are committed before the rest
// is re-sent), batches stay within MaxBatch, and the forwarder stops on its
// context with everything acknowledged committed.
func TestForwardAtLeastOnceInOrder(t *testing.T) {
	dir := t.TempDir()
	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(64<<10))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	const n = 5000
	fill(t, q, 0, n/2)
	c, err := q.NewConsumer("forwarder")
	require.NoError(t, err)

	sink := &flakySink{t: t, c: c, rng: rand.New(rand.NewPCG(1, 2)), failRate: 0.3}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	fw := New(c, sink, Options{MaxBatch: 64, MinBackoff: time.Microsecond, MaxBackoff: 50 * time.Microsecond,
		Progress: func(p Progress) {
			if p.Committed == n {
				cancel()
			}
		}})
	go func() { done <- fw.Run(ctx) }()
	fill(t, q, n/2, n) // the producer goes on while forwarding runs
	require.ErrorIs(t, <-done, context.Canceled)

	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Len(t, sink.acked, n, "each message acknowledged once")
	for i, off := range sink.acked {
		require.Equal(t, uint64(i), off, "in order")
	}
	require.LessOrEqual(t, sink.maxLen, 64)
	require.Greater(t, sink.batches, n/64, "retries happened")
	require.Equal(t, uint64(n), c.Committed())
}

// stallSink acknowledges nothing until released: a cluster that is down.
type stallSink struct {
	mu      sync.Mutex
	up      bool
	tries   int
	offsets []uint64
}

func (s *stallSink) Send(_ context.Context, batch []Record) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	if !s.up {
		return 0, errRefused
	}
	for _, r := range batch {
		s.offsets = append(s.offsets, r.Offset)
	}
	return len(batch), nil
}

// TestForwardResumesAfterStop: a forwarder stopped while the cluster is
// down commits nothing it did not send; a new one, on the reopened queue,
// resumes at the committed offset and sends the rest in order.
func TestForwardResumesAfterStop(t *testing.T) {
	dir := t.TempDir()
	open := func() *bigqueue.MmapQueue {
		q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(64<<10))
		require.NoError(t, err)
		return q
	}
	q := open()
	fill(t, q, 0, 300)
	c, err := q.NewConsumer("f")
	require.NoError(t, err)
	sink := &stallSink{up: true}
	ctx, cancel := context.WithCancel(context.Background())
	fw := New(c, sink, Options{MaxBatch: 50, MinBackoff: time.Microsecond, MaxBackoff: 10 * time.Microsecond,
		Progress: func(p Progress) {
			if p.Committed >= 100 {
				sink.up = false // down after the first 100 (Progress runs on Run's goroutine, inside no Send)
			}
			if p.Failures >= 20 {
				cancel()
			}
		}})
	require.ErrorIs(t, fw.Run(ctx), context.Canceled)
	require.Equal(t, uint64(100), c.Committed(), "only what was acknowledged")
	require.NoError(t, q.Close())

	q = open()
	defer func() { require.NoError(t, q.Close()) }()
	c, err = q.NewConsumer("f")
	require.NoError(t, err)
	sink2 := &stallSink{up: true}
	forwardAll(t, c, sink2, Options{MaxBatch: 50}, 300)
	require.Len(t, sink2.offsets, 200)
	require.Equal(t, 4, sink2.tries, "a backlog goes in full batches")
	for i, off := range sink2.offsets {
		require.Equal(t, uint64(100+i), off)
	}
}

// gateSink holds each Send until the test opens the gate, then
// acknowledges the batch, unless its context ends first.
type gateSink struct {
	started chan int // the length of each batch sent
	gate    chan struct{}
}

func (s *gateSink) Send(ctx context.Context, batch []Record) (int, error) {
	s.started <- len(batch)
	select {
	case <-s.gate:
	case <-ctx.Done():
	}
	if err := ctx.Err(); err != nil {
		return 0, err // a send whose context ended has no answer
	}
	return len(batch), nil
}

// TestForwardStopWaitsForBatchInFlight: when Run's context ends during a
// send, the batch in flight still gets its acknowledgement and is
// committed (within StopGrace); a send that outlasts StopGrace is
// abandoned, uncommitted.
func TestForwardStopWaitsForBatchInFlight(t *testing.T) {
	q, err := bigqueue.NewMmapQueue(t.TempDir(), bigqueue.SetArenaSize(64<<10))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	fill(t, q, 0, 100)
	c, err := q.NewConsumer("f")
	require.NoError(t, err)

	sink := &gateSink{started: make(chan int, 1), gate: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(c, sink, Options{MaxBatch: 40, StopGrace: time.Minute}).Run(ctx) }()
	require.Equal(t, 40, <-sink.started)
	cancel() // SIGTERM while the first batch is in flight
	close(sink.gate)
	require.ErrorIs(t, <-done, context.Canceled)
	require.Equal(t, uint64(40), c.Committed(), "the batch in flight was acknowledged, then committed")

	// A cluster that never answers: Run gives up after StopGrace.
	sink = &gateSink{started: make(chan int, 1), gate: make(chan struct{})}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- New(c, sink, Options{MaxBatch: 40, StopGrace: 10 * time.Millisecond}).Run(ctx) }()
	require.Equal(t, 40, <-sink.started)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Equal(t, uint64(40), c.Committed(), "nothing more")
}

// sizeSink records the length of each batch it acknowledges.
type sizeSink struct{ lens []int }

func (s *sizeSink) Send(_ context.Context, batch []Record) (int, error) {
	s.lens = append(s.lens, len(batch))
	return len(batch), nil
}

// TestForwardBatchBytes: a batch stops before MaxBatchBytes; a message
// larger than that goes alone; none is skipped or sent twice.
func TestForwardBatchBytes(t *testing.T) {
	q, err := bigqueue.NewMmapQueue(t.TempDir(), bigqueue.SetArenaSize(64<<10))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	small := make([]byte, 100)
	for range 25 {
		require.NoError(t, q.Enqueue(small))
	}
	require.NoError(t, q.Enqueue(make([]byte, 5000)))
	for range 5 {
		require.NoError(t, q.Enqueue(small))
	}
	c, err := q.NewConsumer("f")
	require.NoError(t, err)
	sink := &sizeSink{}
	forwardAll(t, c, sink, Options{MaxBatchBytes: 1000}, 31)
	require.Equal(t, []int{10, 10, 5, 1, 5}, sink.lens)
}

// chainSink is a PipelineSink that models a JetStream stream with the
// chain: it stores what it is sent, in order, refusing at random; once a
// message is refused, it refuses everything after it until the Forwarder
// has waited for every batch in flight.
type chainSink struct {
	t        *testing.T
	c        *bigqueue.Consumer
	rng      *rand.Rand
	stored   []uint64
	inFlight int
	most     int // the most batches in flight at once
	broken   bool
}

func (s *chainSink) Send(ctx context.Context, batch []Record) (int, error) {
	return s.Publish(ctx, batch)()
}

func (s *chainSink) Publish(_ context.Context, batch []Record) func() (int, error) {
	if s.inFlight == 0 {
		s.broken = false
		if got := s.c.Committed(); got != batch[0].Offset {
			s.t.Errorf("nothing in flight: batch starts at %d, committed is %d", batch[0].Offset, got)
		}
	}
	s.inFlight++
	s.most = max(s.most, s.inFlight)
	acked := 0
	for _, r := range batch {
		if s.broken || s.rng.Float64() < 0.002 {
			s.broken = true
			break
		}
		s.stored = append(s.stored, r.Offset)
		acked++
	}
	return func() (int, error) {
		s.inFlight--
		if acked < len(batch) {
			return acked, errRefused
		}
		return acked, nil
	}
}

// TestForwardPipelined: with two batches in flight and a cluster that
// refuses now and then (and then everything after, as the JetStream
// chain does), every message is stored once, in order, and committed;
// after a failure the Forwarder waits for the batch in flight and starts
// again from the first message not acknowledged.
func TestForwardPipelined(t *testing.T) {
	q, err := bigqueue.NewMmapQueue(t.TempDir(), bigqueue.SetArenaSize(64<<10))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	const n = 20_000
	fill(t, q, 0, n)
	c, err := q.NewConsumer("f")
	require.NoError(t, err)
	sink := &chainSink{t: t, c: c, rng: rand.New(rand.NewPCG(3, 4))}
	var failures uint64
	forwardAll(t, c, sink, Options{MaxBatch: 100, MinBackoff: time.Microsecond, MaxBackoff: 10 * time.Microsecond,
		Progress: func(p Progress) { failures = p.Failures }}, n)
	require.Len(t, sink.stored, n, "each message once")
	for i, off := range sink.stored {
		require.Equal(t, uint64(i), off, "in order")
	}
	require.Equal(t, 2, sink.most, "two batches in flight")
	require.NotZero(t, failures)
	require.Equal(t, uint64(n), c.Committed())
}
