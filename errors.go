package bigqueue

import (
	"fmt"
	"strings"
)

// The errors a queue returns. Each is a sentinel: test for it with errors.Is,
// since most are returned wrapped with the path or value involved. Every
// error message of this package starts with "bigqueue: ", once, however
// deeply the error was wrapped; the exceptions are DequeueWait's ctx.Err(),
// returned as it is.
//
// ErrEmptyQueue, ErrInvalidArenaSize, ErrDifferentQueues,
// ErrTooSmallArenaSize and ErrTooFewInMemArenas are returned unwrapped, as
// the reference implementation returns them, so that code written for it,
// which compares them with ==, keeps working.
var (
	// ErrEmptyQueue is returned by Dequeue and Peek when the consumer has
	// read every message in the queue.
	ErrEmptyQueue = newSentinel("queue is empty")

	// ErrInvalidArenaSize is returned when a queue directory is reopened with
	// an arena size other than the one it was created with.
	ErrInvalidArenaSize = newSentinel("mismatch in arena size")

	// ErrDifferentQueues is returned by FromConsumer when the consumer to copy
	// belongs to another queue.
	ErrDifferentQueues = newSentinel("consumers from different queues")

	// ErrTooSmallArenaSize is returned by SetArenaSize for a size smaller than
	// the operating system's page size.
	ErrTooSmallArenaSize = newSentinel("too small arena size")

	// ErrTooLargeArenaSize is returned by SetArenaSize for a size above
	// 1 TiB.
	ErrTooLargeArenaSize = newSentinel("too large arena size")

	// ErrTooFewInMemArenas is returned by SetMaxInMemArenas for 1 or 2: a
	// queue needs room for the head, the tail and one arena in between.
	ErrTooFewInMemArenas = newSentinel("too few in memory arenas")

	// ErrIncompatibleVersion is returned when a queue directory was written in
	// a format version this package does not read.
	ErrIncompatibleVersion = newSentinel("incompatible format of the code and data")

	// ErrClosed is returned by every method of a queue, or of its consumers,
	// after Close, and by a second Close.
	ErrClosed = newSentinel("queue is closed")

	// ErrQueueFull is returned by Enqueue and EnqueueBatch when writing the
	// message would take the queue's files past the SetMaxDiskUsage limit.
	ErrQueueFull = newSentinel("queue is full")

	// ErrTooSmallMaxDiskUsage is returned by NewMmapQueue for a
	// SetMaxDiskUsage cap below two arenas and the meta files.
	ErrTooSmallMaxDiskUsage = newSentinel("too small disk usage cap")

	// ErrReadOnly is returned by a queue opened with OpenReader for what
	// would change the queue: Enqueue, EnqueueBatch, EnqueueWait and the
	// default consumer's Dequeue methods.
	ErrReadOnly = newSentinel("queue is open for reading only")

	// ErrLocked is returned by NewMmapQueue when another MmapQueue, in this
	// process or another one, already has the directory open, and by
	// NewConsumer, FromConsumer and DeleteConsumer for a consumer that
	// another open queue (a writer or a reader) holds.
	ErrLocked = newSentinel("held by another open queue")

	// ErrCorrupt is returned when a file of the queue fails its checks: a bad
	// magic number or checksum, a length or position out of bounds, a
	// truncated or missing file. The wrapping error names the file and offset.
	ErrCorrupt = newSentinel("queue data is corrupt")

	// ErrInvalidConsumerName is returned for an empty consumer name or one
	// longer than MaxConsumerNameLen bytes.
	ErrInvalidConsumerName = newSentinel("invalid consumer name")

	// ErrOffsetOutOfRange is returned by Seek and CommitOffset for an
	// offset before the oldest message kept or after the offset the next
	// Enqueue gets (see Offsets).
	ErrOffsetOutOfRange = newSentinel("offset out of range")

	// ErrInvalidRetention is returned by SetRetention for a value below -1.
	ErrInvalidRetention = newSentinel("invalid retention")

	// ErrUnknownConsumer is returned by DeleteConsumer for a name that has no
	// consumer, and by the methods of a Consumer whose consumer was deleted.
	ErrUnknownConsumer = newSentinel("unknown consumer")
)

// prefix starts every error message of the package, once.
const prefix = "bigqueue: "

// sentinelError is the type of the Err variables. Its message carries the
// prefix, since ErrEmptyQueue and others are returned as they are (code
// written for the reference compares them with ==).
type sentinelError struct{ text string }

func newSentinel(text string) error { return &sentinelError{text} }

func (e *sentinelError) Error() string { return prefix + e.text }

// wrapError is every other error the package makes that wraps none or
// several errors: a message without the prefix, and the errors it wraps.
type wrapError struct {
	text string
	errs []error
}

func (e *wrapError) Error() string   { return prefix + e.text }
func (e *wrapError) Unwrap() []error { return e.errs }

// chainError is an error that wraps exactly one, as fmt.Errorf with one %w
// does: errors.Unwrap returns it (it returns nil for a wrapError), so code
// written for the reference that unwraps step by step, as its tests do
// (os.IsNotExist(errors.Unwrap(errors.Unwrap(err)))), keeps working.
type chainError struct {
	text string
	err  error
}

func (e *chainError) Error() string { return prefix + e.text }
func (e *chainError) Unwrap() error { return e.err }

// bare returns the message of err without the package's prefix when err is
// one of the package's own.
func bare(err error) string {
	switch e := err.(type) {
	case *sentinelError:
		return e.text
	case *wrapError:
		return e.text
	case *chainError:
		return e.text
	}
	return err.Error()
}

// errorf is fmt.Errorf for the package: every error among args is wrapped
// (name it with %w) and printed without the prefix, which the result's
// message carries once, at its start.
func errorf(format string, args ...any) error {
	e := &wrapError{}
	texts := make([]any, len(args))
	for i, a := range args {
		if err, ok := a.(error); ok && err != nil {
			e.errs = append(e.errs, err)
			texts[i] = bare(err)
			continue
		}
		texts[i] = a
	}
	e.text = fmt.Sprintf(strings.ReplaceAll(format, "%w", "%s"), texts...)
	if len(e.errs) == 1 {
		return &chainError{text: e.text, err: e.errs[0]}
	}
	return e
}

// joinErrors is errors.Join with one prefix: the messages of the non-nil
// errors, separated by "; ". It returns nil when every error is nil and the
// error itself when only one is not.
func joinErrors(errs ...error) error {
	var kept []error
	var texts []string
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
			texts = append(texts, bare(err))
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return &wrapError{text: strings.Join(texts, "; "), errs: kept}
}
