package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-ff72c416/bigqueue"
)

func TestParseSize(t *testing.T) {
	good := map[string]int{
		"0": 0, "4096": 4096, "4096b": 4096, "4096B": 4096,
		"64K": 64 << 10, "64k": 64 << 10, "64KiB": 64 << 10, "64KB": 64 << 10, "64kib": 64 << 10, "64kb": 64 << 10,
		"1M": 1 << 20, "1m": 1 << 20, "1MiB": 1 << 20, "1MB": 1 << 20,
		"1G": 1 << 30, "1GiB": 1 << 30, "1GB": 1 << 30, "3g": 3 << 30,
		"0064K": 64 << 10,
	}
	for in, want := range good {
		got, err := parseSize(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"", "K", "-1", "+1", "1.5M", "1 M", " 1M", "1M ", "1T", "1KiBB", "1i", "0x10", "1e3", "99999999999999999999", "9999999999999G"} {
		_, err := parseSize(in)
		assert.Error(t, err, "%q", in)
	}

	assert.Equal(t, "128MiB", formatSize(128<<20))
	assert.Equal(t, "64KiB", formatSize(64<<10))
	assert.Equal(t, "2GiB", formatSize(2<<30))
	assert.Equal(t, "1000", formatSize(1000))
	assert.Equal(t, "0", formatSize(0))

	assert.NoError(t, checkArenaSize(maxArenaSize))
	assert.ErrorContains(t, checkArenaSize(maxArenaSize+1), "too large")
	assert.ErrorContains(t, checkArenaSize(100), "too small")
}

func TestAppendFrame(t *testing.T) {
	msg := []byte("a\nb\x00c")
	assert.Equal(t, "a\nb\x00c\n", string(frameLines.appendFrame(nil, msg)))
	assert.Equal(t, "a\nb\x00c\x00", string(frameNUL.appendFrame(nil, msg)))
	assert.Equal(t, "5\na\nb\x00c\n", string(frameLen.appendFrame(nil, msg)))
	assert.Equal(t, "0\n\n", string(frameLen.appendFrame(nil, nil)))
	assert.Equal(t, "x0\n\n", string(frameLen.appendFrame([]byte("x"), nil)), "appends")

	var f framing
	assert.Equal(t, "lines", f.String(), "lines is the default")
	for _, name := range []string{"lines", "nul", "len"} {
		require.NoError(t, f.Set(name))
		assert.Equal(t, name, f.String())
	}
	assert.Error(t, f.Set("LEN"))
	assert.Error(t, f.Set(""))
}

// randomMessages returns n messages of random bytes and lengths, with no
// byte in avoid, among them empty ones, long ones (past the read buffer)
// and ones full of "\n" and NUL where those are allowed.
func randomMessages(rng *rand.Rand, n int, avoid string) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		var size int
		switch rng.IntN(10) {
		case 0:
			size = 0
		case 1:
			size = readBlock + rng.IntN(readBlock/4) // past the read buffer
		default:
			size = rng.IntN(40)
		}
		m := make([]byte, 0, size)
		for len(m) < size {
			var b byte
			switch rng.IntN(4) {
			case 0:
				b = '\n'
			case 1:
				b = 0
			default:
				b = byte(rng.UintN(256))
			}
			if !strings.ContainsRune(avoid, rune(b)) {
				m = append(m, b)
			}
		}
		msgs[i] = m
	}
	return msgs
}

// collector is an enqueuer that keeps copies of what it is given.
type collector struct{ got [][]byte }

func (c *collector) Enqueue(msg []byte) error {
	c.got = append(c.got, bytes.Clone(msg))
	return nil
}

func TestFrameRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range []struct {
		f     framing
		avoid string // bytes the framing cannot carry inside a message
	}{{frameLen, ""}, {frameNUL, "\x00"}, {frameLines, "\n"}} {
		msgs := randomMessages(rng, 200, tt.avoid)
		var in []byte
		for _, m := range msgs {
			in = tt.f.appendFrame(in, m)
		}
		for _, slow := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(in)
			if slow {
				r = iotest.HalfReader(r)
			}
			var c collector
			n, err := enqueueFrames(&c, r, tt.f)
			require.NoError(t, err, tt.f.String())
			assert.Equal(t, len(msgs), n)
			require.Len(t, c.got, len(msgs))
			for i := range msgs {
				require.Equal(t, msgs[i], c.got[i], "%s message %d (slow=%v)", tt.f.String(), i, slow)
			}
		}
	}
}

func TestFrameReaderDelimiters(t *testing.T) {
	// nul: a last message without its NUL is a message; "\n" is data.
	var c collector
	n, err := enqueueFrames(&c, strings.NewReader("a\nb\x00\x00c"), frameNUL)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, [][]byte{[]byte("a\nb"), {}, []byte("c")}, c.got)
}

