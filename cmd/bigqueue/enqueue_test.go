package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnqueueDequeueRoundTrip(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 20<<10) // 320 KiB: longer than the read buffer and many arenas
	dir := filepath.Join(t.TempDir(), "nested", "dirs", "q")

	// The last line has no newline; the empty line is an empty message; a
	// "\r" stays part of its message.
	r := mustRun(t, "first\n\nwith\r\n"+long+"\nlast", "enqueue", "-arena-size", "16384", dir)
	assert.Empty(t, r.stdout)
	assert.Empty(t, r.stderr)

	r = mustRun(t, "", "dequeue", dir)
	assert.Equal(t, lines("first", "", "with\r", long, "last"), r.stdout)
	assert.Empty(t, r.stderr)

	r = mustRun(t, "", "dequeue", dir)
	assert.Empty(t, r.stdout, "every message was consumed")
}

func TestEnqueueAppendsAndKeepsArenaSize(t *testing.T) {
	dir := newQueue(t, "m0", "m1") // arena size 16384
	// An existing queue opens at its own arena size: the flag's default
	// (128 MiB) and an explicit other size are both ignored.
	mustRun(t, "m2\n", "enqueue", dir)
	r := mustRun(t, "m3\n", "enqueue", "-arena-size", "65536", "-v", dir)
	assert.Equal(t, fmt.Sprintf("enqueued 1 message to %s\n", dir), r.stderr)

	st := statJSONOf(t, dir)
	assert.Equal(t, smallArena, st.ArenaSize)
	assert.Equal(t, 4, st.Messages)
	assert.Equal(t, lines("m0", "m1", "m2", "m3"), mustRun(t, "", "dequeue", dir).stdout)
}

func TestEnqueueEmptyInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	r := mustRun(t, "", "enqueue", "-v", dir)
	assert.Equal(t, fmt.Sprintf("enqueued 0 messages to %s\n", dir), r.stderr)
	assert.Equal(t, 0, statJSONOf(t, dir).Messages, "the queue exists and is empty")
}

func TestEnqueueHumanArenaSize(t *testing.T) {
	for _, size := range []string{"16384", "16K", "16k", "16KiB", "16KB", "16kib"} {
		dir := filepath.Join(t.TempDir(), "q")
		mustRun(t, "x\n", "enqueue", "-arena-size", size, dir)
		assert.Equal(t, smallArena, statJSONOf(t, dir).ArenaSize, size)
	}
}

func TestEnqueueFailedOpenLeavesNoDirectory(t *testing.T) {
	// A directory that cannot hold a queue: its parent is a file.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	r := runTool(t, "x\n", "enqueue", filepath.Join(file, "q"))
	assertOneLineError(t, r, exitFail, "not a directory")

	_, err := os.Stat(filepath.Join(file, "q"))
	assert.Error(t, err)
}

func TestOutermostMissing(t *testing.T) {
	parent := t.TempDir()
	assert.Equal(t, "", outermostMissing(parent))
	assert.Equal(t, filepath.Join(parent, "a"), outermostMissing(filepath.Join(parent, "a")))
	assert.Equal(t, filepath.Join(parent, "a"), outermostMissing(filepath.Join(parent, "a", "b", "c")+"/"))
	require.NoError(t, os.Mkdir(filepath.Join(parent, "a"), 0o755))
	assert.Equal(t, filepath.Join(parent, "a", "b"), outermostMissing(filepath.Join(parent, "a", "b", "c")))
}

// recorder is an enqueuer that keeps what it is given, and fails on the
// message failAt (counting from 1) if that is set.
type recorder struct {
	got    []string
	failAt int
}

func (r *recorder) Enqueue(msg []byte) error {
	if len(r.got)+1 == r.failAt {
		return errors.New("disk on fire")
	}
	r.got = append(r.got, string(msg))
	return nil
}

func TestEnqueueLines(t *testing.T) {
	long := strings.Repeat("x", 3*64<<10+5) // three full read buffers and a bit
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\n", []string{""}},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"a\nb", []string{"a", "b"}},
		{"a\n\n\nb\n", []string{"a", "", "", "b"}},
		{long + "\nb\n" + long, []string{long, "b", long}},
		{strings.Repeat("y", 64<<10) + "\n", []string{strings.Repeat("y", 64<<10)}},
	}
	for _, tt := range tests {
		// One byte per Read splits lines at every possible point.
		for _, slow := range []bool{false, true} {
			r := iotestReader(tt.in, slow)
			var rec recorder
			n, err := enqueueFrames(&rec, r, frameLines)
			require.NoError(t, err)
			assert.Equal(t, len(tt.want), n)
			assert.Equal(t, tt.want, rec.got, "input of %d bytes, slow=%v", len(tt.in), slow)
		}
	}
}

func TestEnqueueLinesStopsAtFailure(t *testing.T) {
	rec := &recorder{failAt: 3}
	n, err := enqueueFrames(rec, strings.NewReader("a\nb\nc\nd\n"), frameLines)
	assert.ErrorContains(t, err, "line 3: disk on fire (the 2 messages before it are enqueued)")
	assert.Equal(t, 2, n)
	assert.Equal(t, []string{"a", "b"}, rec.got)

	rec = &recorder{}
	_, err = enqueueFrames(rec, iotest.TimeoutReader(strings.NewReader("a\nb")), frameLines)
	assert.ErrorContains(t, err, "read stdin")

	rec = &recorder{failAt: 1}
	_, err = enqueueFrames(rec, strings.NewReader("1\na\n"), frameLen)
	assert.ErrorContains(t, err, "message 1: disk on fire (nothing was enqueued)")
}

// iotestReader returns a reader of s, one byte per Read if slow.
func iotestReader(s string, slow bool) io.Reader {
	if slow {
		return iotest.OneByteReader(strings.NewReader(s))
	}
	return strings.NewReader(s)
}
