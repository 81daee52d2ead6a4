package bigqueue

import (
	"os"
	"syscall"
	"time"
)

// Defaults, the same as the reference implementation's.
const (
	// DefaultArenaSize is the size of each arena file: 128 MiB.
	DefaultArenaSize = 128 * 1024 * 1024
	// DefaultMaxInMemArenas is how many arenas may be mapped at once.
	DefaultMaxInMemArenas = 3
	// DefaultPeriodicFlushOps is how many enqueues and dequeues trigger a flush.
	DefaultPeriodicFlushOps = 1_000_000
	// DefaultPeriodicFlushDuration is how often the queue is flushed.
	DefaultPeriodicFlushDuration = time.Second

	// minMaxInMemArenas is the smallest non-zero memory cap: head, tail and
	// one arena in between.
	minMaxInMemArenas = 3

	// maxArenaSize is the largest arena size, 1 TiB: the index refuses a
	// larger one as damaged, so SetArenaSize refuses it before any file
	// is written.
	maxArenaSize = 1 << 40
)

// config holds the settings of one queue. Options fill it in.
type config struct {
	arenaSize      int
	maxInMemArenas int
	flushOps       int64
	flushPeriod    time.Duration
	maxDiskUsage   int64
	retention      int64
	dropOldest     bool
}

// Option configures a queue. It is passed to NewMmapQueue and returns an
// error when its value is not valid.
type Option func(*config) error

func defaultConfig() config {
	return config{
		arenaSize:      DefaultArenaSize,
		maxInMemArenas: DefaultMaxInMemArenas,
		flushOps:       DefaultPeriodicFlushOps,
		flushPeriod:    DefaultPeriodicFlushDuration,
	}
}

// SetArenaSize sets the size of each arena file, the unit in which the queue
// grows and gives disk space back. It must be at least the operating system's
// page size (os.Getpagesize), or NewMmapQueue returns ErrTooSmallArenaSize,
// and at most 1 TiB (an error wrapping ErrTooLargeArenaSize and
// syscall.EFBIG, "file too large"); a refused size leaves the directory as
// it was. A queue keeps the arena size it was created with: reopening it
// with another size returns ErrInvalidArenaSize. The default is 128 MiB.
func SetArenaSize(arenaSize int) Option {
	return func(c *config) error {
		if arenaSize < os.Getpagesize() {
			return ErrTooSmallArenaSize
		}
		if arenaSize > maxArenaSize {
			// EFBIG too ("file too large"): the reference refuses a
			// huge size when it truncates the file, with that error,
			// and its users look for it.
			return errorf("arena size %d, at most %d: %w: %w", arenaSize, maxArenaSize, ErrTooLargeArenaSize, syscall.EFBIG)
		}
		c.arenaSize = arenaSize
		return nil
	}
}

// SetMaxInMemArenas caps how many arenas are mapped into memory at once;
// 0 means no cap (the operating system pages arenas in and out). A cap of 1
// or 2 returns ErrTooFewInMemArenas. The default is 3.
func SetMaxInMemArenas(maxInMemArenas int) Option {
	return func(c *config) error {
		if maxInMemArenas != 0 && maxInMemArenas < minMaxInMemArenas {
			return ErrTooFewInMemArenas
		}
		c.maxInMemArenas = maxInMemArenas
		return nil
	}
}

// SetPeriodicFlushOps flushes the queue after this many enqueues and
// dequeues. The flush runs in the background and is best effort; a value
// <= 0 disables it. The default is 1,000,000.
func SetPeriodicFlushOps(flushMutOps int64) Option {
	return func(c *config) error {
		c.flushOps = flushMutOps
		return nil
	}
}

// SetPeriodicFlushDuration flushes the queue in the background at this
// interval; a value <= 0 disables it. The default is one second.
func SetPeriodicFlushDuration(flushPeriod time.Duration) Option {
	return func(c *config) error {
		c.flushPeriod = flushPeriod
		return nil
	}
}

// SetMaxDiskUsage caps the bytes the queue's files may take on disk: arenas
// at their full size, the index, the consumer files, the offset index and
// the wake file. An Enqueue that would need more returns ErrQueueFull and
// changes nothing; once consumers have read past whole arenas and those
// are deleted, enqueues succeed again.
// A value <= 0 means no cap, which is the default. The smallest cap is two
// arenas and the index, default consumer, offset index and wake files
// (2*arenaSize + 16 KiB): the arena at the tail and the next one, which a
// message that crosses into it needs, so that a consumer that keeps up
// never makes a producer wait (for messages of up to an arena less 16
// bytes; a larger one spans more arenas, which a cap must hold).
// NewMmapQueue refuses a smaller one with an error wrapping
// ErrTooSmallMaxDiskUsage that gives the minimum. Each named consumer's
// file counts 4 KiB more; where that leaves less than two arenas, the
// consumer files go past the cap instead (by 4 KiB each).
func SetMaxDiskUsage(bytes int64) Option {
	return func(c *config) error {
		c.maxDiskUsage = bytes
		return nil
	}
}

// SetRetention keeps messages that every consumer has read, for replay
// (Seek back, or a consumer created later, which starts at the oldest
// message kept). 0, the default, keeps none: an arena goes once every
// consumer is past it. n > 0 keeps at least the newest n bytes of
// messages (their headers not counted); -1 keeps every message ever
// enqueued, as the reference does. Retention works in whole arenas: an
// arena goes only when all of it is older than what is kept. Other
// negative values are ErrInvalidRetention.
func SetRetention(bytes int64) Option {
	return func(c *config) error {
		if bytes < -1 {
			return errorf("retention %d: %w", bytes, ErrInvalidRetention)
		}
		c.retention = bytes
		return nil
	}
}

// minDiskUsage is the smallest SetMaxDiskUsage cap for arenas of
// arenaSize bytes (see SetMaxDiskUsage).
func minDiskUsage(arenaSize int) int64 {
	return 2*int64(arenaSize) + 4*metaSize
}

// validate checks what no single option can: the options together.
func (c *config) validate() error {
	if c.maxDiskUsage > 0 && c.maxDiskUsage < minDiskUsage(c.arenaSize) {
		return errorf("disk usage cap %d is below the minimum %d for arenas of %d bytes: %w",
			c.maxDiskUsage, minDiskUsage(c.arenaSize), c.arenaSize, ErrTooSmallMaxDiskUsage)
	}
	return nil
}

// SetDropOldest makes a queue under SetMaxDiskUsage make room by deleting
// its oldest arenas, read or not, instead of returning ErrQueueFull:
// Enqueue then fails only for a message that could never fit under the
// cap. A consumer whose messages were dropped resumes at the oldest message
// kept; the jump shows in the Offset of the next Message it reads. Without
// a disk cap it does nothing.
func SetDropOldest() Option {
	return func(c *config) error {
		c.dropOldest = true
		return nil
	}
}
