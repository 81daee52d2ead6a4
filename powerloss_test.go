package bigqueue

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The power-loss test checks contract 3 (SPEC section 4) after a crash of the
// machine. The files are copied right after a Flush (snapshot A: what the
// disk is sure to hold) and again after more operations without a Flush
// (snapshot B: what the page cache held). A power loss leaves, of each
// 4096-byte page, either the old or the new content; files created after
// the Flush may be missing, empty or zero. Every such mix must open, and
// show the queue as of some moment between A and B.

const (
	powerLossPage = 4096
	// powerLossLateConsumer is created after the Flush of snapshot A.
	powerLossLateConsumer = "late"
)

// powerLossModel tracks what the test did to the queue.
type powerLossModel struct {
	maxLen int
	ends   []int64 // ends[i]: position after message i-1; message i has key i
	cut    []bool  // cut[i]: the tail may stand after i messages (no batch split)
	pos    [2]int  // the consumers' positions, default and named
}

// TestPowerLoss builds queues, snapshots them at a Flush and later, and
// opens many page-by-page mixes of the two. Each must open (the design
// allows no failure here), with a tail after at least every message of
// snapshot A and at most those of B, never inside a batch; each consumer
// stands where it stood in A or in B (or at the tail, if that is earlier);
// each consumer reads exactly the messages from its position to the tail,
// intact; Check passes; and the queue goes on working.
func TestPowerLoss(t *testing.T) {
	seed := testSeed(t)
	scenarios := []struct {
		arenaSize, maxLen, maxMem, mixes int
	}{
		{4096, 3 * 4096, 3, 20},
		{8192, 600, 0, 15},
		{4096, 200, 4, 15},
	}
	for si, sc := range scenarios {
		t.Run(fmt.Sprintf("arena-%d-maxlen-%d", sc.arenaSize, sc.maxLen), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(si)))
			opts := []Option{SetArenaSize(sc.arenaSize), SetMaxInMemArenas(sc.maxMem),
				SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
			dir := t.TempDir()
			q, err := NewMmapQueue(dir, opts...)
			require.NoError(t, err)
			c, err := q.NewConsumer(crashConsumerName)
			require.NoError(t, err)
			m := &powerLossModel{maxLen: sc.maxLen, ends: []int64{0}, cut: []bool{true}}
			layout := &stream{size: sc.arenaSize}

			ops := func(n int, flushes bool) {
				for range n {
					switch r := rng.IntN(100); {
					case r < 30:
						count := 1
						if r >= 25 {
							count = 1 + rng.IntN(5)
						}
						var batch [][]byte
						for range count {
							k := len(m.ends) - 1
							msg := contractPayload(uint64(k), m.maxLen)
							batch = append(batch, msg)
							m.ends = append(m.ends, layout.recordEnd(m.ends[k], len(msg)))
							m.cut = append(m.cut, false)
						}
						m.cut[len(m.cut)-1] = true
						if count == 1 {
							require.NoError(t, q.Enqueue(batch[0]))
						} else {
							require.NoError(t, q.EnqueueBatch(batch))
						}
					case r < 98:
						i := 0
						deq := q.Dequeue
						if r >= 64 {
							i, deq = 1, c.Dequeue
						}
						msg, err := deq()
						if m.pos[i] == len(m.ends)-1 {
							require.ErrorIs(t, err, ErrEmptyQueue)
							continue
						}
						require.NoError(t, err)
						key, err := checkContractPayload(msg, m.maxLen)
						require.NoError(t, err)
						require.Equal(t, uint64(m.pos[i]), key)
						m.pos[i]++
					default:
						if flushes {
							require.NoError(t, q.Flush())
						}
					}
				}
			}
			ops(400, true)
			require.NoError(t, q.Flush())
			tailA, posA := len(m.ends)-1, m.pos
			snapA := readQueueDir(t, dir)
			ops(120, false)
			// A consumer created after the Flush, which reads a little:
			// its file is only in B.
			st, err := q.Stats()
			require.NoError(t, err)
			lateFrom := slices.Index(m.ends, st.Head)
			late, err := q.NewConsumer(powerLossLateConsumer)
			require.NoError(t, err)
			lateAt := lateFrom
			for lateAt < len(m.ends)-1 && lateAt < lateFrom+5 {
				msg, err := late.Dequeue()
				require.NoError(t, err)
				key, err := checkContractPayload(msg, m.maxLen)
				require.NoError(t, err)
				require.Equal(t, uint64(lateAt), key)
				lateAt++
			}
			ops(120, false)
			tailB, posB := len(m.ends)-1, m.pos
			snapB := readQueueDir(t, dir)
			require.NoError(t, q.Close())
			require.Greater(t, tailB, tailA)
			t.Logf("A: tail %d, consumers %v; B: tail %d, consumers %v; %d arenas in A, %d in B",
				tailA, posA, tailB, posB, len(arenaNames(snapA)), len(arenaNames(snapB)))

			check := func(what string, files map[string][]byte) {
				t.Helper()
				d := t.TempDir()
				writeQueueDir(t, d, files)
				q, err := NewMmapQueue(d, opts...)
				require.NoError(t, err, "%s: open after power loss", what)
				defer func() {
					if q != nil {
						_ = q.Close()
					}
				}()
				st, err := q.Stats()
				require.NoError(t, err)
				tail := slices.Index(m.ends, st.Tail)
				require.True(t, tail >= tailA && tail <= tailB,
					"%s: tail after %d messages, want between %d (A) and %d (B)", what, tail, tailA, tailB)
				require.True(t, m.cut[tail], "%s: tail after %d messages splits a batch", what, tail)
				head := slices.Index(m.ends, st.Head)
				require.GreaterOrEqual(t, head, 0, "%s: head %d is not a record boundary", what, st.Head)
				require.NoError(t, q.Check(), what)

				positions := make(map[string]int)
				for _, cs := range st.Consumers {
					positions[cs.Name] = slices.Index(m.ends, cs.Position)
				}
				// The late consumer's file, if it survived, holds the
				// position it had in B; if not, it starts over at the head.
				lateWant := head
				if _, ok := files[consumerFileName(powerLossLateConsumer)]; ok {
					lateWant = min(lateAt, tail)
					require.Contains(t, positions, powerLossLateConsumer, what)
				}
				lateC, err := q.NewConsumer(powerLossLateConsumer)
				require.NoError(t, err)
				require.Equal(t, tail-lateWant, lateC.Len(), "%s: late consumer", what)
				for k := lateWant; k < tail; k++ {
					msg, err := lateC.Dequeue()
					require.NoError(t, err, "%s: late consumer, message %d", what, k)
					key, err := checkContractPayload(msg, m.maxLen)
					require.NoError(t, err)
					require.Equal(t, uint64(k), key, "%s: late consumer", what)
				}

				named, err := q.NewConsumer(crashConsumerName)
				require.NoError(t, err)
				lengths := []func() int{q.Len, named.Len}
				for i, deq := range []func() ([]byte, error){q.Dequeue, named.Dequeue} {
					name := []string{"", crashConsumerName}[i]
					at, ok := positions[name]
					require.True(t, ok, "%s: consumer %q missing from Stats", what, name)
					require.True(t, at == min(posA[i], tail) || at == min(posB[i], tail),
						"%s: consumer %d at message %d, want %d (A) or %d (B) or the tail %d",
						what, i, at, posA[i], posB[i], tail)
					require.GreaterOrEqual(t, at, head, "%s: consumer %d before the head", what, i)
					require.Equal(t, tail-at, lengths[i](), "%s: consumer %d Len", what, i)
					for k := at; k < tail; k++ {
						msg, err := deq()
						require.NoError(t, err, "%s: consumer %d, message %d", what, i, k)
						key, err := checkContractPayload(msg, m.maxLen)
						require.NoError(t, err, "%s: consumer %d", what, i)
						require.Equal(t, uint64(k), key, "%s: consumer %d", what, i)
					}
					_, err := deq()
					require.ErrorIs(t, err, ErrEmptyQueue, "%s: consumer %d reads past the tail", what, i)
				}

				// The queue goes on: a new message after the recovered tail.
				next := contractPayload(uint64(tailB+1), m.maxLen)
				require.NoError(t, q.Enqueue(next), what)
				msg, err := q.Dequeue()
				require.NoError(t, err, what)
				require.Equal(t, next, msg, what)
				err = q.Close()
				q = nil
				require.NoError(t, err, what)
				q2, err := NewMmapQueue(d, opts...)
				require.NoError(t, err, "%s: reopen", what)
				require.Equal(t, 0, q2.Len(), what)
				named, err = q2.NewConsumer(crashConsumerName)
				require.NoError(t, err)
				require.Equal(t, 1, named.Len(), what)
				require.NoError(t, q2.Check(), what)
				require.NoError(t, q2.Close())
			}

			check("all pages from A", snapA)
			check("all pages from B", snapB)
			for mix := range sc.mixes {
				files, desc := mixSnapshots(t, rng, snapA, snapB, sc.arenaSize)
				check(fmt.Sprintf("mix %d (%s)", mix, desc), files)
			}
		})
	}
}

