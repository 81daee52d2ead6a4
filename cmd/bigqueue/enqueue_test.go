package main

import (
	"errors"
	"fmt"
	"io"
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

func TestEnqueueTooSmallArena(t *testing.T) {
	r := runTool(t, "x\n", "enqueue", "-arena-size", "100", filepath.Join(t.TempDir(), "q"))
	assertOneLineError(t, r, exitFail, "arena size too small")
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
			n, err := enqueueLines(&rec, r)
			require.NoError(t, err)
			assert.Equal(t, len(tt.want), n)
			assert.Equal(t, tt.want, rec.got, "input of %d bytes, slow=%v", len(tt.in), slow)
		}
	}
}

func TestEnqueueLinesStopsAtFailure(t *testing.T) {
	rec := &recorder{failAt: 3}
	n, err := enqueueLines(rec, strings.NewReader("a\nb\nc\nd\n"))
	assert.ErrorContains(t, err, "line 3: disk on fire")
	assert.Equal(t, 2, n)
	assert.Equal(t, []string{"a", "b"}, rec.got)

	rec = &recorder{}
	_, err = enqueueLines(rec, iotest.TimeoutReader(strings.NewReader("a\nb")))
	assert.ErrorContains(t, err, "read stdin")
}

// iotestReader returns a reader of s, one byte per Read if slow.
func iotestReader(s string, slow bool) io.Reader {
	if slow {
		return iotest.OneByteReader(strings.NewReader(s))
	}
	return strings.NewReader(s)
}
