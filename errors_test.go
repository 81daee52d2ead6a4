package bigqueue

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requirePrefixedOnce checks that err wraps want and that its message says
// "bigqueue: " once, at the start.
func requirePrefixedOnce(t *testing.T, err, want error) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, want)
	msg := err.Error()
	assert.True(t, strings.HasPrefix(msg, "bigqueue: "), "message does not start with the prefix: %q", msg)
	assert.Equal(t, 1, strings.Count(msg, "bigqueue:"), "prefix repeated: %q", msg)
}

func TestErrorfPrefixesOnce(t *testing.T) {
	inner := errorf("record at %d: %w", 7, ErrCorrupt)
	mid := errorf("arena %s: %w", "arena-0.dat", inner)
	outer := errorf("open %s: %w", "/q", mid)
	requirePrefixedOnce(t, outer, ErrCorrupt)
	assert.Equal(t, "bigqueue: open /q: arena arena-0.dat: record at 7: queue data is corrupt", outer.Error())

	// Foreign errors keep their text and stay reachable.
	perr := &fs.PathError{Op: "open", Path: "/q/x", Err: syscall.ENOSPC}
	e := errorf("create: %w", perr)
	requirePrefixedOnce(t, e, syscall.ENOSPC)
	assert.Equal(t, "bigqueue: create: open /q/x: no space left on device", e.Error())

	// Two wrapped errors, both reachable.
	two := errorf("%s is missing: %w: %w", "/q/a", ErrCorrupt, fs.ErrNotExist)
	requirePrefixedOnce(t, two, ErrCorrupt)
	require.ErrorIs(t, two, fs.ErrNotExist)
}

// TestErrorsUnwrapStepByStep: an error that wraps one other unwraps with
// errors.Unwrap, as fmt.Errorf's does, so the reference's users' idiom for
// a missing directory, os.IsNotExist(errors.Unwrap(errors.Unwrap(err))),
// still holds; one that wraps two does not pretend to wrap one.
func TestErrorsUnwrapStepByStep(t *testing.T) {
	_, err := NewMmapQueue(filepath.Join(t.TempDir(), "1", "2"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.True(t, os.IsNotExist(errors.Unwrap(errors.Unwrap(err))), "%v", err)

	inner := errorf("record at %d: %w", 7, ErrCorrupt)
	outer := errorf("open %s: %w", "/q", inner)
	assert.Same(t, inner, errors.Unwrap(outer))
	assert.Same(t, ErrCorrupt, errors.Unwrap(inner))
	assert.NoError(t, errors.Unwrap(errorf("%w: %w", ErrCorrupt, fs.ErrNotExist)))
}

func TestJoinErrorsPrefixesOnce(t *testing.T) {
	require.NoError(t, joinErrors(nil, nil))
	one := errorf("flush: %w", syscall.EIO)
	require.Same(t, one, joinErrors(nil, one, nil), "a single error comes back as it is")
	j := joinErrors(errorf("flush: %w", syscall.EIO), ErrClosed)
	requirePrefixedOnce(t, j, ErrClosed)
	require.ErrorIs(t, j, syscall.EIO)
	assert.Equal(t, "bigqueue: flush: input/output error; queue is closed", j.Error())
	assert.NotContains(t, j.Error(), "\n", "one line")
}

// TestErrorsFromTheAPI drives the public API into its errors and checks the
// prefix of each message.
func TestErrorsFromTheAPI(t *testing.T) {
	dir := t.TempDir()

	_, err := NewMmapQueue(filepath.Join(dir, "missing"))
	requirePrefixedOnce(t, err, fs.ErrNotExist)

	q := smallQueue(t, dir, SetMaxDiskUsage(minDiskUsage(testArenaSize)))
	_, err = NewMmapQueue(dir, SetArenaSize(testArenaSize))
	requirePrefixedOnce(t, err, ErrLocked)

	_, err = q.NewConsumer("")
	requirePrefixedOnce(t, err, ErrInvalidConsumerName)
	_, err = q.NewConsumer(strings.Repeat("x", MaxConsumerNameLen+1))
	requirePrefixedOnce(t, err, ErrInvalidConsumerName)
	requirePrefixedOnce(t, q.DeleteConsumer("nobody"), ErrUnknownConsumer)

	c, err := q.NewConsumer("c")
	require.NoError(t, err)
	require.NoError(t, q.DeleteConsumer("c"))
	_, err = c.Dequeue()
	requirePrefixedOnce(t, err, ErrUnknownConsumer)

	for err = nil; err == nil; { // nobody reads: the cap is reached
		err = q.Enqueue(make([]byte, 1000))
	}
	requirePrefixedOnce(t, err, ErrQueueFull)

	require.NoError(t, q.Close())
	requirePrefixedOnce(t, q.Close(), ErrClosed)
	requirePrefixedOnce(t, q.Enqueue(nil), ErrClosed)

	// A damaged index: the open names the file once, with one prefix.
	require.NoError(t, os.WriteFile(filepath.Join(dir, indexName), make([]byte, metaSize), 0o644))
	_, err = NewMmapQueue(dir, SetArenaSize(testArenaSize))
	requirePrefixedOnce(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), indexName)
}

// TestReferenceSentinelsUnwrapped: code written for the reference compares
// these errors with ==.
func TestReferenceSentinelsUnwrapped(t *testing.T) {
	dir := t.TempDir()
	_, err := NewMmapQueue(dir, SetArenaSize(100))
	assert.True(t, err == ErrTooSmallArenaSize, "got %v", err) //nolint:errorlint // the reference's users compare with ==
	_, err = NewMmapQueue(dir, SetMaxInMemArenas(2))
	assert.True(t, err == ErrTooFewInMemArenas, "got %v", err) //nolint:errorlint // as above

	q := smallQueue(t, dir)
	_, err = q.Dequeue()
	assert.True(t, err == ErrEmptyQueue, "got %v", err) //nolint:errorlint // as above
	require.NoError(t, q.Close())
	_, err = NewMmapQueue(dir, SetArenaSize(2*testArenaSize))
	assert.True(t, err == ErrInvalidArenaSize, "got %v", err) //nolint:errorlint // as above

	q1 := smallQueue(t, dir)
	q2 := smallQueue(t, t.TempDir())
	c2, err := q2.NewConsumer("c")
	require.NoError(t, err)
	_, err = q1.FromConsumer("c", c2)
	assert.True(t, err == ErrDifferentQueues, "got %v", err) //nolint:errorlint // as above
	assert.True(t, errors.Is(err, ErrDifferentQueues))
}
