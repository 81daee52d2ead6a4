package bigqueue

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// readerParams is what the reader child gets.
type readerParams struct {
	K int // commit after every K messages
}

// readerChild reads the consumer "worker" with Read, reports every message
// it processed ("p OFFSET") on fd 3, and commits after every K messages
// ("c OFFSET", the committed offset), until the queue is empty.
func readerChild(t *testing.T, dir string, arg []byte) {
	var p readerParams
	require.NoError(t, json.Unmarshal(arg, &p))
	out := os.NewFile(3, "progress")
	q, err := NewMmapQueue(dir, SetArenaSize(testArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.NoError(t, err)
	c, err := q.NewConsumer("worker")
	require.NoError(t, err)
	readCommitting(t, c, p.K, out, true)
	require.NoError(t, c.Commit())
	require.NoError(t, q.Close())
	_, err = fmt.Fprintf(out, "done\n")
	require.NoError(t, err)
}

// readCommitting reads c until the queue is empty, checking each message
// (seqMessage), commits after every k messages and writes "c OFFSET", the
// committed offset, to out after each commit. With processed set, it
// writes "p OFFSET" for each message first, before the commit that covers
// it. Each line is one write: it reaches out as the child goes.
func readCommitting(t *testing.T, c *Consumer, k int, out io.Writer, processed bool) {
	for {
		m, err := c.Read()
		if errors.Is(err, ErrEmptyQueue) {
			return
		}
		require.NoError(t, err)
		requireSeqMessage(t, m.Data, m.Offset, messageSize(m.Offset))
		if processed {
			_, err = fmt.Fprintf(out, "p %d\n", m.Offset)
			require.NoError(t, err)
		}
		if (m.Offset+1)%uint64(k) == 0 {
			require.NoError(t, c.Commit())
			_, err = fmt.Fprintf(out, "c %d\n", c.Committed())
			require.NoError(t, err)
		}
	}
}

// TestReadCommitKill9: a child reads and commits every k messages and is
// killed with SIGKILL at random points, life after life, until it drains
// the queue. Every message is processed, in order within a life; each life
// starts at the offset the last one committed, so what comes again is only
// the uncommitted window: fewer than k messages, and none is lost.
func TestReadCommitKill9(t *testing.T) {
	const n, k = 3000, 37
	dir := t.TempDir()
	q := smallQueue(t, dir)
	for i := range uint64(n) {
		require.NoError(t, q.Enqueue(seqMessage(i, messageSize(i))))
	}
	require.NoError(t, q.Close())

	rng := rand.New(rand.NewPCG(testSeed(t), 3))
	seen := make([]int, n)
	lastP, committed, redelivered := int64(-1), int64(0), 0
	for life := 1; ; life++ {
		require.Less(t, life, 200, "the child never finished")
		killAfter := 1 + rng.IntN(400)
		cmd := childCommand(t, "reader", dir, readerParams{K: k})
		r := startChildWithPipe(t, cmd)
		sc := bufio.NewScanner(r)
		first, lines, done, killed := int64(-1), 0, false, false
		for sc.Scan() {
			var v int64
			switch line := sc.Text(); {
			case line == "done":
				done = true
			case line[0] == 'p':
				_, err := fmt.Sscanf(line, "p %d", &v)
				require.NoError(t, err)
				if first < 0 {
					first = v
					// The life resumes at the committed offset: at or after
					// the last commit seen, a multiple of k, and no later
					// than the message after the last one processed.
					require.Zero(t, v%k, "life %d starts at %d", life, v)
					require.GreaterOrEqual(t, v, committed, "life %d", life)
					require.LessOrEqual(t, v, lastP+1, "life %d skipped messages", life)
					redelivered += int(lastP + 1 - v)
				} else {
					require.Equal(t, lastP+1, v, "life %d out of order", life)
				}
				lastP = v
				seen[v]++
			case line[0] == 'c':
				_, err := fmt.Sscanf(line, "c %d", &v)
				require.NoError(t, err)
				require.Equal(t, lastP+1, v)
				committed = v
			}
			if lines++; lines == killAfter && !killed && !done {
				killed = true
				_ = cmd.Process.Kill() // SIGKILL
			}
		}
		_, _ = io.Copy(io.Discard, r)
		werr := cmd.Wait()
		require.NoError(t, r.Close())
		if done {
			// A kill sent after the child wrote "done", before the line
			// was read here, may land before it exits: its work is whole.
			if !killed {
				require.NoError(t, werr)
			}
			break
		}
		require.True(t, killed, "the child stopped by itself: %v", werr)
		t.Logf("life %d: from %d to %d, committed %d", life, first, lastP, committed)
	}
	for i, c := range seen {
		require.Positive(t, c, "message %d never processed", i)
	}
	require.Equal(t, int64(n-1), lastP)
	t.Logf("redelivered %d of %d messages", redelivered, n)
}
