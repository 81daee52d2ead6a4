package bigqueue

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This file holds the crash tests: kill -9 of a child process that works on
// a queue, and torn writes of the live slots.

// crashConsumerName is the named consumer of the crash child; a name with a
// slash and non-ASCII letters, which must still be a safe file name.
const crashConsumerName = "crash/lecteur-ü"

// crashTempPrefix starts the names of the crash child's short-lived
// consumers.
const crashTempPrefix = "tmp-"

// crashParams configures one life of the crash child.
type crashParams struct {
	Gen        uint64 // keys are Gen<<32 | n, so every life's keys are larger
	Seed       uint64
	ArenaSize  int
	MaxLen     int
	MaxMem     int
	FlushOps   int64
	FlushEvery time.Duration
	NoFlush    bool // no Flush calls either: only the live slots tell the tail
	MaxOps     int
}

// crashChild works on the queue until it is killed: enqueues, batches,
// dequeues by the default and the named consumer, and now and then a Flush
// or a temporary consumer (created, read a little, deleted).
// Before each operation it writes its intent to file descriptor 3, and after
// the operation returned, its acknowledgement ("A", or "A <key>" or
// "A empty" for a dequeue). The parent kills it with SIGKILL at a random
// moment and checks the queue against the acknowledged operations.
func crashChild(t *testing.T, dir string, arg []byte) {
	var p crashParams
	require.NoError(t, json.Unmarshal(arg, &p))
	ack := os.NewFile(3, "ack")
	say := func(format string, args ...any) {
		// One write per line: a pipe write of a few bytes is atomic.
		if _, err := ack.WriteString(fmt.Sprintf(format, args...) + "\n"); err != nil {
			t.Fatalf("write to parent: %v", err)
		}
	}
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		say("X %s", strings.ReplaceAll(msg, "\n", " "))
		t.Fatal(msg)
	}
	q, err := NewMmapQueue(dir, SetArenaSize(p.ArenaSize), SetMaxInMemArenas(p.MaxMem),
		SetPeriodicFlushOps(p.FlushOps), SetPeriodicFlushDuration(p.FlushEvery))
	if err != nil {
		fail("open: %v", err)
	}
	c, err := q.NewConsumer(crashConsumerName)
	if err != nil {
		fail("new consumer: %v", err)
	}
	// Temporary consumers a kill left behind are deleted.
	for _, name := range q.Consumers() {
		if strings.HasPrefix(name, crashTempPrefix) {
			say("I T")
			if err := q.DeleteConsumer(name); err != nil {
				fail("delete consumer %q: %v", name, err)
			}
			say("A")
		}
	}
	rng := rand.New(rand.NewPCG(p.Seed, p.Gen))
	next := uint64(0)
	newKey := func() uint64 {
		k := p.Gen<<32 | next
		next++
		return k
	}
	dequeue := func(which int, deq func() ([]byte, error)) {
		say("I D %d", which)
		msg, err := deq()
		if errors.Is(err, ErrEmptyQueue) {
			say("A empty")
			return
		}
		if err != nil {
			fail("dequeue by consumer %d: %v", which, err)
		}
		key, err := checkContractPayload(msg, p.MaxLen)
		if err != nil {
			fail("dequeue by consumer %d: %v", which, err)
		}
		say("A %d", key)
	}
	for range p.MaxOps {
		switch r := rng.IntN(100); {
		case r < 30:
			key := newKey()
			say("I E %d", key)
			if err := q.Enqueue(contractPayload(key, p.MaxLen)); err != nil {
				fail("enqueue: %v", err)
			}
			say("A")
		case r < 36:
			n := 1 + rng.IntN(6)
			batch := make([][]byte, n)
			first := p.Gen<<32 | next
			for i := range batch {
				batch[i] = contractPayload(newKey(), p.MaxLen)
			}
			say("I B %d %d", first, n)
			if err := q.EnqueueBatch(batch); err != nil {
				fail("enqueue batch: %v", err)
			}
			say("A")
		case r < 67:
			dequeue(0, q.Dequeue)
		case r < 97:
			dequeue(1, c.Dequeue)
		case r < 98:
			// A temporary consumer: created at the head, reads a
			// little, deleted (which flushes). The kill may cut any
			// of it short.
			say("I T")
			name := fmt.Sprintf("%s%d-%d", crashTempPrefix, p.Gen, next)
			tmp, err := q.NewConsumer(name)
			if err != nil {
				fail("new consumer %q: %v", name, err)
			}
			for range 3 {
				msg, err := tmp.Dequeue()
				if errors.Is(err, ErrEmptyQueue) {
					break
				}
				if err != nil {
					fail("dequeue by %q: %v", name, err)
				}
				if _, err := checkContractPayload(msg, p.MaxLen); err != nil {
					fail("dequeue by %q: %v", name, err)
				}
			}
			if err := q.DeleteConsumer(name); err != nil {
				fail("delete consumer %q: %v", name, err)
			}
			say("A")
		default:
			if p.NoFlush {
				continue
			}
			say("I F")
			if err := q.Flush(); err != nil {
				fail("flush: %v", err)
			}
			say("A")
		}
	}
	if err := q.Close(); err != nil {
		fail("close: %v", err)
	}
	say("DONE")
}

