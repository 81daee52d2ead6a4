package benchmarks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Every message carries its sequence number in its first 8 bytes and the
// complement of it in its last 8, so the drain sees reordering, loss,
// duplication and truncation. The bytes between are a fixed pattern.
const (
	seqBytes = 8
	// MinMsgSize is the smallest message a workload may use.
	MinMsgSize = 2 * seqBytes
	// syncEvery is how often the durable workload calls Queue.Sync.
	syncEvery = 100
)

// stallTimeout is how long a consumer of the concurrent workload keeps
// finding the queue empty, with no consumer making progress, before the run
// is declared failed (messages lost) rather than left hanging. A variable so
// tests can shorten it.
var stallTimeout = 30 * time.Second

// Workload is one measured case.
type Workload struct {
	// Name is the short name used by -workloads and shown in the table.
	Name string
	// Desc says what the workload does, for the README and -h.
	Desc string
	// MsgSize is the size of every message in bytes.
	MsgSize int
	// N is the number of messages at -scale 1; the same for every
	// implementation.
	N int
	// Durable asks for a sync every 100 enqueues (see Config.Durable).
	Durable bool

	run func(q Queue, n, size int) error
}

// Workloads returns every workload in table order.
//
// The message counts are the same for every implementation of a case. They
// give 16 to 128 MiB per case: each case takes 0.1-1 s for the fast
// implementations, and the slowest ones keep the default comparison
// (5 rounds) within about 5 minutes on a 2-core VM.
func Workloads() []Workload {
	return []Workload{
		{Name: "fifo-128B", MsgSize: 128, N: 1 << 18,
			Desc: "enqueue N messages, then drain them in order", run: runFIFO(0)},
		{Name: "fifo-4KiB", MsgSize: 4 << 10, N: 1 << 14,
			Desc: "enqueue N messages, then drain them in order", run: runFIFO(0)},
		{Name: "fifo-128KiB", MsgSize: 128 << 10, N: 1 << 10,
			Desc: "enqueue N messages, then drain them in order", run: runFIFO(0)},
		{Name: "concurrent-128B", MsgSize: 128, N: 1 << 18,
			Desc: "2 producers and 2 consumers on one queue at once", run: runConcurrent},
		{Name: "concurrent-4KiB", MsgSize: 4 << 10, N: 1 << 14,
			Desc: "2 producers and 2 consumers on one queue at once", run: runConcurrent},
		{Name: "durable-4KiB", MsgSize: 4 << 10, N: 1 << 12, Durable: true,
			Desc: "sync every 100 enqueues, then drain", run: runFIFO(syncEvery)},
	}
}

