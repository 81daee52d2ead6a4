package bigqueue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/seed-ff72c416/bigqueue"
)

// A queue in a directory: enqueue, then dequeue in FIFO order.
func ExampleMmapQueue() {
	dir, err := os.MkdirTemp("", "bigqueue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	q, err := bigqueue.NewMmapQueue(dir)
	if err != nil {
		log.Fatal(err)
	}

	if err := q.Enqueue([]byte("hello")); err != nil {
		log.Fatal(err)
	}
	if err := q.EnqueueString("world"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(q.Len())
	for {
		msg, err := q.Dequeue()
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(msg))
	}
	// Close flushes; its error also reports a failed background flush.
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 2
	// hello
	// world
}

// Named consumers read the same messages, each at its own pace, and find
// their position again after a restart.
func ExampleMmapQueue_NewConsumer() {
	dir, err := os.MkdirTemp("", "bigqueue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(64*1024))
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if err := q.EnqueueString(m); err != nil {
			log.Fatal(err)
		}
	}
	audit, err := q.NewConsumer("audit")
	if err != nil {
		log.Fatal(err)
	}
	first, err := audit.DequeueString()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("audit read", first)
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}

	q, err = bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(64*1024))
	if err != nil {
		log.Fatal(err)
	}
	audit, err = q.NewConsumer("audit")
	if err != nil {
		log.Fatal(err)
	}
	next, err := audit.DequeueString()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after restart audit reads", next, "with", audit.Len(), "left")
	mirror, err := q.FromConsumer("mirror", audit)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("mirror starts with", mirror.Len(), "left")
	fmt.Println(q.Consumers())
	if err := q.DeleteConsumer("mirror"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(q.Consumers())
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// audit read a
	// after restart audit reads b with 1 left
	// mirror starts with 1 left
	// [audit mirror]
	// [audit]
}

// DequeueWait blocks until a message arrives, the context ends or the
// queue is closed.
func ExampleMmapQueue_DequeueWait() {
	dir, err := os.MkdirTemp("", "bigqueue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(64*1024))
	if err != nil {
		log.Fatal(err)
	}

	go func() {
		if err := q.EnqueueString("job-1"); err != nil {
			log.Print(err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := q.DequeueWait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg))

	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err = q.DequeueWait(ctx)
	fmt.Println(err)
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// job-1
	// context deadline exceeded
}

// EnqueueBatch adds several messages at once, all or none; Peek looks at the
// head without consuming it; DequeueAppend reuses a buffer.
func ExampleMmapQueue_EnqueueBatch() {
	dir, err := os.MkdirTemp("", "bigqueue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(64*1024))
	if err != nil {
		log.Fatal(err)
	}

	batch := [][]byte{[]byte("x"), []byte("y"), []byte("z")}
	if err := q.EnqueueBatch(batch); err != nil {
		log.Fatal(err)
	}
	head, err := q.Peek()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("peek", string(head), "len", q.Len())
	buf := make([]byte, 0, 128)
	for !q.IsEmpty() {
		buf, err = q.DequeueAppend(buf[:0])
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(string(buf))
	}
	fmt.Println()
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// peek x len 3
	// xyz
}

// Flush makes everything before it survive a power loss; without it, the
// background flush does so within a second by default.
func ExampleMmapQueue_Flush() {
	dir, err := os.MkdirTemp("", "bigqueue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	q, err := bigqueue.NewMmapQueue(dir,
		bigqueue.SetArenaSize(64*1024),
		bigqueue.SetPeriodicFlushDuration(100*time.Millisecond),
		bigqueue.SetMaxDiskUsage(1<<20))
	if err != nil {
		log.Fatal(err)
	}
	if err := q.EnqueueString("durable"); err != nil {
		log.Fatal(err)
	}
	if err := q.Flush(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("flushed", q.Len())
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// flushed 1
}

// Read, process, then commit: the safe way to consume. A crash between
// Read and Commit delivers the message again after a restart instead of
// losing it; Seek replays.
func ExampleConsumer_Read() {
	dir, err := os.MkdirTemp("", "bigqueue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(1<<20))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{"a", "b", "c"} {
		if err := q.EnqueueString(s); err != nil {
			log.Fatal(err)
		}
	}
	worker, err := q.NewConsumer("worker")
	if err != nil {
		log.Fatal(err)
	}
	for {
		m, err := worker.Read()
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("processing offset %d: %s\n", m.Offset, m.Data)
		if m.Offset == 1 {
			break // as if the process died here, before committing "b"
		}
		if err := worker.Commit(); err != nil {
			log.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}

	// After a restart, the consumer resumes at its committed offset.
	q, err = bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(1<<20))
	if err != nil {
		log.Fatal(err)
	}
	worker, err = q.NewConsumer("worker")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for m, err := range worker.Messages(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("processing offset %d: %s\n", m.Offset, m.Data)
		if err := worker.Commit(); err != nil {
			log.Fatal(err)
		}
		if worker.Len() == 0 {
			break
		}
	}
	// Replay from the first message kept.
	oldest, next := q.Offsets()
	fmt.Println("offsets", oldest, next)
	if err := worker.Seek(oldest); err != nil {
		log.Fatal(err)
	}
	m, err := worker.Read()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("replayed offset %d: %s\n", m.Offset, m.Data)
	if err := q.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// processing offset 0: a
	// processing offset 1: b
	// processing offset 1: b
	// processing offset 2: c
	// offsets 0 3
	// replayed offset 0: a
}

// One writer, many readers: a reader opened beside the writer (here in
// the same process; usually another one) sees each message once Enqueue
// has returned, and reads it with a named consumer of its own.
func ExampleOpenReader() {
	dir, err := os.MkdirTemp("", "bigqueue-example")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	w, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(1<<20))
	if err != nil {
		log.Fatal(err)
	}
	r, err := bigqueue.OpenReader(dir, bigqueue.SetArenaSize(1<<20))
	if err != nil {
		log.Fatal(err)
	}
	tail, err := r.NewConsumer("tail")
	if err != nil {
		log.Fatal(err)
	}
	if err := w.EnqueueString("published"); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := tail.ReadWait(ctx) // wakes when the writer publishes
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("reader: offset %d: %s\n", m.Offset, m.Data)
	if err := tail.Commit(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("reader may enqueue:", !errors.Is(r.EnqueueString("x"), bigqueue.ErrReadOnly))
	if err := r.Close(); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// reader: offset 0: published
	// reader may enqueue: false
}