// crashOp is an operation the child announced.
type crashOp struct {
	kind     byte     // 'E'nqueue, 'B'atch, 'D'equeue, 'F'lush, 'T'emporary consumer
	keys     []uint64 // enqueued keys (E, B)
	consumer int      // D
}

// crashModel is what the parent knows of the queue: for each consumer, the
// keys it will read next, in order, and the operation in flight when the
// child died (announced but not acknowledged), whose effect may or may not
// have happened.
type crashModel struct {
	pending  [2][]uint64
	inflight *crashOp
	acks     int
}

// line applies one line from the child.
func (m *crashModel) line(s string) error {
	f := strings.Fields(s)
	if len(f) == 0 {
		return fmt.Errorf("empty line from child")
	}
	num := func(i int) uint64 {
		v, _ := strconv.ParseUint(f[i], 10, 64)
		return v
	}
	switch f[0] {
	case "X":
		return fmt.Errorf("child failed: %s", s)
	case "DONE":
		return nil
	case "I":
		if m.inflight != nil {
			return fmt.Errorf("intent %q while %+v is not acknowledged", s, *m.inflight)
		}
		op := &crashOp{kind: f[1][0]}
		switch op.kind {
		case 'E':
			op.keys = []uint64{num(2)}
		case 'B':
			for i := range num(3) {
				op.keys = append(op.keys, num(2)+i)
			}
		case 'D':
			op.consumer = int(num(2))
		case 'F', 'T':
		default:
			return fmt.Errorf("unknown intent %q", s)
		}
		m.inflight = op
	case "A":
		op := m.inflight
		if op == nil {
			return fmt.Errorf("acknowledgement %q without intent", s)
		}
		m.inflight = nil
		m.acks++
		switch op.kind {
		case 'E', 'B':
			for c := range m.pending {
				m.pending[c] = append(m.pending[c], op.keys...)
			}
		case 'D':
			p := &m.pending[op.consumer]
			if f[1] == "empty" {
				if len(*p) > 0 {
					return fmt.Errorf("consumer %d: dequeue found the queue empty, %d messages were pending (first %#x)",
						op.consumer, len(*p), (*p)[0])
				}
				return nil
			}
			key := num(1)
			if len(*p) == 0 {
				return fmt.Errorf("consumer %d: dequeued %#x, nothing was pending", op.consumer, key)
			}
			if (*p)[0] != key {
				return fmt.Errorf("consumer %d: dequeued %#x, want %#x (FIFO order)", op.consumer, key, (*p)[0])
			}
			*p = (*p)[1:]
		}
	default:
		return fmt.Errorf("unknown line from child: %q", s)
	}
	return nil
}

