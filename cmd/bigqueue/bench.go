package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/seed-ff72c416/bigqueue"
)

const benchAbout = `
Measures the library: enqueues -n messages of -size bytes into an empty
queue, flushes it, then dequeues them all and verifies each one. Every
message carries its sequence number and a pattern that depends on it, so a
message lost, reordered, truncated or mixed with another fails the run.

The queue is made in a new temporary directory, removed afterwards, unless
-dir is given: then that directory is used (created if needed) and kept; a
queue already there must be empty, and keeps the arena size it was made
with. The library's default flush settings stay on, as in normal use.

It prints the parameters, then for each phase the throughput (messages/s,
and MB/s of message bytes, 1 MB = 10^6 bytes) over the wall-clock time of
the whole phase, and the latency of the Enqueue or DequeueAppend calls:
every call is timed by reading the monotonic clock before and after it,
so the percentiles (p50, p90, p99, p99.9, max; nearest rank) are exact
over all calls and include the clock's own cost, which is printed too.
A progress bar goes to stderr unless -quiet.
An interrupt (Ctrl-C) stops the run and still removes the temporary queue.
`

// Bench payload layout: the first seqBytes bytes of a message are its
// sequence number, little endian; the rest is a slice of a fixed random
// pattern starting at an offset that depends on the sequence number.
const (
	seqBytes      = 8
	patternSpread = 251 // distinct pattern offsets (a prime, so neighbours differ)
	defaultBenchN = 1_000_000
	// The library's default, as the queue of a program that sets none:
	// 8 alternating runs each on 2026-12-03 gave 6.05M enqueues/s
	// against 5.81M with 64 MiB arenas, the tool's earlier default.
	benchArena = bigqueue.DefaultArenaSize
	benchBatch = 1024 // operations between progress updates and interrupt checks
)

// benchConfig is what one bench run does.
type benchConfig struct {
	dir       string // queue directory; "" for a temporary one
	n         int    // messages
	size      int    // bytes per message
	arenaSize int    // arena size of a new queue
	quiet     bool   // no progress bar
}

// phaseResult is the outcome of the enqueue or the dequeue phase.
type phaseResult struct {
	name    string
	elapsed time.Duration // wall-clock time of the phase
	latency latencySummary
}

