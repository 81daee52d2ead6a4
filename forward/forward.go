// Package forward drains a named consumer of a bigqueue queue into a
// cluster (Kafka, NATS JetStream) at least once and in order: it reads a
// batch, sends it, and commits on the consumer only what the cluster has
// acknowledged. While the cluster is down or refusing, it retries the same
// messages, in the same order, with exponential backoff and jitter; the
// queue absorbs the backlog meanwhile, so producers are not slowed.
//
// Two sinks come with it: Kafka (franz-go), each record carrying its
// queue offset in the OffsetHeader header, and JetStream (nats.go), each
// message's Nats-Msg-Id its queue offset, so that the stream drops the
// re-sent ones. A crash of the forwarder or of the cluster re-sends only
// what was not committed, in the same order: on JetStream the stream
// drops them within its duplicate window; on Kafka they are the
// duplicates a consumer of the topic may see.
package forward

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/seed-ff72c416/bigqueue"
)

// Record is a message on its way: its queue offset and its bytes. A sink
// carries the offset with the message (a Kafka header, the JetStream
// Nats-Msg-Id), so that a cluster can tell a re-sent message.
type Record struct {
	Offset uint64
	Data   []byte
}

// Sink sends batches to a cluster. Send returns once the cluster has
// acknowledged records: acked is how many of the batch, from its start, are
// acknowledged (all of them when err is nil). A Sink is used by one
// goroutine at a time.
type Sink interface {
	Send(ctx context.Context, batch []Record) (acked int, err error)
}

// PipelineSink is a Sink that can have several batches in flight, in
// order. Publish sends batch after every batch published before it and
// returns without waiting for the cluster; the function it returns waits
// for the acknowledgements and reports them as Send does. The Forwarder
// calls each wait function once, in the order of the batches, on the
// goroutine that calls Publish; after a failure it waits for every batch
// in flight before it publishes again, from the first message not
// acknowledged. A PipelineSink must not let a batch be stored ahead of a
// message lost before it: the JetStream sink has the stream check that
// each message follows the one before it.
type PipelineSink interface {
	Sink
	Publish(ctx context.Context, batch []Record) (wait func() (acked int, err error))
}

// Defaults of Options.
const (
	DefaultMaxBatch      = 2048
	DefaultMaxBatchBytes = 4 << 20
)

// Options tune a Forwarder; the zero value gives the defaults.
type Options struct {
	// MaxBatch and MaxBatchBytes bound a batch: at most MaxBatch messages
	// and MaxBatchBytes bytes of messages (or one message, when it alone
	// is larger). What is in flight is at most InFlight batches.
	// Defaults DefaultMaxBatch and DefaultMaxBatchBytes.
	MaxBatch      int
	MaxBatchBytes int
	// MinBackoff and MaxBackoff bound the pause before a retry, which
	// doubles from MinBackoff after each failure in a row, with up to half
	// of it added at random. Defaults 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// InFlight is how many batches a PipelineSink may have in flight at
	// once; other sinks have one. Default 2: the next batch is read and
	// sent while the cluster stores the last.
	InFlight int
	// StopGrace is how long Run, once its context ends, still waits for
	// the batches in flight to be acknowledged, so that it can commit them.
	// Default 5 s.
	StopGrace time.Duration
	// Progress, when set, is called after each acknowledged batch and each
	// failure, from the goroutine running Run.
	Progress func(Progress)
}

// Progress is what a Forwarder has done so far.
type Progress struct {
	Forwarded uint64 // messages acknowledged and committed
	Committed uint64 // the consumer's committed offset
	Failures  uint64 // failed sends
	LastError error  // the last failure, nil after a success
}

// Forwarder drains one consumer into one sink.
type Forwarder struct {
	c    *bigqueue.Consumer
	sink Sink
	opts Options
	prog Progress
	rng  *rand.Rand

	carry *Record // read, and first of the next batch
}