// matches reports whether got is an acceptable recovered view of consumer
// c, and whether the enqueue in flight is in it.
func (m *crashModel) matches(c int, got []uint64) (withInflight bool, ok bool) {
	var u []uint64
	if op := m.inflight; op != nil && (op.kind == 'E' || op.kind == 'B') {
		u = op.keys
	}
	for _, with := range []bool{false, true} {
		if with && len(u) == 0 {
			break
		}
		want := slices.Clone(m.pending[c])
		if with {
			want = append(want, u...)
		}
		if slices.Equal(got, want) {
			return with, true
		}
		// A dequeue in flight may have moved the consumer.
		if op := m.inflight; op != nil && op.kind == 'D' && op.consumer == c && len(want) > 0 &&
			slices.Equal(got, want[1:]) {
			return with, true
		}
	}
	return false, false
}

// TestCrashKill9 runs a child that enqueues, batches, dequeues through the
// default and a named consumer and flushes, kills it with SIGKILL at a random
// moment, and checks contracts 1 and 3 on a copy of what it left: every
// acknowledged enqueue is there, in FIFO order, nothing else but the one
// operation in flight (a batch whole or not at all), contents intact, and
// each consumer resumes right after its last acknowledged dequeue (or one
// further, when a dequeue was in flight). Then the next child goes on with
// the same directory. Arenas are small, so messages span them and arenas are
// deleted, and each life has other periodic flush settings.
func TestCrashKill9(t *testing.T) {
	seed := testSeed(t)
	configs := []struct {
		arenaSize, maxLen, lives int
	}{
		{4096, 3 * 4096, 8},
		{8192, 8192 + 100, 6},
		{65536, 20000, 4},
		// Arenas this large are retired as soon as every consumer has
		// read past one, on a dequeue, without a flush.
		{eagerArenaSize, 600_000, 3},
	}
	for i, cfg := range configs {
		t.Run(fmt.Sprintf("arena-%d", cfg.arenaSize), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			dir := t.TempDir()
			m := &crashModel{}
			for gen := range cfg.lives {
				p := crashParams{
					Gen:        uint64(gen),
					Seed:       rng.Uint64(),
					ArenaSize:  cfg.arenaSize,
					MaxLen:     cfg.maxLen,
					MaxMem:     []int{0, 3, 4}[rng.IntN(3)],
					FlushOps:   []int64{0, 1, 7, 60, 1000}[rng.IntN(5)],
					FlushEvery: []time.Duration{0, time.Millisecond, 15 * time.Millisecond, time.Second}[rng.IntN(4)],
					MaxOps:     100_000,
				}
				if gen%3 == 1 {
					p.FlushOps, p.FlushEvery, p.NoFlush = 0, 0, true
				}
				// Most lives are killed after a random number of
				// acknowledgements; a few right at the start (during
				// recovery), and the last one ends by itself.
				killAfter := rng.IntN(1500)
				if rng.IntN(6) == 0 {
					killAfter = 0
				}
				if gen == cfg.lives-1 {
					p.MaxOps, killAfter = 300, -1
				}
				runCrashChild(t, dir, p, killAfter, m)
				auditCrash(t, dir, p, m)
			}
		})
	}
}

// runCrashChild runs one life of the crash child on dir, killing it after
// killAfter acknowledgements (never when negative), and applies every line
// it wrote to m.
func runCrashChild(t *testing.T, dir string, p crashParams, killAfter int, m *crashModel) {
	t.Helper()
	cmd := childCommand(t, "crash", dir, p)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	r := startChildWithPipe(t, cmd)
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill() // SIGKILL
		}
	}
	defer kill()
	if killAfter == 0 {
		kill()
	}
	start := m.acks
	var lineErr error
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if lineErr == nil {
			lineErr = m.line(sc.Text())
		}
		if lineErr != nil {
			kill()
		}
		if killAfter > 0 && m.acks-start >= killAfter {
			kill()
		}
	}
	_, _ = io.Copy(io.Discard, r)
	werr := cmd.Wait()
	if lineErr != nil {
		t.Fatalf("life %d (%+v): %v\nchild output:\n%s", p.Gen, p, lineErr, out.String())
	}
	if !killed && werr != nil {
		t.Fatalf("life %d (%+v): child failed: %v\n%s", p.Gen, p, werr, out.String())
	}
	t.Logf("life %d: %d acknowledged operations, killed %v, in flight %+v", p.Gen, m.acks-start, killed, m.inflight)
}