func isArenaName(name string) bool {
	_, ok := parseArenaName(name)
	return ok
}

// arenaNames returns the names of the arena files among files.
func arenaNames(files map[string][]byte) []string {
	var names []string
	for name := range files {
		if _, ok := parseArenaName(name); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// mixSnapshots returns a directory as a power loss after snapshot A could
// leave it, had the page cache held B: each page of a file in both from A or
// B (whole files from one side now and then); a file only in B (an arena
// created after the Flush) missing, empty, all zeros, or with each page
// from B or zeros. It also describes the mix for failure messages.
func mixSnapshots(t *testing.T, rng *rand.Rand, a, b map[string][]byte, arenaSize int) (map[string][]byte, string) {
	t.Helper()
	out := make(map[string][]byte)
	var desc []string
	names := make([]string, 0, len(b))
	for name := range b {
		names = append(names, name)
	}
	for name := range a {
		if _, ok := b[name]; !ok {
			t.Fatalf("%s is in snapshot A and not in B: nothing was deleted between them", name)
		}
	}
	slices.Sort(names)
	pages := func(labels string, srcs ...[]byte) ([]byte, string) {
		n := 0
		for _, s := range srcs {
			n = max(n, len(s))
		}
		d := make([]byte, n)
		pick := make([]byte, 0, n/powerLossPage+1)
		for off := 0; off < n; off += powerLossPage {
			i := rng.IntN(len(srcs))
			pick = append(pick, labels[i])
			if off < len(srcs[i]) {
				copy(d[off:min(off+powerLossPage, n)], srcs[i][off:])
			}
		}
		return d, string(pick)
	}
	for _, name := range names {
		bb := b[name]
		aa, inA := a[name]
		var how string
		switch {
		case inA:
			switch rng.IntN(4) {
			case 0:
				out[name], how = aa, "A"
			case 1:
				out[name], how = bb, "B"
			default:
				out[name], how = pages("AB", aa, bb)
			}
		case !isArenaName(name):
			// A consumer file made after the Flush: whole (it was
			// written and synced on creation) or missing.
			if rng.IntN(2) == 0 {
				how = "missing"
			} else {
				out[name], how = bb, "B"
			}
		default:
			switch rng.IntN(4) {
			case 0:
				how = "missing"
			case 1:
				out[name], how = []byte{}, "empty"
			case 2:
				out[name], how = make([]byte, arenaSize), "zeros"
			default:
				var d []byte
				d, how = pages("B0", bb, make([]byte, len(bb)))
				out[name], how = d, "new:"+how
			}
		}
		desc = append(desc, name+"="+how)
	}
	if len(desc) > 12 {
		desc = append(desc[:6], append([]string{"..."}, desc[len(desc)-6:]...)...)
	}
	return out, fmt.Sprint(desc)
}
