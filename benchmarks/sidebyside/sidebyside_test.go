// Package sidebyside runs the reference implementation's benchmarks, with
// its names and parameters, on either implementation: BQ_IMPL=bigqueue
// (this project, the default) or BQ_IMPL=reference
// (github.com/grandecola/bigqueue v0.6.0). Both have the same API, so one
// benchmark body serves both, and benchstat can set the two outputs side
// by side: see run.sh, which interleaves them.
package sidebyside

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	ref "github.com/grandecola/bigqueue"
	bq "github.com/seed-ff72c416/bigqueue"
)

// queue is the part of the API the benchmarks use.
type queue interface {
	Enqueue([]byte) error
	EnqueueString(string) error
	Dequeue() ([]byte, error)
	DequeueString() (string, error)
	Close() error
}

// open opens the implementation BQ_IMPL names, with the reference
// benchmarks' options: no periodic flush.
func open(b *testing.B, arenaSize, maxInMem int) queue {
	b.Helper()
	dir := b.TempDir()
	var q queue
	var err error
	switch impl := os.Getenv("BQ_IMPL"); impl {
	case "", "bigqueue":
		q, err = bq.NewMmapQueue(dir, bq.SetArenaSize(arenaSize), bq.SetMaxInMemArenas(maxInMem),
			bq.SetPeriodicFlushOps(0), bq.SetPeriodicFlushDuration(time.Duration(0)))
	case "reference":
		q, err = ref.NewMmapQueue(dir, ref.SetArenaSize(arenaSize), ref.SetMaxInMemArenas(maxInMem),
			ref.SetPeriodicFlushOps(0), ref.SetPeriodicFlushDuration(time.Duration(0)))
	default:
		b.Fatalf("BQ_IMPL=%q: want bigqueue or reference", impl)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := q.Close(); err != nil {
			b.Error(err)
		}
	})
	return q
}

type param struct {
	arenaSize int
	arenaName string
	message   []byte
	msgName   string
	maxInMem  int
	memName   string
}

// params are the reference's, but for the 128 MB arena cases, which write
// gigabytes per run; run.sh's BENCH can still select those.
func params() []param {
	base := []byte("abcdefghijlkmnopqrstuvwxyzABCDEF")
	m128 := bytes.Repeat(base, 4)
	m4K := bytes.Repeat(base, 128)
	m128K := bytes.Repeat(base, 4096)
	m4M := bytes.Repeat(base, 131072)
	const kb = 4 * 1024
	return []param{
		{kb, "4KB", m128, "128B", 3, "12KB"},
		{kb, "4KB", m128, "128B", 10, "40KB"},
		{kb, "4KB", m128, "128B", 0, "NoLimit"},
		{32 * kb, "128KB", m4K, "4KB", 3, "384KB"},
		{32 * kb, "128KB", m4K, "4KB", 10, "1.25MB"},
		{32 * kb, "128KB", m4K, "4KB", 0, "NoLimit"},
		{1024 * kb, "4MB", m128K, "128KB", 3, "12MB"},
		{1024 * kb, "4MB", m128K, "128KB", 10, "40MB"},
		{1024 * kb, "4MB", m128K, "128KB", 0, "NoLimit"},
		{32 * 1024 * kb, "128MB", m4M, "4MB", 3, "256MB"},
		{32 * 1024 * kb, "128MB", m4M, "4MB", 10, "1.25GB"},
		{32 * 1024 * kb, "128MB", m4M, "4MB", 0, "NoLimit"},
	}
}

func (p param) name() string {
	return fmt.Sprintf("ArenaSize-%s/MessageSize-%s/MaxMem-%s", p.arenaName, p.msgName, p.memName)
}

func BenchmarkEnqueue(b *testing.B) {
	for _, p := range params() {
		b.Run(p.name(), func(b *testing.B) {
			q := open(b, p.arenaSize, p.maxInMem)
			b.ReportAllocs()
			b.SetBytes(int64(len(p.message)))
			b.ResetTimer()
			for range b.N {
				if err := q.Enqueue(p.message); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDequeue(b *testing.B) {
	for _, p := range params() {
		b.Run(p.name(), func(b *testing.B) {
			q := open(b, p.arenaSize, p.maxInMem)
			for range b.N {
				if err := q.Enqueue(p.message); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(p.message)))
			b.ResetTimer()
			for range b.N {
				if _, err := q.Dequeue(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEnqueueDequeue is a consumer that keeps up: one enqueue, one
// dequeue.
func BenchmarkEnqueueDequeue(b *testing.B) {
	for _, c := range []struct {
		name      string
		arenaSize int
		size      int
	}{
		{"ArenaSize-4KB/MessageSize-128B", 4 << 10, 128},
		{"ArenaSize-16MB/MessageSize-4MB", 16 << 20, 4 << 20},
	} {
		b.Run(c.name, func(b *testing.B) {
			q := open(b, c.arenaSize, 3)
			msg := bytes.Repeat([]byte("y"), c.size)
			b.ReportAllocs()
			b.SetBytes(int64(c.size))
			b.ResetTimer()
			for range b.N {
				if err := q.Enqueue(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := q.Dequeue(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBothImplementations runs both implementations through the same
// enqueue and dequeue, so that the benchmarks measure queues that work.
func TestBothImplementations(t *testing.T) {
	for _, impl := range []string{"bigqueue", "reference"} {
		t.Run(impl, func(t *testing.T) {
			dir := t.TempDir()
			var q queue
			var err error
			if impl == "bigqueue" {
				q, err = bq.NewMmapQueue(dir, bq.SetArenaSize(4096))
			} else {
				q, err = ref.NewMmapQueue(dir, ref.SetArenaSize(4096))
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range 500 {
				if err := q.EnqueueString(fmt.Sprintf("message %d", i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 500 {
				got, err := q.DequeueString()
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("message %d", i); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