// auditCrash opens a copy of dir (the original is left for the next life
// exactly as the child left it), reads every pending message of both
// consumers and checks them against m; then m becomes what was found.
func auditCrash(t *testing.T, dir string, p crashParams, m *crashModel) {
	t.Helper()
	scratch := t.TempDir()
	writeQueueDir(t, scratch, readQueueDir(t, dir))
	q, err := NewMmapQueue(scratch, SetArenaSize(p.ArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.NoError(t, err, "life %d: reopen after kill", p.Gen)
	defer func() { require.NoError(t, q.Close()) }()
	require.NoError(t, q.Check(), "life %d: check after kill", p.Gen)

	c, err := q.NewConsumer(crashConsumerName)
	require.NoError(t, err)
	// A temporary consumer the kill left behind reads messages that were
	// enqueued, in order, up to the same tail; then it goes, as the next
	// life will delete it.
	tempLast := make(map[string]uint64)
	for _, name := range q.Consumers() {
		if !strings.HasPrefix(name, crashTempPrefix) {
			continue
		}
		tmp, err := q.NewConsumer(name)
		require.NoError(t, err)
		var last uint64
		for n := 0; ; n++ {
			msg, err := tmp.Dequeue()
			if errors.Is(err, ErrEmptyQueue) {
				break
			}
			require.NoError(t, err, "life %d: consumer %q", p.Gen, name)
			key, err := checkContractPayload(msg, p.MaxLen)
			require.NoError(t, err, "life %d: consumer %q", p.Gen, name)
			require.True(t, n == 0 || key > last, "life %d: consumer %q reads %#x after %#x", p.Gen, name, key, last)
			last = key
		}
		tempLast[name] = last
		require.NoError(t, q.DeleteConsumer(name))
	}
	var got [2][]uint64
	for i, deq := range []func() ([]byte, error){q.Dequeue, c.Dequeue} {
		for {
			msg, err := deq()
			if errors.Is(err, ErrEmptyQueue) {
				break
			}
			require.NoError(t, err, "life %d: consumer %d, dequeue after kill", p.Gen, i)
			key, err := checkContractPayload(msg, p.MaxLen)
			require.NoError(t, err, "life %d: consumer %d", p.Gen, i)
			got[i] = append(got[i], key)
		}
	}
	var with [2]bool
	for i := range got {
		var ok bool
		with[i], ok = m.matches(i, got[i])
		if !ok {
			t.Fatalf("life %d: consumer %d reads %s after the kill;\nacknowledged: %s\nin flight: %+v",
				p.Gen, i, keyList(got[i]), keyList(m.pending[i]), m.inflight)
		}
	}
	require.Equal(t, with[0], with[1], "life %d: the enqueue in flight is seen by one consumer only", p.Gen)
	for _, g := range got {
		if len(g) > 0 {
			for name, last := range tempLast {
				require.Equal(t, g[len(g)-1], last, "life %d: consumer %q ends elsewhere", p.Gen, name)
			}
		}
	}
	m.pending, m.inflight = got, nil

	// Both consumers have read everything: a flush deletes every arena
	// before the tail's. (Arenas after it may remain, made for a write the
	// kill cut short; the writer uses them again.)
	require.NoError(t, q.Flush())
	st, err := q.Stats()
	require.NoError(t, err)
	headArena, tailArena := st.Head/int64(p.ArenaSize), st.Tail/int64(p.ArenaSize)
	require.Equal(t, tailArena, headArena, "life %d: the head did not follow the consumers", p.Gen)
	ids := arenaFileIDs(t, scratch)
	if len(ids) > 0 {
		require.GreaterOrEqual(t, ids[0], headArena, "life %d: arena %d left before the head's, %d", p.Gen, ids[0], headArena)
	}
}

// keyList formats keys (life:number) for a failure message, eliding the
// middle of a long list.
func keyList(keys []uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d keys [", len(keys))
	for i, k := range keys {
		if len(keys) > 16 && i >= 8 && i < len(keys)-8 {
			if i == 8 {
				b.WriteString(" ...")
			}
			continue
		}
		fmt.Fprintf(&b, " %d:%d", k>>32, uint32(k))
	}
	b.WriteString(" ]")
	return b.String()
}

// TestCrashTornLiveSlotAfterAbortedBatch: life 1 writes a batch's records
// but is killed before publishing them (before the live slot moves): the
// batch is not in the queue. Life 2 enqueues a message of the length of the
// batch's first record, so that the batch's second record lies right behind
// it, and is killed; then both live slots of the index are found spoilt (a
// kill spoils at most the one being written; damage can spoil both), so
// recovery reads on from record to record past the last flush. Life 3 must
// not take the rest of the aborted batch for messages: it was never
// acknowledged, a batch is whole or absent, and it would come after a later
// message.
func TestCrashTornLiveSlotAfterAbortedBatch(t *testing.T) {
	opts := []Option{SetArenaSize(4096), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	const maxLen = 100
	life1 := t.TempDir()
	q, err := NewMmapQueue(life1, opts...)
	require.NoError(t, err)
	require.NoError(t, q.Enqueue(contractPayload(1, maxLen)))
	batch := [][]byte{contractPayload(2, maxLen), contractPayload(3, maxLen), contractPayload(4, maxLen)}
	q.mu.Lock()
	pos := q.tail.pos
	for i, m := range batch {
		flags := uint16(flagBatchMore)
		if i == len(batch)-1 {
			flags = 0
		}
		pos, err = q.s.write(position{pos, q.tail.seq + int64(i)}, m, flags)
		require.NoError(t, err)
	}
	q.mu.Unlock()
	// kill -9 here: what the page cache holds is what the next life finds.
	life2 := t.TempDir()
	writeQueueDir(t, life2, readQueueDir(t, life1))
	require.NoError(t, q.Close())

	q, err = NewMmapQueue(life2, opts...)
	require.NoError(t, err)
	require.Equal(t, 1, q.Len(), "the unpublished batch is not in the queue")
	x := contractPayload(5, maxLen)
	x = append(x[:8:8], make([]byte, len(batch[0])-8)...) // key 5, the first record's length
	require.NoError(t, q.Enqueue(x))
	// kill -9, and no live slot of the index holds.
	live := slices.Clone(q.idx.data[metaLiveOffset:metaSlot0Offset])
	clear(q.idx.data[metaLiveOffset:metaSlot0Offset])
	life3 := t.TempDir()
	writeQueueDir(t, life3, readQueueDir(t, life2))
	copy(q.idx.data[metaLiveOffset:metaSlot0Offset], live)
	require.NoError(t, q.Close())

	q, err = NewMmapQueue(life3, opts...)
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	var keys []uint64
	for {
		msg, err := q.Dequeue()
		if errors.Is(err, ErrEmptyQueue) {
			break
		}
		require.NoError(t, err)
		keys = append(keys, binary.LittleEndian.Uint64(msg))
	}
	require.Contains(t, [][]uint64{{1}, {1, 5}}, keys,
		"after an aborted batch and spoilt live slots the queue reads keys %v", keys)
}

// tornImages returns every state a kill -9 can leave a file in while an
// operation rewrote some of its bytes, stores going in address order: the
// first k changed bytes new and the rest old, for every k. (Real stores are
// 8 bytes or fewer, so these are more states than a kill can make.)
func tornImages(before, after []byte) [][]byte {
	var changed []int
	for i := range after {
		if i >= len(before) || before[i] != after[i] {
			changed = append(changed, i)
		}
	}
	images := make([][]byte, 0, len(changed)+1)
	for k := range len(changed) + 1 {
		img := slices.Clone(before)
		img = append(img, make([]byte, max(0, len(after)-len(img)))...)
		for _, i := range changed[:k] {
			img[i] = after[i]
		}
		images = append(images, img)
	}
	return images
}

// TestCrashTornLiveSlots kills, in effect, the process at every byte of the
// write of a live slot: of a consumer's file during a Dequeue and of the
// index during an Enqueue, each after a Flush and three more operations of
// the same kind. Contract 1: the three operations that returned survive
// whatever the state of the fourth; the fourth may or may not have happened.
func TestCrashTornLiveSlots(t *testing.T) {
	opts := []Option{SetArenaSize(4096), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	const maxLen = 300
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("dequeue/named=%v", named), func(t *testing.T) {
			dir := t.TempDir()
			q, err := NewMmapQueue(dir, opts...)
			require.NoError(t, err)
			defer func() { require.NoError(t, q.Close()) }()
			c, err := q.NewConsumer(crashConsumerName)
			require.NoError(t, err)
			for i := range 20 {
				require.NoError(t, q.Enqueue(contractPayload(uint64(i), maxLen)))
			}
			deq, file := q.Dequeue, defaultConsumerFile
			if named {
				deq, file = c.Dequeue, consumerFileName(crashConsumerName)
			}
			_, err = deq()
			require.NoError(t, err)
			require.NoError(t, q.Flush())
			for range 3 {
				_, err = deq()
				require.NoError(t, err)
			}
			before := readQueueDir(t, dir)
			_, err = deq() // the fourth: 4 dequeued in all before it, 5 after
			require.NoError(t, err)
			after := readQueueDir(t, dir)
			for k, img := range tornImages(before[file], after[file]) {
				files := maps.Clone(after)
				files[file] = img
				d := t.TempDir()
				writeQueueDir(t, d, files)
				q2, err := NewMmapQueue(d, opts...)
				require.NoError(t, err, "torn after %d bytes", k)
				deq2 := q2.Dequeue
				if named {
					c2, err := q2.NewConsumer(crashConsumerName)
					require.NoError(t, err)
					deq2 = c2.Dequeue
				}
				msg, err := deq2()
				require.NoError(t, err)
				key, err := checkContractPayload(msg, maxLen)
				require.NoError(t, err)
				require.Contains(t, []uint64{4, 5}, key,
					"the live slot torn after %d changed bytes: the consumer resumes at message %d, but 4 dequeues had returned", k, key)
				require.NoError(t, q2.Close())
			}
		})
	}
	t.Run("enqueue", func(t *testing.T) {
		dir := t.TempDir()
		q, err := NewMmapQueue(dir, opts...)
		require.NoError(t, err)
		defer func() { require.NoError(t, q.Close()) }()
		for i := range 5 {
			require.NoError(t, q.Enqueue(contractPayload(uint64(i), maxLen)))
		}
		require.NoError(t, q.Flush())
		for i := 5; i < 8; i++ {
			require.NoError(t, q.Enqueue(contractPayload(uint64(i), maxLen)))
		}
		before := readQueueDir(t, dir)
		require.NoError(t, q.Enqueue(contractPayload(8, maxLen)))
		after := readQueueDir(t, dir)
		for k, img := range tornImages(before[indexName], after[indexName]) {
			files := maps.Clone(after) // the record is written before the live slot
			files[indexName] = img
			d := t.TempDir()
			writeQueueDir(t, d, files)
			q2, err := NewMmapQueue(d, opts...)
			require.NoError(t, err, "torn after %d bytes", k)
			n := q2.Len()
			require.Contains(t, []int{8, 9}, n, "the index's live slot torn after %d changed bytes", k)
			for i := range n {
				msg, err := q2.Dequeue()
				require.NoError(t, err)
				key, err := checkContractPayload(msg, maxLen)
				require.NoError(t, err)
				require.Equal(t, uint64(i), key)
			}
			require.NoError(t, q2.Close())
		}
	})
}