func TestFrameReaderLenErrors(t *testing.T) {
	tests := []struct {
		in, want string
		n        int // messages read before the error
	}{
		{"3\nabc\n1\n", "message 2: input ends 0 bytes into a message of 1", 1},
		{"3\nab", "message 1: input ends 2 bytes into a message of 3", 0},
		{"3\nabc", "before its closing newline", 0},
		{"3\nabcd\n", `followed by "d", not a newline: wrong length?`, 0},
		{"abc\n", `length line "abc" is not a decimal number`, 0},
		{"-1\n\n", `length line "-1" is not`, 0},
		{"+1\na\n", `length line "+1" is not`, 0},
		{" 1\na\n", `length line " 1" is not`, 0},
		{"1\r\na\n", `length line "1\r" is not`, 0},
		{"\n", `length line "" is not`, 0},
		{"99999999999999999999\n", "is not a decimal number", 0},
		{"12", `input ends inside a length line ("12")`, 0},
		{strings.Repeat("1", 2*readBlock), "length line too long", 0},
		{"1000000000000\nabc", "input ends 3 bytes into a message of 1000000000000", 0},
	}
	for _, tt := range tests {
		var c collector
		n, err := enqueueFrames(&c, strings.NewReader(tt.in), frameLen)
		assert.ErrorContains(t, err, tt.want, "input %q", clip([]byte(tt.in)))
		assert.Equal(t, tt.n, n, "input %q", clip([]byte(tt.in)))
	}

	var c collector
	_, err := enqueueFrames(&c, iotest.ErrReader(errors.New("disk gone")), frameLen)
	assert.ErrorContains(t, err, "read stdin: disk gone")
	n, err := enqueueFrames(&c, strings.NewReader(""), frameLen)
	assert.NoError(t, err, "an empty input has no messages")
	assert.Zero(t, n)
}

// roundTripArena is the arena size of the queues of the round trip tests:
// a few messages of 64 KiB fill one.
const roundTripArena = 256 << 10

// fillQueue makes a queue in a new directory holding msgs, written with the
// library, so that any bytes can go in.
func fillQueue(t *testing.T, msgs [][]byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "q")
	require.NoError(t, os.Mkdir(dir, 0o755))
	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(roundTripArena))
	require.NoError(t, err)
	for _, m := range msgs {
		require.NoError(t, q.Enqueue(m))
	}
	require.NoError(t, q.Close())
	return dir
}

// drainQueue dequeues every message of the queue in dir with the library.
func drainQueue(t *testing.T, dir string) [][]byte {
	t.Helper()
	size, err := bigqueue.ReadArenaSize(dir)
	require.NoError(t, err)
	q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(size))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	var out [][]byte
	for {
		m, err := q.Dequeue()
		if errors.Is(err, bigqueue.ErrEmptyQueue) {
			return out
		}
		require.NoError(t, err)
		out = append(out, m)
	}
}

// TestFormatRoundTripThroughTool moves random binary messages from one
// queue to another with "dequeue -format F A | enqueue -format F B", as the
// default consumer and as a named one.
func TestFormatRoundTripThroughTool(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tt := range []struct {
		format string
		avoid  string
	}{{"len", ""}, {"nul", "\x00"}, {"lines", "\n"}} {
		for _, consumer := range []string{"", "mover"} {
			msgs := randomMessages(rng, 200, tt.avoid)
			from := fillQueue(t, msgs)
			args := []string{"dequeue", "-format", tt.format}
			if consumer != "" {
				args = append(args, "-consumer", consumer)
			}
			out := mustRun(t, "", append(args, from)...).stdout
			to := filepath.Join(t.TempDir(), "q")
			mustRun(t, out, "enqueue", "-format", tt.format, "-arena-size", "256K", to)

			got := drainQueue(t, to)
			require.Len(t, got, len(msgs), "%s, consumer %q", tt.format, consumer)
			for i := range msgs {
				if len(msgs[i]) == 0 {
					assert.Empty(t, got[i])
					continue
				}
				require.Equal(t, msgs[i], got[i], "%s, consumer %q: message %d", tt.format, consumer, i)
			}
			// The source is drained for that consumer.
			assert.Empty(t, mustRun(t, "", append(args, from)...).stdout)
		}
	}
}

func TestFormatPeek(t *testing.T) {
	dir := fillQueue(t, [][]byte{[]byte("a\nb"), []byte("c")})
	assert.Equal(t, "3\na\nb\n", mustRun(t, "", "dequeue", "-peek", "-format", "len", dir).stdout)
	assert.Equal(t, "a\nb\x00", mustRun(t, "", "dequeue", "-peek", "-format", "nul", dir).stdout)
	assert.Equal(t, "3\na\nb\n1\nc\n", mustRun(t, "", "dequeue", "-format", "len", dir).stdout)
}

func TestEnqueueBadFraming(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	r := runTool(t, "1\na\n2\nb", "enqueue", "-format", "len", "-arena-size", "16K", dir)
	assertOneLineError(t, r, exitFail, "message 2: input ends 1 bytes into a message of 2 (the message before it is enqueued)")
	assert.Equal(t, "a\n", mustRun(t, "", "dequeue", dir).stdout)
}
