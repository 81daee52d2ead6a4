package bigqueue

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// The benchmarks keep the reference implementation's names and parameters
// (github.com/grandecola/bigqueue v0.6.0, benchmarks_test.go), so that
// benchstat can set the two side by side. Each runs in its own b.TempDir.

type benchParam struct {
	arenaSize           int
	arenaSizeString     string
	message             []byte
	messageSizeString   string
	maxInMemArenaCount  int
	maxInMemArenaString string
}

func benchParams() []benchParam {
	base := []byte("abcdefghijlkmnopqrstuvwxyzABCDEF")
	m128 := bytes.Repeat(base, 4)
	m4K := bytes.Repeat(base, 128)
	m128K := bytes.Repeat(base, 4096)
	m4M := bytes.Repeat(base, 131072)
	const kb = 4 * 1024
	return []benchParam{
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

func (p benchParam) name() string {
	return fmt.Sprintf("ArenaSize-%s/MessageSize-%s/MaxMem-%s", p.arenaSizeString, p.messageSizeString, p.maxInMemArenaString)
}

func benchQueue(b *testing.B, arenaSize, maxInMem int) *MmapQueue {
	b.Helper()
	q, err := NewMmapQueue(b.TempDir(), SetArenaSize(arenaSize), SetMaxInMemArenas(maxInMem),
		SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	if err != nil {
		b.Fatalf("open queue: %v", err)
	}
	b.Cleanup(func() {
		if err := q.Close(); err != nil {
			b.Errorf("close: %v", err)
		}
	})
	return q
}

func BenchmarkNewMmapQueue(b *testing.B) {
	prev := -1
	for _, p := range benchParams() {
		if p.arenaSize == prev {
			continue
		}
		prev = p.arenaSize
		b.Run("ArenaSize-"+p.arenaSizeString, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				dir := b.TempDir()
				b.StartTimer()
				q, err := NewMmapQueue(dir, SetArenaSize(p.arenaSize), SetMaxInMemArenas(p.maxInMemArenaCount),
					SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := q.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

func BenchmarkEnqueue(b *testing.B) {
	for _, p := range benchParams() {
		b.Run(p.name(), func(b *testing.B) {
			q := benchQueue(b, p.arenaSize, p.maxInMemArenaCount)
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

func BenchmarkEnqueueString(b *testing.B) {
	for _, p := range benchParams() {
		b.Run(p.name(), func(b *testing.B) {
			q := benchQueue(b, p.arenaSize, p.maxInMemArenaCount)
			msg := string(p.message)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				if err := q.EnqueueString(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDequeue(b *testing.B) {
	for _, p := range benchParams() {
		b.Run(p.name(), func(b *testing.B) {
			q := benchQueue(b, p.arenaSize, p.maxInMemArenaCount)
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

func BenchmarkDequeueString(b *testing.B) {
	for _, p := range benchParams() {
		b.Run(p.name(), func(b *testing.B) {
			q := benchQueue(b, p.arenaSize, p.maxInMemArenaCount)
			msg := string(p.message)
			for range b.N {
				if err := q.EnqueueString(msg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				if _, err := q.DequeueString(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDequeueAppend reads into one reused buffer: no allocation.
func BenchmarkDequeueAppend(b *testing.B) {
	for _, p := range benchParams() {
		b.Run(p.name(), func(b *testing.B) {
			q := benchQueue(b, p.arenaSize, p.maxInMemArenaCount)
			for range b.N {
				if err := q.Enqueue(p.message); err != nil {
					b.Fatal(err)
				}
			}
			buf := make([]byte, 0, len(p.message))
			b.ReportAllocs()
			b.SetBytes(int64(len(p.message)))
			b.ResetTimer()
			for range b.N {
				var err error
				if buf, err = q.DequeueAppend(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkStringDoubleCopy(b *testing.B) {
	q := benchQueue(b, DefaultArenaSize, DefaultMaxInMemArenas)
	data := "abcdefghijk"
	b.ReportAllocs()
	for range b.N {
		if err := q.Enqueue([]byte(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStringNoCopy(b *testing.B) {
	q := benchQueue(b, DefaultArenaSize, DefaultMaxInMemArenas)
	data := "abcdefghijk"
	b.ReportAllocs()
	for range b.N {
		if err := q.EnqueueString(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueBatch enqueues batches of 100 messages of 128 bytes; one
// op is one message.
func BenchmarkEnqueueBatch(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 128)
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = msg
	}
	q := benchQueue(b, 64<<20, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		n := min(len(batch), b.N-i)
		if err := q.EnqueueBatch(batch[:n]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueFlush is durable throughput: a Flush after every N
// enqueues of 128 bytes.
func BenchmarkEnqueueFlush(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 128)
	for _, every := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("Every-%d", every), func(b *testing.B) {
			q := benchQueue(b, 64<<20, 0)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for i := range b.N {
				if err := q.Enqueue(msg); err != nil {
					b.Fatal(err)
				}
				if i%every == every-1 {
					if err := q.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkEnqueueDequeue enqueues one message and dequeues one: a consumer
// that keeps up. With 128-byte messages in 64 MiB arenas it is the cost of
// a small message, arena switches aside; with 4 MiB messages in 16 MiB
// arenas it is the SPEC's large-message case; compare it with
// BenchmarkCopyBaseline.
func BenchmarkEnqueueDequeue(b *testing.B) {
	cases := []struct {
		name      string
		arenaSize int
		size      int
	}{
		{"ArenaSize-4KB/MessageSize-128B", 4 << 10, 128},
		{"ArenaSize-64MB/MessageSize-128B", 64 << 20, 128},
		{"ArenaSize-16MB/MessageSize-4MB", 16 << 20, 4 << 20},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			q := benchQueue(b, c.arenaSize, DefaultMaxInMemArenas)
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

// BenchmarkCopyBaseline is the floor for BenchmarkEnqueueDequeue with 4 MiB
// messages: copy the bytes into already-mapped memory and out into a new
// slice.
func BenchmarkCopyBaseline(b *testing.B) {
	const size = 4 << 20
	mem, err := unix.Mmap(-1, 0, 16<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = unix.Munmap(mem) }()
	msg := bytes.Repeat([]byte("y"), size)
	b.ReportAllocs()
	b.SetBytes(size)
	for i := range b.N {
		off := (i % 4) * size
		copy(mem[off:off+size], msg)
		out := make([]byte, size)
		copy(out, mem[off:off+size])
	}
}

// BenchmarkFreshPageBaseline is the floor for BenchmarkEnqueue in pure
// growth (no consumer, MaxMem NoLimit, arenas of 4 MiB and more): write each
// message into fresh pages of a new file, created, allocated and mapped one
// arena at a time, as any queue of memory-mapped files must. Its cases have
// the names of the BenchmarkEnqueue cases they are the floor of.
func BenchmarkFreshPageBaseline(b *testing.B) {
	for _, p := range benchParams() {
		if p.maxInMemArenaCount != 0 || p.arenaSize < 4<<20 {
			continue
		}
		b.Run(p.name(), func(b *testing.B) {
			dir := b.TempDir()
			var maps [][]byte
			defer func() {
				for _, m := range maps {
					_ = unix.Munmap(m)
				}
			}()
			var cur []byte
			off := 0
			b.ReportAllocs()
			b.SetBytes(int64(len(p.message)))
			for i := range b.N {
				if cur == nil || off+len(p.message) > len(cur) {
					fd, err := unix.Open(fmt.Sprintf("%s/file-%d", dir, i), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
					if err != nil {
						b.Fatal(err)
					}
					if err := allocateFile(fd, 0, int64(p.arenaSize)); err != nil {
						b.Fatal(err)
					}
					if cur, err = unix.Mmap(fd, 0, p.arenaSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
						b.Fatal(err)
					}
					_ = unix.Close(fd)
					maps, off = append(maps, cur), 0
				}
				off += copy(cur[off:], p.message)
			}
		})
	}
}

// BenchmarkParallel runs GOMAXPROCS producers and as many consumers at
// once (go test -cpu 1,2 compares one core with two): b.N messages of 128
// bytes go through the queue; one op is one message enqueued and dequeued.
func BenchmarkParallel(b *testing.B) {
	msg := bytes.Repeat([]byte("z"), 128)
	q := benchQueue(b, 64<<20, DefaultMaxInMemArenas)
	workers := runtime.GOMAXPROCS(0)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	var wg sync.WaitGroup
	var dequeued atomic.Int64
	for w := range workers {
		n := b.N / workers
		if w < b.N%workers {
			n++
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range n {
				if err := q.Enqueue(msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, len(msg))
			for dequeued.Load() < int64(b.N) {
				var err error
				buf, err = q.DequeueAppend(buf[:0])
				switch {
				case err == nil:
					dequeued.Add(1)
				case err != ErrEmptyQueue:
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkNewMmapQueueBacklog opens a queue holding 1 GiB of messages
// that were enqueued and flushed: what a restart costs.
func BenchmarkNewMmapQueueBacklog(b *testing.B) {
	dir := b.TempDir()
	opts := []Option{SetArenaSize(64 << 20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	q, err := NewMmapQueue(dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	msg := bytes.Repeat([]byte("w"), 4096)
	for range (1 << 30) / len(msg) {
		if err := q.Enqueue(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	benchReopen(b, dir, opts)
}

// benchReopen times opening the queue in dir, b.N times; each close is
// left out of the time.
func benchReopen(b *testing.B, dir string, opts []Option) {
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		q, err := NewMmapQueue(dir, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkSeek seeks a consumer to a random offset and reads the message
// there, in queues of 20 and 2,000 arenas of 4 KiB (128-byte messages),
// capped to 3 mapped arenas or not, after a reopen, so the offset index
// comes from offsets.dat: the cost should not grow with the queue.
func BenchmarkSeek(b *testing.B) {
	for _, bc := range []struct {
		arenas, maxMem int
		name           string
	}{{20, 3, "12KB"}, {2000, 3, "12KB"}, {20, 0, "NoLimit"}, {2000, 0, "NoLimit"}} {
		arenas := bc.arenas
		b.Run(fmt.Sprintf("Arenas-%d/MaxMem-%s", arenas, bc.name), func(b *testing.B) {
			dir := b.TempDir()
			opts := []Option{SetArenaSize(4096), SetMaxInMemArenas(bc.maxMem), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
			fillArenas(b, dir, arenas, opts)
			q, err := NewMmapQueue(dir, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = q.Close() }()
			c, err := q.NewConsumer("seeker")
			if err != nil {
				b.Fatal(err)
			}
			_, next := q.Offsets()
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := c.Seek(rng.Uint64N(next)); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen opens (and closes) a queue of 20 or 2,000 arenas of 4 KiB
// whose consumers are at the head: the cost of reading offsets.dat, which
// opening reads instead of scanning the records.
func BenchmarkOpen(b *testing.B) {
	for _, arenas := range []int{20, 2000} {
		b.Run(fmt.Sprintf("Arenas-%d", arenas), func(b *testing.B) {
			dir := b.TempDir()
			opts := []Option{SetArenaSize(4096), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
			fillArenas(b, dir, arenas, opts)
			benchReopen(b, dir, opts)
		})
	}
}

// fillArenas fills a new queue in dir with 128-byte messages up to the
// end of its arenas-th arena of 4 KiB, and closes it.
func fillArenas(b *testing.B, dir string, arenas int, opts []Option) {
	q, err := NewMmapQueue(dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	msg := bytes.Repeat([]byte("m"), 128)
	for q.tail.pos < int64(arenas)*4096 {
		if err := q.Enqueue(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReaderRead reads 128-byte messages as a named consumer of a
// reader (OpenReader) with others consumers in the directory, held by
// another reader: a Read must not cost more with more of them.
func BenchmarkReaderRead(b *testing.B) {
	for _, others := range []int{0, 50} {
		b.Run(fmt.Sprintf("others-%d", others), func(b *testing.B) {
			dir := b.TempDir()
			w := openQueue(b, dir, SetArenaSize(64<<20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
			msg := make([]byte, 128)
			for range b.N {
				if err := w.Enqueue(msg); err != nil {
					b.Fatal(err)
				}
			}
			holder, err := OpenReader(dir, SetArenaSize(64<<20))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = holder.Close() })
			for i := range others {
				_, err := holder.NewConsumer(fmt.Sprintf("other-%d", i))
				if err != nil {
					b.Fatal(err)
				}
			}
			r, err := OpenReader(dir, SetArenaSize(64<<20))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = r.Close() })
			c, err := r.NewConsumer("reader")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Read(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