// SelectWorkloads returns the workloads named in the comma list, in table
// order. An empty list selects all.
func SelectWorkloads(list string) ([]Workload, error) {
	all := Workloads()
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []Workload
	var known []string
	for _, w := range all {
		known = append(known, w.Name)
		if want[w.Name] {
			out = append(out, w)
			delete(want, w.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown workload(s): %s; known: %s",
			strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}

// Messages returns the message count of w at the given scale.
func (w Workload) Messages(scale float64) int {
	n := int(math.Round(float64(w.N) * scale))
	if n < 2 {
		n = 2
	}
	return n
}

// Result is one measured run.
type Result struct {
	Messages int
	Bytes    int64         // payload bytes enqueued (and dequeued)
	Elapsed  time.Duration // enqueue + drain; open, close and cleanup excluded
	Mallocs  uint64        // runtime.MemStats.Mallocs delta over Elapsed
}

// NsPerMsg is the time per message, enqueue and dequeue together.
func (r Result) NsPerMsg() float64 { return float64(r.Elapsed.Nanoseconds()) / float64(r.Messages) }

// MBPerSec is payload throughput in 10^6 bytes per second.
func (r Result) MBPerSec() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

// AllocsPerMsg is heap allocations (whole process) per message.
func (r Result) AllocsPerMsg() float64 { return float64(r.Mallocs) / float64(r.Messages) }

// Run runs workload w once on a fresh queue of impl in a new temporary
// directory, which it removes afterwards. It returns ErrUnsupported (wrapped)
// when impl cannot run w, and any other error when the run failed: an
// error from the queue, or a message lost, duplicated, reordered or damaged.
func Run(impl Impl, w Workload, scale float64) (Result, error) {
	n := w.Messages(scale)
	if w.MsgSize < MinMsgSize {
		return Result{}, fmt.Errorf("workload %s: message size %d below %d", w.Name, w.MsgSize, MinMsgSize)
	}
	dir, err := os.MkdirTemp("", "bqcompare-"+impl.Name+"-")
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	q, err := impl.Open(dir, Config{MsgSize: w.MsgSize, Durable: w.Durable})
	if err != nil {
		return Result{}, fmt.Errorf("open: %w", err)
	}

	// Start from a quiet disk: write back what earlier runs left dirty, so
	// one implementation's writeback is not charged to the next one.
	syscall.Sync()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	runErr := w.run(q, n, w.MsgSize)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)

	if err := q.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close: %w", err)
	}
	if runErr != nil {
		return Result{}, runErr
	}
	return Result{
		Messages: n,
		Bytes:    int64(n) * int64(w.MsgSize),
		Elapsed:  elapsed,
		Mallocs:  after.Mallocs - before.Mallocs,
	}, nil
}

// newPayload returns a message buffer with the fixed filler pattern.
func newPayload(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// stamp writes seq into the head and its complement into the tail of m.
func stamp(m []byte, seq uint64) {
	binary.LittleEndian.PutUint64(m, seq)
	binary.LittleEndian.PutUint64(m[len(m)-seqBytes:], ^seq)
}

// readStamp checks the length and both stamps of m and returns its sequence.
func readStamp(m []byte, size int) (uint64, error) {
	if len(m) != size {
		return 0, fmt.Errorf("message of %d bytes, want %d", len(m), size)
	}
	seq := binary.LittleEndian.Uint64(m)
	if tail := binary.LittleEndian.Uint64(m[len(m)-seqBytes:]); tail != ^seq {
		return 0, fmt.Errorf("message with sequence %#x has a damaged tail (%#x)", seq, tail)
	}
	return seq, nil
}

// dequeuer reads through DequeueAppend into its own buffer when the queue
// offers it, through Dequeue otherwise. One per consumer goroutine.
type dequeuer struct {
	q   Queue
	ad  AppendDequeuer
	buf []byte
}

func newDequeuer(q Queue, size int) *dequeuer {
	d := &dequeuer{q: q}
	if ad, ok := q.(AppendDequeuer); ok {
		d.ad = ad
		d.buf = make([]byte, 0, size)
	}
	return d
}

func (d *dequeuer) next() ([]byte, error) {
	if d.ad == nil {
		return d.q.Dequeue()
	}
	m, err := d.ad.DequeueAppend(d.buf[:0])
	if err != nil {
		return nil, err
	}
	d.buf = m
	return m, nil
}

// runFIFO enqueues n messages (syncing every `every` when every > 0), then
// drains them, checking that they come back complete and in order, and that
// the queue is empty afterwards.
func runFIFO(every int) func(q Queue, n, size int) error {
	return func(q Queue, n, size int) error {
		buf := newPayload(size)
		for i := 0; i < n; i++ {
			stamp(buf, uint64(i))
			if err := q.Enqueue(buf); err != nil {
				return fmt.Errorf("enqueue %d: %w", i, err)
			}
			if every > 0 && (i+1)%every == 0 {
				if err := q.Sync(); err != nil {
					return fmt.Errorf("sync after %d: %w", i+1, err)
				}
			}
		}
		if every > 0 && n%every != 0 {
			if err := q.Sync(); err != nil {
				return fmt.Errorf("final sync: %w", err)
			}
		}
		d := newDequeuer(q, size)
		for i := 0; i < n; i++ {
			m, err := d.next()
			if errors.Is(err, ErrEmpty) {
				return fmt.Errorf("LOST MESSAGES: queue empty after %d of %d", i, n)
			}
			if err != nil {
				return fmt.Errorf("dequeue %d: %w", i, err)
			}
			seq, err := readStamp(m, size)
			if err != nil {
				return fmt.Errorf("DAMAGED MESSAGE at position %d: %w", i, err)
			}
			if seq != uint64(i) {
				return fmt.Errorf("FIFO ORDER BROKEN: position %d holds message %d", i, seq)
			}
		}
		if _, err := d.next(); !errors.Is(err, ErrEmpty) {
			return fmt.Errorf("EXTRA MESSAGES: queue not empty after draining %d (err %v)", n, err)
		}
		return nil
	}
}

// runConcurrent runs 2 producers and 2 consumers on q at once. Producer p
// sends messages p<<32|i for i in its share of n. Each consumer must see
// every producer's messages in increasing order, and together the consumers
// must receive every message exactly once.
func runConcurrent(q Queue, n, size int) error {
	const producers, consumers = 2, 2
	share := [producers]int{n - n/2, n / 2}

	var (
		received atomic.Int64
		failed   atomic.Bool
		errMu    sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		failed.Store(true)
	}

	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			buf := newPayload(size)
			for i := 0; i < share[p] && !failed.Load(); i++ {
				stamp(buf, uint64(p)<<32|uint64(i))
				if err := q.Enqueue(buf); err != nil {
					fail(fmt.Errorf("producer %d, enqueue %d: %w", p, i, err))
					return
				}
			}
		}(p)
	}

	// seen[c][p][i]: consumer c received message i of producer p.
	var seen [consumers][producers][]bool
	for c := range seen {
		for p := range seen[c] {
			seen[c][p] = make([]bool, share[p])
		}
	}
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			d := newDequeuer(q, size)
			last := [producers]int64{-1, -1}
			var empties int
			snap, since := received.Load(), time.Now()
			for received.Load() < int64(n) && !failed.Load() {
				m, err := d.next()
				if errors.Is(err, ErrEmpty) {
					empties++
					if empties%1024 == 0 {
						if cur := received.Load(); cur != snap {
							snap, since = cur, time.Now()
						} else if time.Since(since) > stallTimeout {
							fail(fmt.Errorf("LOST MESSAGES: stalled at %d of %d received (queue empty for %v)",
								cur, n, stallTimeout))
							return
						}
					}
					runtime.Gosched()
					continue
				}
				if err != nil {
					fail(fmt.Errorf("consumer %d: dequeue: %w", c, err))
					return
				}
				seq, err := readStamp(m, size)
				if err != nil {
					fail(fmt.Errorf("DAMAGED MESSAGE at consumer %d: %w", c, err))
					return
				}
				p, i := int(seq>>32), int64(seq&math.MaxUint32)
				if p >= producers || i >= int64(share[p]) {
					fail(fmt.Errorf("INVENTED MESSAGE: consumer %d got sequence %#x", c, seq))
					return
				}
				if i <= last[p] {
					fail(fmt.Errorf("FIFO ORDER BROKEN: consumer %d got message %d of producer %d after %d",
						c, i, p, last[p]))
					return
				}
				last[p] = i
				seen[c][p][i] = true
				received.Add(1)
			}
		}(c)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}

	var missing, dup int
	for p := 0; p < producers; p++ {
		for i := 0; i < share[p]; i++ {
			k := 0
			for c := 0; c < consumers; c++ {
				if seen[c][p][i] {
					k++
				}
			}
			switch {
			case k == 0:
				missing++
			case k > 1:
				dup++
			}
		}
	}
	if missing > 0 || dup > 0 {
		return fmt.Errorf("NOT EXACTLY ONCE: %d messages missing, %d delivered twice (received %d of %d)",
			missing, dup, received.Load(), n)
	}
	if _, err := q.Dequeue(); !errors.Is(err, ErrEmpty) {
		return fmt.Errorf("EXTRA MESSAGES: queue not empty after receiving all %d (err %v)", n, err)
	}
	return nil
}