// runBench implements "bigqueue bench".
func runBench(e *env, args []string) error {
	f := newFlags("bench", "[-dir DIR] [-n N] [-size BYTES] [-arena-size SIZE] [-quiet]", benchAbout)
	var cfg benchConfig
	f.StringVar(&cfg.dir, "dir", "", "queue `DIR` to use and keep (default: a temporary one, removed afterwards)")
	f.IntVar(&cfg.n, "n", defaultBenchN, "`N` messages to enqueue, then dequeue")
	f.IntVar(&cfg.size, "size", 128, "message size in `BYTES` (at least 8, for the sequence number)")
	arenaSize := sizeFlag(benchArena)
	f.Var(&arenaSize, "arena-size", "arena `SIZE` of a new queue: bytes, or a number with K, M or G, powers of 1024 (64K = 64KiB = 64KB = 65536)")
	f.BoolVar(&cfg.quiet, "quiet", false, "do not show the progress bar")
	if _, err := f.parse(args); err != nil {
		return err
	}
	cfg.arenaSize = int(arenaSize)
	switch {
	case cfg.n < 1:
		return f.usageErr(errorf("-n %d: must be at least 1", cfg.n))
	case cfg.size < seqBytes:
		return f.usageErr(errorf("-size %d: must be at least %d", cfg.size, seqBytes))
	}
	if err := checkArenaSize(cfg.arenaSize); err != nil {
		return f.usageErr(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, e, cfg); err != nil {
		return errorf("bench: %w", err)
	}
	return nil
}

// bench runs both phases and prints the report to e.stdout.
func bench(ctx context.Context, e *env, cfg benchConfig) (err error) {
	dir, keep := cfg.dir, cfg.dir != ""
	if !keep {
		if dir, err = os.MkdirTemp("", "bigqueue-bench-"); err != nil {
			return err
		}
		defer func() {
			if rerr := os.RemoveAll(dir); err == nil && rerr != nil {
				err = errorf("remove temporary queue: %w", rerr)
			}
		}()
	}
	q, err := openQueue(dir, true, cfg.arenaSize)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeQueue(q); err == nil {
			err = cerr
		}
	}()
	if n := q.Len(); n != 0 {
		return errorf("queue %s is not empty (%s): bench needs an empty queue", dir, count(n, "message"))
	}
	before, err := q.Stats()
	if err != nil {
		return err
	}

	where := dir + " (temporary, removed afterwards)"
	if keep {
		where = dir + " (kept)"
	}
	overhead := timerOverhead()
	_, _ = fmt.Fprintf(e.stdout, "bigqueue bench: %d messages of %d bytes, arena size %s, queue in %s\n",
		cfg.n, cfg.size, humanBytes(int64(before.ArenaSize)), where)
	_, _ = fmt.Fprintf(e.stdout, "latency: every call timed by the monotonic clock (clock cost ~%s, included)\n\n",
		humanDuration(overhead))

	b := newBenchRun(cfg)
	enq, err := b.enqueuePhase(ctx, e.stderr, q)
	if err != nil {
		return err
	}
	flushStart := time.Now()
	if err := q.Flush(); err != nil {
		return errorf("flush: %w", err)
	}
	flushTime := time.Since(flushStart)
	full, err := q.Stats()
	if err != nil {
		return err
	}
	deq, err := b.dequeuePhase(ctx, e.stderr, q)
	if err != nil {
		return err
	}
	if _, err := q.Peek(); !errors.Is(err, bigqueue.ErrEmptyQueue) {
		return errorf("queue not empty after dequeuing every message (Peek: %v)", err)
	}

	return b.report(e.stdout, []phaseResult{enq, deq}, flushTime, full)
}

// benchRun holds the payload pattern and the latency buffer of one run.
type benchRun struct {
	cfg     benchConfig
	pattern []byte          // random bytes a message's body is cut from
	lat     []time.Duration // per-operation latencies of the current phase
}

func newBenchRun(cfg benchConfig) *benchRun {
	pattern := make([]byte, cfg.size+patternSpread)
	x := uint64(0x9E3779B97F4A7C15) // xorshift64: cheap, fixed, not all equal
	for i := range pattern {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		pattern[i] = byte(x)
	}
	return &benchRun{cfg: cfg, pattern: pattern, lat: make([]time.Duration, cfg.n)}
}

// body returns the bytes message seq must have after its sequence number.
func (b *benchRun) body(seq int) []byte {
	off := seq % patternSpread
	return b.pattern[off+seqBytes : off+b.cfg.size]
}

// enqueuePhase enqueues cfg.n messages, timing each Enqueue.
func (b *benchRun) enqueuePhase(ctx context.Context, progress io.Writer, q *bigqueue.MmapQueue) (phaseResult, error) {
	bar := b.newBar(progress, "enqueue")
	msg := make([]byte, b.cfg.size)
	clk := newMonoClock()
	start := time.Now()
	for i := 0; i < b.cfg.n; i++ {
		if i%benchBatch == 0 && i > 0 {
			if err := b.tick(ctx, bar, benchBatch); err != nil {
				return phaseResult{}, err
			}
		}
		binary.LittleEndian.PutUint64(msg, uint64(i))
		copy(msg[seqBytes:], b.body(i))
		t0 := clk.now()
		err := q.Enqueue(msg)
		b.lat[i] = clk.now() - t0
		if err != nil {
			_ = bar.Exit()
			return phaseResult{}, errorf("enqueue message %d: %w", i, err)
		}
	}
	elapsed := time.Since(start)
	_ = bar.Finish()
	return phaseResult{name: "enqueue", elapsed: elapsed, latency: summarize(b.lat)}, nil
}