// New returns a Forwarder of consumer c (from a writer or a reader) into
// sink.
func New(c *bigqueue.Consumer, sink Sink, opts Options) *Forwarder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 50 * time.Millisecond
	}
	if opts.InFlight <= 0 {
		opts.InFlight = 2
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	return &Forwarder{c: c, sink: sink, opts: opts, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
}

// Run forwards messages until ctx ends, then returns ctx.Err() with every
// acknowledged message committed: the batches in flight when ctx ends
// have Options.StopGrace to be acknowledged. Another error of the queue (a
// damaged record, a closed queue) ends it too; a sink's errors are
// retried.
func (f *Forwarder) Run(ctx context.Context) error {
	// Messages read but not committed are read again: the forwarder
	// starts from the committed offset.
	if err := f.c.Seek(f.c.Committed()); err != nil {
		return errorf("%w", err)
	}
	f.carry = nil
	// A send outlives ctx by StopGrace.
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSend()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(f.opts.StopGrace, cancelSend)
		<-sendCtx.Done()
		t.Stop()
	})
	defer stopGrace()
	window := 1
	ps, pipelined := f.sink.(PipelineSink)
	if pipelined {
		window = f.opts.InFlight
	}
	// Batches in flight, oldest first, each in a buffer of its own.
	type flight struct {
		batch []Record
		wait  func() (int, error)
	}
	var flying []flight
	free := make([][]Record, window)
	for i := range free {
		free[i] = make([]Record, 0, f.opts.MaxBatch)
	}
	// abandon waits for every batch in flight and commits none of them:
	// a PipelineSink waits to be told of each before it publishes again.
	abandon := func() {
		for _, fl := range flying {
			_, _ = fl.wait()
			free = append(free, fl.batch[:0])
		}
		flying = flying[:0]
	}
	backoff := time.Duration(0)
	var stop error // ends Run once nothing is in flight
	for {
		// Send batches until the window is full or nothing is waiting;
		// wait for a message only when nothing is in flight.
		for stop == nil && len(flying) < window && ctx.Err() == nil {
			buf := free[len(free)-1]
			batch, err := f.fill(ctx, buf[:0], len(flying) == 0)
			if err != nil {
				stop = err
				break
			}
			if len(batch) == 0 {
				break
			}
			free = free[:len(free)-1]
			fl := flight{batch: batch}
			if pipelined {
				fl.wait = ps.Publish(sendCtx, batch)
			} else {
				fl.wait = func() (int, error) { return f.sink.Send(sendCtx, batch) }
			}
			flying = append(flying, fl)
		}
		if len(flying) == 0 {
			if stop != nil {
				return stop
			}
			return ctx.Err()
		}
		fl := flying[0]
		flying = flying[1:]
		acked, err := fl.wait()
		free = append(free, fl.batch[:0])
		acked = max(0, min(acked, len(fl.batch)))
		if acked > 0 {
			if cerr := f.c.CommitOffset(fl.batch[acked-1].Offset + 1); cerr != nil {
				abandon()
				return errorf("commit: %w", cerr)
			}
			f.prog.Forwarded += uint64(acked)
			f.prog.Committed = fl.batch[acked-1].Offset + 1
		}
		if err == nil && acked == len(fl.batch) {
			backoff = 0
			f.prog.LastError = nil
			f.report()
			continue
		}
		if err == nil {
			err = errorf("%d of a batch of %d acknowledged, without an error", acked, len(fl.batch))
		}
		// What was sent after the failure is not committed, whatever
		// became of it: wait for it, then read again from the first
		// message not acknowledged.
		abandon()
		f.carry = nil
		if serr := f.c.Seek(f.c.Committed()); serr != nil {
			return errorf("%w", serr)
		}
		f.prog.Failures++
		f.prog.LastError = err
		f.report()
		if stop != nil {
			return stop
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		backoff = f.next(backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// fill reads a batch: the messages that are there and fit, waiting for
// the first one when wait is set (else the batch may be empty).
func (f *Forwarder) fill(ctx context.Context, batch []Record, wait bool) ([]Record, error) {
	switch {
	case f.carry != nil:
		batch = append(batch, *f.carry)
		f.carry = nil
	case wait:
		m, err := f.c.ReadWait(ctx)
		if err != nil {
			return batch, err
		}
		batch = append(batch, Record{m.Offset, m.Data})
	}
	size := 0
	for _, r := range batch {
		size += len(r.Data)
	}
	for len(batch) < cap(batch) {
		m, err := f.c.Read()
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			break
		}
		if err != nil {
			return batch, errorf("read: %w", err)
		}
		if len(batch) > 0 && size+len(m.Data) > f.opts.MaxBatchBytes {
			f.carry = &Record{m.Offset, m.Data} // it starts the next batch
			break
		}
		size += len(m.Data)
		batch = append(batch, Record{m.Offset, m.Data})
	}
	return batch, nil
}

// next returns the pause before the next retry.
func (f *Forwarder) next(prev time.Duration) time.Duration {
	d := max(f.opts.MinBackoff, min(2*prev, f.opts.MaxBackoff))
	return d + time.Duration(f.rng.Int64N(int64(d)/2+1))
}

func (f *Forwarder) report() {
	if f.opts.Progress != nil {
		f.opts.Progress(f.prog)
	}
}
