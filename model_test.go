package bigqueue

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestModel runs random operations on a queue and on a plain in-memory
// model of it, and compares them after every step: several consumers,
// messages of every size (spanning arenas too), batches, peeks, flushes,
// consumer copies and deletions, and close and reopen among the operations.
func TestModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			runModel(t, seed, 1200)
		})
	}
}

// model is what the queue should hold: every message ever enqueued, by
// sequence number, and each consumer's next sequence number.
type model struct {
	msgs      [][]byte
	consumers map[string]int // each consumer's cursor; "" is the default consumer
	committed map[string]int // each consumer's committed offset
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	dir := t.TempDir()
	opts := []Option{SetArenaSize(testArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0),
		SetMaxInMemArenas([]int{0, 3, 4}[seed%3])}
	q, err := NewMmapQueue(dir, opts...)
	require.NoError(t, err)
	defer func() { _ = q.Close() }()
	m := model{consumers: map[string]int{"": 0}, committed: map[string]int{"": 0}}
	handles := map[string]*Consumer{}
	reopened := false
	names := []string{"a", "b/c", "ü"}

	randSize := func() int {
		switch rng.IntN(10) {
		case 0:
			return 0
		case 1:
			return testArenaSize + rng.IntN(3*testArenaSize)
		default:
			return rng.IntN(400)
		}
	}
	newMsg := func() []byte {
		b := make([]byte, randSize())
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	dequeue := func(name string, consume bool) ([]byte, error) {
		if name == "" {
			if consume {
				if rng.IntN(2) == 0 {
					return q.Dequeue()
				}
				return q.DequeueAppend(make([]byte, 0, 16))
			}
			return q.Peek()
		}
		c := handles[name]
		if consume {
			return c.Dequeue()
		}
		return c.Peek()
	}
	checkLens := func() {
		t.Helper()
		for name, next := range m.consumers {
			if name == "" {
				require.Equal(t, len(m.msgs)-next, q.Len())
				require.Equal(t, next == len(m.msgs), q.IsEmpty())
				continue
			}
			require.Equal(t, len(m.msgs)-next, handles[name].Len(), "consumer %q", name)
			require.Equal(t, next == len(m.msgs), handles[name].IsEmpty())
		}
		named := make([]string, 0, len(m.consumers))
		for name := range m.consumers {
			if name != "" {
				named = append(named, name)
			}
		}
		slices.Sort(named)
		require.Equal(t, named, append([]string{}, q.Consumers()...))
	}

	for step := range steps {
		op := rng.IntN(100)
		switch {
		case op < 35:
			msg := newMsg()
			require.NoError(t, q.Enqueue(msg), "step %d", step)
			m.msgs = append(m.msgs, msg)
		case op < 40:
			batch := make([][]byte, rng.IntN(5))
			for i := range batch {
				batch[i] = newMsg()
			}
			require.NoError(t, q.EnqueueBatch(batch))
			m.msgs = append(m.msgs, batch...)
		case op < 62:
			name := pick(rng, m.consumers)
			consume := rng.IntN(4) != 0
			got, err := dequeue(name, consume)
			next := m.consumers[name]
			if next == len(m.msgs) {
				require.ErrorIs(t, err, ErrEmptyQueue, "step %d consumer %q", step, name)
				break
			}
			require.NoError(t, err, "step %d consumer %q", step, name)
			require.Equal(t, m.msgs[next], got, "step %d consumer %q message %d", step, name, next)
			if consume {
				m.consumers[name]++
				m.committed[name] = m.consumers[name]
			}
		case op < 75:
			// Reading with commits, on a named consumer.
			name := pick(rng, m.consumers)
			if name == "" {
				break
			}
			c := handles[name]
			oldest, next := q.Offsets()
			require.LessOrEqual(t, int(oldest), slowest(m))
			require.Equal(t, len(m.msgs), int(next))
			switch k := rng.IntN(20); {
			case k < 8:
				got, err := c.Read()
				if m.consumers[name] == len(m.msgs) {
					require.ErrorIs(t, err, ErrEmptyQueue, "step %d", step)
					break
				}
				require.NoError(t, err, "step %d consumer %q", step, name)
				require.Equal(t, uint64(m.consumers[name]), got.Offset)
				require.Equal(t, m.msgs[m.consumers[name]], got.Data, "step %d consumer %q", step, name)
				m.consumers[name]++
			case k < 13:
				require.NoError(t, c.Commit())
				m.committed[name] = m.consumers[name]
			case k < 17:
				o := int(oldest) + rng.IntN(int(next-oldest)+1)
				require.NoError(t, c.Seek(uint64(o)), "step %d", step)
				m.consumers[name] = o
			default:
				o := int(oldest) + rng.IntN(int(next-oldest)+1)
				require.NoError(t, c.CommitOffset(uint64(o)), "step %d", step)
				m.committed[name] = o
			}
			require.Equal(t, uint64(m.consumers[name]), c.Cursor())
			require.Equal(t, uint64(m.committed[name]), c.Committed())
		case op < 80:
			name := names[rng.IntN(len(names))]
			c, err := q.NewConsumer(name)
			require.NoError(t, err)
			handles[name] = c
			if _, ok := m.consumers[name]; !ok {
				// A new consumer starts at the oldest message kept.
				head := int(q.head.seq)
				require.LessOrEqual(t, head, slowest(m))
				m.consumers[name] = head
				m.committed[name] = head
			}
		case op < 83:
			from := pick(rng, m.consumers)
			if from == "" {
				break
			}
			name := names[rng.IntN(len(names))]
			c, err := q.FromConsumer(name, handles[from])
			require.NoError(t, err)
			handles[name] = c
			m.consumers[name] = m.consumers[from]
			m.committed[name] = m.committed[from]
		case op < 86:
			name := names[rng.IntN(len(names))]
			err := q.DeleteConsumer(name)
			if _, ok := m.consumers[name]; !ok {
				require.ErrorIs(t, err, ErrUnknownConsumer)
				break
			}
			require.NoError(t, err)
			_, err = handles[name].Dequeue()
			require.ErrorIs(t, err, ErrUnknownConsumer)
			delete(m.consumers, name)
			delete(m.committed, name)
			delete(handles, name)
		case op < 95:
			require.NoError(t, q.Flush())
		case op < 98:
			require.NoError(t, q.Close())
			q, err = NewMmapQueue(dir, opts...)
			require.NoError(t, err, "reopen at step %d", step)
			reopened = true
		default:
			// A crash: the files as a kill -9 leaves them, opened in
			// another directory. Half the time both live slots of the
			// index are unusable, and recovery walks the records to the
			// end of the arenas; it finds every one of them either way.
			files := readQueueDir(t, dir)
			if rng.IntN(2) == 0 {
				clear(files[indexName][metaLiveOffset : metaLiveOffset+2*metaLiveSlotSize])
			}
			require.NoError(t, q.Close())
			dir = t.TempDir()
			writeQueueDir(t, dir, files)
			q, err = NewMmapQueue(dir, opts...)
			require.NoError(t, err, "reopen after a crash at step %d", step)
			reopened = true
		}
		if op >= 95 {
			// A reopened queue puts every cursor at its committed offset.
			for name := range m.consumers {
				m.consumers[name] = m.committed[name]
			}
			for name := range handles {
				handles[name], err = q.NewConsumer(name)
				require.NoError(t, err)
			}
		}
		// Check sees what Dequeue sees, also after a recovery.
		if reopened {
			require.NoError(t, q.Check(), "step %d", step)
		}
		checkLens()
		// The head never passes a consumer, and arenas before it are gone.
		require.LessOrEqual(t, int(q.head.seq), slowest(m))
		first, _ := q.s.arenaOf(q.head.pos)
		for _, id := range q.s.am.ids() {
			require.GreaterOrEqual(t, id, first)
		}
	}
	require.NoError(t, q.Check())
	// Drain every consumer and compare.
	for name, next := range m.consumers {
		for i := next; i < len(m.msgs); i++ {
			got, err := dequeue(name, true)
			require.NoError(t, err)
			require.Equal(t, m.msgs[i], got)
		}
		_, err := dequeue(name, true)
		require.True(t, errors.Is(err, ErrEmptyQueue))
	}
}

func pick(rng *rand.Rand, consumers map[string]int) string {
	names := make([]string, 0, len(consumers))
	for name := range consumers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names[rng.IntN(len(names))]
}

// slowest returns the lowest offset a consumer needs: a cursor or a
// committed offset.
func slowest(m model) int {
	low := -1
	for _, byName := range []map[string]int{m.consumers, m.committed} {
		for _, next := range byName {
			if low < 0 || next < low {
				low = next
			}
		}
	}
	return low
}