// dequeuePhase dequeues cfg.n messages, timing each DequeueAppend, and
// verifies that they come back whole and in order.
func (b *benchRun) dequeuePhase(ctx context.Context, progress io.Writer, q *bigqueue.MmapQueue) (phaseResult, error) {
	bar := b.newBar(progress, "dequeue")
	buf := make([]byte, 0, b.cfg.size)
	clk := newMonoClock()
	start := time.Now()
	for i := 0; i < b.cfg.n; i++ {
		if i%benchBatch == 0 && i > 0 {
			if err := b.tick(ctx, bar, benchBatch); err != nil {
				return phaseResult{}, err
			}
		}
		t0 := clk.now()
		msg, err := q.DequeueAppend(buf[:0])
		b.lat[i] = clk.now() - t0
		if err == nil {
			err = b.verify(i, msg)
		}
		if err != nil {
			_ = bar.Exit()
			return phaseResult{}, errorf("dequeue message %d: %w", i, err)
		}
		buf = msg
	}
	elapsed := time.Since(start)
	_ = bar.Finish()
	return phaseResult{name: "dequeue", elapsed: elapsed, latency: summarize(b.lat)}, nil
}

// verify checks that msg is message seq as enqueuePhase wrote it.
func (b *benchRun) verify(seq int, msg []byte) error {
	if len(msg) != b.cfg.size {
		return errorf("got %d bytes, want %d", len(msg), b.cfg.size)
	}
	if got := binary.LittleEndian.Uint64(msg); got != uint64(seq) {
		return errorf("got message %d out of order", got)
	}
	if body := b.body(seq); !bytes.Equal(msg[seqBytes:], body) {
		at := seqBytes
		for msg[at] == body[at-seqBytes] {
			at++
		}
		return errorf("content differs from what was enqueued at byte %d", at)
	}
	return nil
}

// tick advances the progress bar by done operations and stops the phase if
// the run was interrupted.
func (b *benchRun) tick(ctx context.Context, bar *progressbar.ProgressBar, done int) error {
	if err := ctx.Err(); err != nil {
		_ = bar.Exit()
		return errors.New("interrupted")
	}
	_ = bar.Add(done)
	return nil
}

// newBar returns the progress bar of one phase, written to w.
func (b *benchRun) newBar(w io.Writer, phase string) *progressbar.ProgressBar {
	if b.cfg.quiet {
		return progressbar.NewOptions64(int64(b.cfg.n), progressbar.OptionSetVisibility(false))
	}
	return progressbar.NewOptions64(int64(b.cfg.n),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-7s", phase)),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("msg"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { _, _ = fmt.Fprintln(w) }),
	)
}

// report prints the throughput and latency table of both phases.
func (b *benchRun) report(w io.Writer, phases []phaseResult, flushTime time.Duration, full bigqueue.Stats) error {
	header := []string{"phase", "msgs/s", "MB/s", "time"}
	for _, p := range percentiles {
		header = append(header, p.label)
	}
	rows := [][]string{append(header, "max")}
	for _, ph := range phases {
		secs := ph.elapsed.Seconds()
		row := []string{
			ph.name,
			fmt.Sprintf("%.0f", float64(b.cfg.n)/secs),
			fmt.Sprintf("%.1f", float64(b.cfg.n)*float64(b.cfg.size)/1e6/secs),
			humanDuration(ph.elapsed),
		}
		for _, q := range ph.latency.quantiles {
			row = append(row, humanDuration(q))
		}
		rows = append(rows, append(row, humanDuration(ph.latency.max)))
	}
	if err := writeTable(w, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nflush after enqueue: %s; on disk when full: %s in %s\n",
		humanDuration(flushTime), humanBytes(full.DiskBytes), count(full.Arenas, "arena"))
	return err
}
