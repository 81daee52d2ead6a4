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
	"fmt"
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

// Defaults of Options.
const (
	DefaultMaxBatch      = 2048
	DefaultMaxBatchBytes = 4 << 20
)

// Options tune a Forwarder; the zero value gives the defaults.
type Options struct {
	// MaxBatch and MaxBatchBytes bound what is in flight: one batch of at
	// most MaxBatch messages and MaxBatchBytes bytes of messages (or one
	// message, when it alone is larger), sent and acknowledged before the
	// next is read. Defaults DefaultMaxBatch and DefaultMaxBatchBytes: on
	// the benchmark's loopback engines, 256 messages a batch cost a third
	// of JetStream's messages/s, 2048 about a tenth.
	MaxBatch      int
	MaxBatchBytes int
	// MinBackoff and MaxBackoff bound the pause before a retry, which
	// doubles from MinBackoff after each failure in a row, with up to half
	// of it added at random. Defaults 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// StopGrace is how long Run, once its context ends, still waits for
	// the batch in flight to be acknowledged, so that it can commit it.
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
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	return &Forwarder{c: c, sink: sink, opts: opts, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
}

// Run forwards messages until ctx ends, then returns ctx.Err() with every
// acknowledged message committed: a batch in flight when ctx ends has
// Options.StopGrace to be acknowledged. Another error of the queue (a
// damaged record, a closed queue) ends it too; a sink's errors are
// retried.
func (f *Forwarder) Run(ctx context.Context) error {
	// Messages read but not committed are read again: the forwarder
	// starts from the committed offset.
	if err := f.c.Seek(f.c.Committed()); err != nil {
		return fmt.Errorf("forward: %w", err)
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
	buf := make([]Record, 0, f.opts.MaxBatch)
	backoff := time.Duration(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// batch is what of buf is not yet acknowledged; buf keeps its
		// capacity for the next fill.
		batch, err := f.fill(ctx, buf[:0])
		if err != nil {
			return err
		}
		for len(batch) > 0 {
			acked, err := f.sink.Send(sendCtx, batch)
			acked = max(0, min(acked, len(batch)))
			if acked > 0 {
				if cerr := f.c.CommitOffset(batch[acked-1].Offset + 1); cerr != nil {
					return fmt.Errorf("forward: commit: %w", cerr)
				}
				f.prog.Forwarded += uint64(acked)
				f.prog.Committed = batch[acked-1].Offset + 1
				batch = batch[acked:]
			}
			if err == nil {
				backoff = 0
				f.prog.LastError = nil
				f.report()
				continue
			}
			f.prog.Failures++
			f.prog.LastError = err
			f.report()
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
}

// fill reads a batch: the first message waiting for it, the rest as far
// as they are there and fit.
func (f *Forwarder) fill(ctx context.Context, batch []Record) ([]Record, error) {
	if f.carry != nil {
		batch = append(batch, *f.carry)
		f.carry = nil
	} else {
		m, err := f.c.ReadWait(ctx)
		if err != nil {
			return batch, err
		}
		batch = append(batch, Record{m.Offset, m.Data})
	}
	size := len(batch[0].Data)
	for len(batch) < cap(batch) {
		m, err := f.c.Read()
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			break
		}
		if err != nil {
			return batch, fmt.Errorf("forward: read: %w", err)
		}
		if size += len(m.Data); size > f.opts.MaxBatchBytes {
			f.carry = &Record{m.Offset, m.Data} // it starts the next batch
			break
		}
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
