package main

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBenchTemporaryQueue(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	r := mustRun(t, "", "bench", "-n", "2000", "-size", "64", "-arena-size", "16384")
	assert.Contains(t, r.stdout, "bigqueue bench: 2000 messages of 64 bytes, arena size 16.0 KiB, queue in "+tmp)
	assert.Contains(t, r.stdout, "(temporary, removed afterwards)")
	assert.Contains(t, r.stdout, "latency: every call timed by the monotonic clock")

	header, rows := benchTable(t, r.stdout)
	assert.Equal(t, []string{"phase", "msgs/s", "MB/s", "time", "p50", "p90", "p99", "p99.9", "max"}, header)
	require.Len(t, rows, 2)
	assert.Equal(t, "enqueue", rows[0][0])
	assert.Equal(t, "dequeue", rows[1][0])
	duration := regexp.MustCompile(`^\d+(\.\d+)?(ns|µs|ms|s)$`)
	for _, row := range rows {
		require.Len(t, row, len(header), row)
		assert.Regexp(t, `^\d+$`, row[1], "msgs/s")
		assert.Regexp(t, `^\d+\.\d$`, row[2], "MB/s")
		for _, cell := range row[3:] {
			assert.Regexp(t, duration, cell)
		}
	}
	assert.Regexp(t, `flush after enqueue: .+; on disk when full: .+ in \d+ arenas?`, r.stdout)

	// The progress bars went to stderr and reached the end.
	assert.Contains(t, r.stderr, "enqueue")
	assert.Contains(t, r.stderr, "dequeue")
	assert.Contains(t, r.stderr, "2000/2000")

	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the temporary queue was removed")
}

func TestBenchKeptQueue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bench")
	r := mustRun(t, "", "bench", "-dir", dir, "-n", "300", "-size", "8", "-arena-size", "16384", "-quiet")
	assert.Empty(t, r.stderr, "-quiet shows no progress bar")
	assert.Contains(t, r.stdout, "queue in "+dir+" (kept)")

	st := statJSONOf(t, dir)
	assert.Equal(t, 0, st.Consumers[0].Backlog, "bench dequeued everything")
	assert.Equal(t, smallArena, st.ArenaSize)

	// An empty queue can be used again, at its own arena size.
	r = mustRun(t, "", "bench", "-dir", dir, "-n", "10", "-quiet")
	assert.Contains(t, r.stdout, "arena size 16.0 KiB")

	// A queue with messages is refused, and left alone.
	mustRun(t, "keep me\n", "enqueue", dir)
	r = runTool(t, "", "bench", "-dir", dir, "-n", "10", "-quiet")
	assertOneLineError(t, r, exitFail, "is not empty (1 message)")
	assert.Equal(t, "keep me\n", mustRun(t, "", "dequeue", dir).stdout)
}

// benchTable returns the header and rows of bench's throughput table.
func benchTable(t *testing.T, out string) ([]string, [][]string) {
	t.Helper()
	var header []string
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) > 0 && fields[0] == "phase":
			header = fields
		case header != nil && len(fields) > 0 && (fields[0] == "enqueue" || fields[0] == "dequeue"):
			rows = append(rows, fields)
		}
	}
	require.NotNil(t, header, out)
	return header, rows
}

func TestBenchVerify(t *testing.T) {
	b := newBenchRun(benchConfig{n: 10, size: 32})
	message := func(seq int) []byte {
		msg := make([]byte, 32)
		binary.LittleEndian.PutUint64(msg, uint64(seq))
		copy(msg[seqBytes:], b.body(seq))
		return msg
	}
	assert.NotEqual(t, b.body(1), b.body(2), "neighbours have different bodies")

	msg := message(5)
	assert.NoError(t, b.verify(5, msg))
	assert.ErrorContains(t, b.verify(6, msg), "got message 5 out of order")
	assert.ErrorContains(t, b.verify(5, msg[:31]), "got 31 bytes, want 32")
	msg[20] ^= 1
	assert.ErrorContains(t, b.verify(5, msg), "content differs from what was enqueued at byte 20")
	// A message with the right number but another message's body.
	other := message(6)
	binary.LittleEndian.PutUint64(other, 5)
	assert.Error(t, b.verify(5, other))
}

func TestNearestRank(t *testing.T) {
	assert.Equal(t, 0, nearestRank(1, 0.5))
	assert.Equal(t, 0, nearestRank(1, 0.999))
	assert.Equal(t, 4, nearestRank(10, 0.5))
	assert.Equal(t, 8, nearestRank(10, 0.9))
	assert.Equal(t, 9, nearestRank(10, 0.99))
	assert.Equal(t, 989, nearestRank(1000, 0.99))
	assert.Equal(t, 998, nearestRank(1000, 0.999))
	assert.Equal(t, 999, nearestRank(1001, 0.999)) // ceil(999.999) = 1000th value
}

func TestSummarize(t *testing.T) {
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = time.Duration(1000 - i) // 1000 .. 1, unsorted
	}
	s := summarize(lat)
	assert.Equal(t, []time.Duration{500, 900, 990, 999}, s.quantiles)
	assert.Equal(t, time.Duration(1000), s.max)
}

func TestBenchStopsWhenInterrupted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	q, err := openQueue(dir, true, smallArena)
	require.NoError(t, err)
	defer func() { require.NoError(t, closeQueue(q)) }()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var progress strings.Builder
	b := newBenchRun(benchConfig{n: 5 * benchBatch, size: 16})
	_, err = b.enqueuePhase(ctx, &progress, q)
	assert.EqualError(t, err, "interrupted")
	assert.Equal(t, benchBatch, q.Len(), "stopped at the first check")
}
