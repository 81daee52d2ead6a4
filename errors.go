package bigqueue

import "errors"

// The errors a queue returns. Each is a sentinel: test for it with errors.Is,
// since most are returned wrapped with the path or value involved.
var (
	// ErrEmptyQueue is returned by Dequeue and Peek when the consumer has
	// read every message in the queue.
	ErrEmptyQueue = errors.New("bigqueue: queue is empty")

	// ErrInvalidArenaSize is returned when a queue directory is reopened with
	// an arena size other than the one it was created with.
	ErrInvalidArenaSize = errors.New("bigqueue: mismatch in arena size")

	// ErrDifferentQueues is returned by FromConsumer when the consumer to copy
	// belongs to another queue.
	ErrDifferentQueues = errors.New("bigqueue: consumers from different queues")

	// ErrTooSmallArenaSize is returned by SetArenaSize for a size smaller than
	// the operating system's page size.
	ErrTooSmallArenaSize = errors.New("bigqueue: too small arena size")

	// ErrTooFewInMemArenas is returned by SetMaxInMemArenas for 1 or 2: a
	// queue needs room for the head, the tail and one arena in between.
	ErrTooFewInMemArenas = errors.New("bigqueue: too few in memory arenas")

	// ErrIncompatibleVersion is returned when a queue directory was written in
	// a format version this package does not read.
	ErrIncompatibleVersion = errors.New("bigqueue: incompatible format of the code and data")

	// ErrClosed is returned by every method of a queue, or of its consumers,
	// after Close, and by a second Close.
	ErrClosed = errors.New("bigqueue: queue is closed")

	// ErrQueueFull is returned by Enqueue and EnqueueBatch when writing the
	// message would take the queue's files past the SetMaxDiskUsage limit.
	ErrQueueFull = errors.New("bigqueue: queue is full")

	// ErrLocked is returned by NewMmapQueue when another MmapQueue, in this
	// process or another one, already has the directory open.
	ErrLocked = errors.New("bigqueue: queue directory is locked by another user")

	// ErrCorrupt is returned when a file of the queue fails its checks: a bad
	// magic number or checksum, a length or position out of bounds, a
	// truncated or missing file. The wrapping error names the file and offset.
	ErrCorrupt = errors.New("bigqueue: queue data is corrupt")

	// ErrInvalidConsumerName is returned for an empty consumer name or one
	// longer than MaxConsumerNameLen bytes.
	ErrInvalidConsumerName = errors.New("bigqueue: invalid consumer name")

	// ErrUnknownConsumer is returned by DeleteConsumer for a name that has no
	// consumer, and by the methods of a Consumer whose consumer was deleted.
	ErrUnknownConsumer = errors.New("bigqueue: unknown consumer")
)
