package bigqueue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The damage tests check "Bad input" (SPEC section 3): a queue directory
// whose files are truncated, zeroed, scribbled over, flipped or deleted
// either fails to open with ErrCorrupt or ErrIncompatibleVersion, or opens
// and serves only messages that were enqueued, in order; never a panic or a
// SIGBUS. Each case runs in a child process, so that a crash fails the case
// and not the test binary.

// damageParams is what a reader of a damaged queue needs to know.
type damageParams struct {
	ArenaSize int
	MaxLen    int    // of contractPayload
	N         int    // messages enqueued: keys 0..N-1
	Named     string // the named consumer
}

// damageBase is a queue built for damaging, with what the test knows of it.
type damageBase struct {
	damageParams
	Crashed     bool              // files copied while the queue was open, after unflushed operations
	Def, Cons   int               // the consumers' positions (index of the next message)
	DefFlushed  int               // the default consumer's position at the last Flush
	ConsFlushed int               // the named consumer's
	TailFlushed int               // messages before the tail at the last Flush
	Head        int               // index of the oldest message kept
	Ends        []int64           // Ends[i]: the position after message i-1 (Ends[0] = 0)
	Files       map[string][]byte // every file of the directory
}

// buildDamageBase builds the queue to damage: n messages over several
// arenas, both consumers part way, a Flush that deleted the first arenas;
// crashed adds operations after the Flush and copies the files while the
// queue is open (a kill -9), otherwise the queue is closed first.
func buildDamageBase(t testing.TB, dir string, arenaSize, n int, crashed bool) *damageBase {
	t.Helper()
	b := &damageBase{
		damageParams: damageParams{ArenaSize: arenaSize, MaxLen: 2*arenaSize + 100, N: n, Named: "damage/lecteur-ü"},
		Crashed:      crashed,
	}
	flushed := n * 7 / 8
	if !crashed {
		flushed = n
	}
	q, err := NewMmapQueue(dir, SetArenaSize(arenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.NoError(t, err)
	c, err := q.NewConsumer(b.Named)
	require.NoError(t, err)
	for i := range flushed {
		require.NoError(t, q.Enqueue(contractPayload(uint64(i), b.MaxLen)))
	}
	dequeue := func(deq func() ([]byte, error), count int, at *int) {
		for range count {
			msg, err := deq()
			require.NoError(t, err)
			key, err := checkContractPayload(msg, b.MaxLen)
			require.NoError(t, err)
			require.Equal(t, uint64(*at), key)
			*at++
		}
	}
	dequeue(q.Dequeue, n*3/8, &b.Def)
	dequeue(c.Dequeue, n*2/8, &b.Cons)
	require.NoError(t, q.Flush())
	b.DefFlushed, b.ConsFlushed, b.TailFlushed = b.Def, b.Cons, flushed
	if crashed {
		for i := flushed; i < n; i++ {
			require.NoError(t, q.Enqueue(contractPayload(uint64(i), b.MaxLen)))
		}
		dequeue(q.Dequeue, n/16, &b.Def)
		dequeue(c.Dequeue, n/32, &b.Cons)
	}

	// Where each message lies, by the record format's rules.
	layout := &stream{size: arenaSize}
	b.Ends = []int64{0}
	for i := range n {
		b.Ends = append(b.Ends, layout.recordEnd(b.Ends[i], len(contractPayload(uint64(i), b.MaxLen))))
	}
	st, err := q.Stats()
	require.NoError(t, err)
	require.Equal(t, b.Ends[n], st.Tail, "the test's layout of records differs from the queue's")
	b.Head = slices.Index(b.Ends, st.Head)
	require.GreaterOrEqual(t, b.Head, 0, "head %d is not a record boundary", st.Head)
	require.Greater(t, b.Head, 0, "the base should have deleted its first arenas")

	if crashed {
		b.Files = readQueueDir(t, dir)
		require.NoError(t, q.Close())
	} else {
		require.NoError(t, q.Close())
		b.Files = readQueueDir(t, dir)
	}
	return b
}

// drainOutcome is what draining one consumer of a damaged queue gave.
type drainOutcome struct {
	Len   int    // Len() before the drain
	First int    // key of the first message read, -1 for none
	Count int    // messages read, with consecutive keys
	Stop  string // "empty" or "corrupt"
}

// damageOutcome is what opening and reading a damaged queue gave.
type damageOutcome struct {
	Open    string // "ok", "corrupt" or "version"
	OpenErr string
	Default drainOutcome
	// NamedOpen is "ok", or "corrupt" when the named consumer's file was
	// damaged: then it was deleted and made anew, and Named is what the
	// new one read.
	NamedOpen string
	Named     drainOutcome
	Check     string // "nil" or "corrupt"
}

// inspectDamaged opens the queue in dir and reads it through, returning an
// error for any breach of the rules whatever the damage: open fails only
// with ErrCorrupt or ErrIncompatibleVersion; each consumer reads messages
// that were enqueued (content checked), with consecutive keys, until
// ErrEmptyQueue or ErrCorrupt, and a Dequeue that met ErrCorrupt meets it
// again (the consumer did not move); Check returns nil or ErrCorrupt; Close
// succeeds.
func inspectDamaged(dir string, p damageParams) (damageOutcome, error) {
	var out damageOutcome
	q, err := NewMmapQueue(dir, SetArenaSize(p.ArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	if err != nil {
		out.OpenErr = err.Error()
		switch {
		case errors.Is(err, ErrCorrupt):
			out.Open = "corrupt"
		case errors.Is(err, ErrIncompatibleVersion):
			out.Open = "version"
		default:
			return out, fmt.Errorf("open: error wraps neither ErrCorrupt nor ErrIncompatibleVersion: %w", err)
		}
		return out, nil
	}
	out.Open = "ok"
	closed := false
	defer func() {
		if !closed {
			_ = q.Close()
		}
	}()
	drain := func(name string, length func() int, deq func() ([]byte, error)) (drainOutcome, error) {
		d := drainOutcome{Len: length(), First: -1}
		for {
			msg, err := deq()
			switch {
			case errors.Is(err, ErrEmptyQueue):
				d.Stop = "empty"
			case errors.Is(err, ErrCorrupt):
				d.Stop = "corrupt"
				if _, err := deq(); !errors.Is(err, ErrCorrupt) {
					return d, fmt.Errorf("%s: Dequeue after ErrCorrupt returned %v, want ErrCorrupt again", name, err)
				}
			case err != nil:
				return d, fmt.Errorf("%s: Dequeue: %w", name, err)
			}
			if err != nil {
				return d, nil
			}
			key, err := checkContractPayload(msg, p.MaxLen)
			if err != nil {
				return d, fmt.Errorf("%s: message %d: %w", name, d.Count, err)
			}
			if key >= uint64(p.N) {
				return d, fmt.Errorf("%s: read key %d, only %d were enqueued", name, key, p.N)
			}
			if d.Count == 0 {
				d.First = int(key)
			} else if key != uint64(d.First+d.Count) {
				return d, fmt.Errorf("%s: read key %d after %d", name, key, d.First+d.Count-1)
			}
			d.Count++
		}
	}
	if out.Default, err = drain("default consumer", q.Len, q.Dequeue); err != nil {
		return out, err
	}
	out.NamedOpen = "ok"
	c, err := q.NewConsumer(p.Named)
	if errors.Is(err, ErrCorrupt) {
		out.NamedOpen = "corrupt"
		if c, err = replaceDamagedConsumer(q, p.Named); err != nil {
			return out, err
		}
	}
	if err != nil {
		return out, fmt.Errorf("NewConsumer: %w", err)
	}
	if out.Named, err = drain("named consumer", c.Len, c.Dequeue); err != nil {
		return out, err
	}
	switch err := q.Check(); {
	case err == nil:
		out.Check = "nil"
	case errors.Is(err, ErrCorrupt):
		out.Check = "corrupt"
	default:
		return out, fmt.Errorf("Check: %w", err)
	}
	closed = true
	if err := q.Close(); err != nil {
		return out, fmt.Errorf("Close: %w", err)
	}
	return out, nil
}

// replaceDamagedConsumer checks the rules for a named consumer whose file
// is damaged (NewConsumer returned ErrCorrupt): Stats lists its file, Check
// reports it, a Flush retires nothing, DeleteConsumer removes the file; and
// returns the consumer made anew under its name.
func replaceDamagedConsumer(q *MmapQueue, name string) (*Consumer, error) {
	file := consumerFileName(name)
	st, err := q.Stats()
	if err != nil {
		return nil, fmt.Errorf("Stats: %w", err)
	}
	if !slices.Equal(st.DamagedConsumers, []string{file}) {
		return nil, fmt.Errorf("Stats lists damaged consumers %q, want [%s]", st.DamagedConsumers, file)
	}
	if err := q.Check(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), file) {
		return nil, fmt.Errorf("Check with %s damaged: %v, want ErrCorrupt naming it", file, err)
	}
	if err := q.Flush(); err != nil {
		return nil, fmt.Errorf("Flush: %w", err)
	}
	if after, err := q.Stats(); err != nil || after.Head != st.Head || after.Arenas != st.Arenas {
		return nil, fmt.Errorf("a Flush with %s damaged moved the head from %d to %d, arenas %d to %d (%v)",
			file, st.Head, after.Head, st.Arenas, after.Arenas, err)
	}
	if err := q.DeleteConsumer(name); err != nil {
		return nil, fmt.Errorf("DeleteConsumer of the damaged consumer: %w", err)
	}
	if _, err := os.Stat(filepath.Join(q.dir, file)); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("DeleteConsumer left %s (stat: %v)", file, err)
	}
	return q.NewConsumer(name)
}

// damageChild inspects the damaged queue in dir and prints the outcome;
// it fails when a rule is broken.
func damageChild(t *testing.T, dir string, arg []byte) {
	var p damageParams
	require.NoError(t, json.Unmarshal(arg, &p))
	out, err := inspectDamaged(dir, p)
	printChildResult(t, out)
	require.NoError(t, err)
}

// expected returns the outcome a queue built as b gives after its arena
// files became those of files (LOCK and meta files as in b), with the
// default consumer at def and the named one at cons: a record is damaged
// when one of its bytes changed or its arena is missing or short. Recovery
// cuts the tail at the first damaged record after the last flush; a
// consumer reads up to the first damaged record or the tail.
func (b *damageBase) expected(files map[string][]byte, def, cons int) damageOutcome {
	return b.expectedUpTo(files, def, cons, b.N)
}

// expectedUpTo is expected when the index's live position says that only
// the first n messages were published.
func (b *damageBase) expectedUpTo(files map[string][]byte, def, cons, n int) damageOutcome {
	damaged := func(i int) bool {
		layout := &stream{size: b.ArenaSize}
		for pos := layout.recordStart(b.Ends[i]); pos < b.Ends[i+1]; {
			id, off := layout.arenaOf(pos)
			end := min(b.Ends[i+1], (id+1)*int64(b.ArenaSize))
			n := int(end - pos)
			name := arenaName(id)
			now, ok := files[name]
			if !ok || len(now) < b.ArenaSize || !bytes.Equal(now[off:off+n], b.Files[name][off:off+n]) {
				return true
			}
			pos = end
		}
		return false
	}
	tail := n
	for i := b.TailFlushed; i < n; i++ {
		if damaged(i) {
			tail = i
			break
		}
	}
	read := func(at int) drainOutcome {
		at = min(at, tail)
		d := drainOutcome{Len: tail - at, First: -1, Stop: "empty"}
		for i := at; i < tail; i++ {
			if damaged(i) {
				d.Stop = "corrupt"
				break
			}
			d.Count++
		}
		if d.Count > 0 {
			d.First = at
		}
		return d
	}
	out := damageOutcome{Open: "ok", Default: read(def), NamedOpen: "ok", Named: read(cons), Check: "nil"}
	for i := b.Head; i < tail; i++ {
		if damaged(i) {
			out.Check = "corrupt"
			break
		}
	}
	return out
}

// damageKind is one way of damaging a file.
type damageKind struct {
	name string
	// apply returns the file's new content, or nil and false to delete it.
	apply func(b []byte, rng *rand.Rand) ([]byte, bool)
}

func damageKinds(flipOffsets []int) []damageKind {
	kinds := []damageKind{
		{"truncate-0", func(b []byte, _ *rand.Rand) ([]byte, bool) { return []byte{}, true }},
		{"truncate-half", func(b []byte, _ *rand.Rand) ([]byte, bool) { return slices.Clone(b[:len(b)/2]), true }},
		{"zero", func(b []byte, _ *rand.Rand) ([]byte, bool) { return make([]byte, len(b)), true }},
		{"zero-last-page", func(b []byte, _ *rand.Rand) ([]byte, bool) {
			b = slices.Clone(b)
			clear(b[max(0, len(b)-4096):])
			return b, true
		}},
		{"scribble", func(b []byte, rng *rand.Rand) ([]byte, bool) {
			b = slices.Clone(b)
			for i := len(b) / 4; i < min(len(b), len(b)/4+200); i++ {
				b[i] = byte(rng.Uint32())
			}
			return b, true
		}},
		{"delete", func(b []byte, _ *rand.Rand) ([]byte, bool) { return nil, false }},
		{"garbage", func(b []byte, rng *rand.Rand) ([]byte, bool) {
			g := make([]byte, max(len(b), 4096))
			for i := range g {
				g[i] = byte(rng.Uint32())
			}
			return g, true
		}},
	}
	for _, off := range flipOffsets {
		kinds = append(kinds, damageKind{fmt.Sprintf("flip-%d", off), func(b []byte, _ *rand.Rand) ([]byte, bool) {
			b = slices.Clone(b)
			if off < len(b) {
				b[off] ^= 0xff
			}
			return b, true
		}})
	}
	return kinds
}

// Offsets in a meta file (see metafile.go): magic, version, the kind's
// fields, live slots 0 and 1, durable slots 0 and 1, the static data, the
// end.
var metaFlipOffsets = []int{0, 9, 16, 66, 98, 130, 194, 300, metaSize - 1}

// TestDamageMatrix damages every file of a queue in every way, in a child
// process each, and checks the rules of inspectDamaged, and the exact
// outcome where the format makes it certain: any damage to LOCK changes
// nothing; any damage to an arena gives what expected computes; a damaged
// index or default consumer file header fails with ErrCorrupt; a damaged live slot
// falls back to the last flushed position; a deleted named consumer starts
// over at the head, as does a damaged one once deleted (the queue opens
// without it); a deleted index beside arena files is ErrCorrupt.
func TestDamageMatrix(t *testing.T) {
	const arenaSize = 8192
	for _, crashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("crashed=%v", crashed), func(t *testing.T) {
			b := buildDamageBase(t, t.TempDir(), arenaSize, 64, crashed)
			var arenas []string
			for name := range b.Files {
				if _, ok := parseArenaName(name); ok {
					arenas = append(arenas, name)
				}
			}
			slices.SortFunc(arenas, func(x, y string) int {
				a, _ := parseArenaName(x)
				b, _ := parseArenaName(y)
				return int(a - b)
			})
			require.GreaterOrEqual(t, len(arenas), 3)
			named := consumerFileName(b.Named)
			targets := []struct{ role, file string }{
				{"index", indexName},
				{"default-consumer", defaultConsumerFile},
				{"named-consumer", named},
				{"first-arena", arenas[0]},
				{"middle-arena", arenas[len(arenas)/2]},
				{"last-arena", arenas[len(arenas)-1]},
				{"lock", lockName},
			}
			undamaged := b.expected(b.Files, b.Def, b.Cons)
			require.Equal(t, "empty", undamaged.Default.Stop)
			for _, target := range targets {
				_, isArena := parseArenaName(target.file)
				offsets := metaFlipOffsets
				if isArena {
					offsets = []int{0, arenaSize / 3, arenaSize / 2, arenaSize - 1}
				}
				for _, kind := range damageKinds(offsets) {
					// LOCK is empty: only deleting it or filling it
					// changes it. A meta file is one page: zeroing its
					// last page is zeroing it.
					switch {
					case target.file == lockName && kind.name != "delete" && kind.name != "garbage",
						target.file != lockName && !isArena && kind.name == "zero-last-page":
						continue
					}
					t.Run(target.role+"/"+kind.name, func(t *testing.T) {
						t.Parallel()
						h := fnv.New64a()
						h.Write([]byte(t.Name()))
						rng := rand.New(rand.NewPCG(h.Sum64(), 0))
						files := make(map[string][]byte, len(b.Files))
						for name, data := range b.Files {
							files[name] = data
						}
						if data, ok := kind.apply(b.Files[target.file], rng); ok {
							files[target.file] = data
						} else {
							delete(files, target.file)
						}
						dir := t.TempDir()
						writeQueueDir(t, dir, files)

						cmd := childCommand(t, "damage", dir, b.damageParams)
						out, err := cmd.CombinedOutput()
						requireChildOK(t, err, out)
						var got damageOutcome
						require.NoError(t, childResult(out, &got), "%s", out)

						t.Logf("%+v", got)
						// The outcomes the format makes certain; none when
						// it leaves the choice to the rules.
						corrupt := damageOutcome{Open: "corrupt"}
						headerDamage := []damageOutcome{corrupt}
						if kind.name == "flip-9" { // the version: its own sentinel, or the header checksum
							headerDamage = append(headerDamage, damageOutcome{Open: "version"})
						}
						var wants []damageOutcome
						switch target.role {
						case "lock":
							wants = []damageOutcome{undamaged}
						case "first-arena", "middle-arena", "last-arena":
							wants = []damageOutcome{b.expected(files, b.Def, b.Cons)}
						case "index":
							switch kind.name {
							case "flip-66", "flip-98":
								// A live slot fails: if it was the newest, the
								// other gives the tail of one enqueue before.
								wants = []damageOutcome{undamaged, b.expectedUpTo(b.Files, b.Def, b.Cons, b.N-1)}
								if b.N-1 < b.TailFlushed {
									wants = wants[:1]
								}
							case "flip-130", "flip-194":
								// An older durable slot may be used.
							default:
								wants = headerDamage
							}
						case "default-consumer", "named-consumer":
							isNamed := target.role == "named-consumer"
							switch kind.name {
							case "flip-66", "flip-98":
								// A live slot fails: if it was the newest, the
								// other gives the position of one dequeue
								// before, unless that is before the last flush.
								def, cons := max(b.Def-1, b.DefFlushed), b.Cons
								if isNamed {
									def, cons = b.Def, max(b.Cons-1, b.ConsFlushed)
								}
								wants = []damageOutcome{undamaged, b.expected(b.Files, def, cons)}
							case "flip-130", "flip-194":
								wants = []damageOutcome{undamaged} // the live slots still hold
							case "delete":
								if isNamed {
									// A new consumer, at the head.
									wants = []damageOutcome{b.expected(b.Files, b.Def, b.Head)}
								} else {
									wants = []damageOutcome{corrupt}
								}
							default:
								wants = headerDamage
								if isNamed {
									// Set aside, a version too (the index
									// says the queue's): the queue opens, the name
									// answers ErrCorrupt until deleted (a
									// Flush meanwhile retires nothing, see
									// replaceDamagedConsumer); deleting it
									// retires what the default consumer
									// read, all of it, so the name starts
									// over with nothing to read.
									set := b.expected(b.Files, b.Def, b.N)
									set.NamedOpen = "corrupt"
									wants = []damageOutcome{set}
								}
							}
						}
						if wants != nil {
							got.OpenErr = ""
							require.Contains(t, wants, got, "child output:\n%s", out)
						}
					})
				}
			}
		})
	}
}

// TestDamageMissingIndex removes the index of a queue with arena files
// and named consumers left: ErrCorrupt, and nothing is rewritten (the
// directory is not turned into a new, empty queue).
func TestDamageMissingIndex(t *testing.T) {
	dir := t.TempDir()
	b := buildDamageBase(t, dir, 8192, 40, false)
	require.NoError(t, os.Remove(filepath.Join(dir, indexName)))
	_, err := NewMmapQueue(dir, SetArenaSize(b.ArenaSize))
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = os.Stat(filepath.Join(dir, indexName))
	require.ErrorIs(t, err, os.ErrNotExist, "a failed open created an index")
	for name, data := range b.Files {
		if name == indexName {
			continue
		}
		now, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, data, now, "%s changed by a failed open", name)
	}
}

// TestDamagePayloadFlip flips one payload byte of a message in a middle
// arena, in this process: both consumers read every message before it
// intact, then get ErrCorrupt at it, and again on retry; Check names the
// damage; the queue still takes and keeps new messages.
func TestDamagePayloadFlip(t *testing.T) {
	dir := t.TempDir()
	b := buildDamageBase(t, dir, 8192, 64, false)
	// A message after both consumers, whose payload lies in one arena.
	layout := &stream{size: b.ArenaSize}
	victim := -1
	for i := max(b.Def, b.Cons) + 3; i < b.N; i++ {
		start := layout.recordStart(b.Ends[i]) + headerSize
		if a, _ := layout.arenaOf(start); b.Ends[i+1]-start > 20 && a == (b.Ends[i+1]-1)/int64(b.ArenaSize) {
			victim = i
			break
		}
	}
	require.GreaterOrEqual(t, victim, 0)
	pos := layout.recordStart(b.Ends[victim]) + headerSize + 10
	id, off := layout.arenaOf(pos)
	path := filepath.Join(dir, arenaName(id))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[off] ^= 0x01
	require.NoError(t, os.WriteFile(path, data, 0o644))

	q, err := NewMmapQueue(dir, SetArenaSize(b.ArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.NoError(t, err, "damage before the flushed tail is not checked at open")
	c, err := q.NewConsumer(b.Named)
	require.NoError(t, err)
	for _, r := range []struct {
		at  int
		deq func() ([]byte, error)
	}{{b.Def, q.Dequeue}, {b.Cons, c.Dequeue}} {
		for i := r.at; i < victim; i++ {
			msg, err := r.deq()
			require.NoError(t, err)
			key, err := checkContractPayload(msg, b.MaxLen)
			require.NoError(t, err)
			require.Equal(t, uint64(i), key)
		}
		for range 2 {
			msg, err := r.deq()
			require.ErrorIs(t, err, ErrCorrupt)
			require.Nil(t, msg, "no bytes with ErrCorrupt")
		}
	}
	_, err = q.Peek()
	require.ErrorIs(t, err, ErrCorrupt)
	buf := make([]byte, 4, 1<<20)
	copy(buf, "keep")
	out, err := q.DequeueAppend(buf)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Equal(t, "keep", string(out), "DequeueAppend returns dst as it was")
	err = q.Check()
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), arenaName(id))
	require.Equal(t, b.N-victim, q.Len())
	require.NoError(t, q.EnqueueString("after the damage"))
	require.NoError(t, q.Close())

	q, err = NewMmapQueue(dir, SetArenaSize(b.ArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.NoError(t, err)
	require.Equal(t, b.N-victim+1, q.Len())
	_, err = q.Dequeue()
	require.ErrorIs(t, err, ErrCorrupt)
	require.NoError(t, q.Close())
}

// TestDamageNewestDurableSlot flips a byte of the index's newest durable
// state after a flush that deleted arenas. The older state points into the
// deleted arenas: opening must refuse with ErrCorrupt, not open an empty
// queue and move every consumer back (which the next flush would make
// permanent). A torn newest state whose older one still has its arenas
// opens, as after a power loss during a Flush.
func TestDamageNewestDurableSlot(t *testing.T) {
	build := func(t *testing.T, consume bool) string {
		dir := t.TempDir()
		q := filledQueue(t, dir, 200, 100)
		require.NoError(t, q.Flush())
		if consume {
			for range 150 {
				_, err := q.Dequeue()
				require.NoError(t, err)
			}
		}
		require.NoError(t, q.Close())
		return dir
	}
	flipNewest := func(t *testing.T, dir string) {
		path := filepath.Join(dir, indexName)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		m := metaFile{data: b}
		g0, _, _ := m.slot(0)
		g1, _, _ := m.slot(1)
		newest := 0
		if g1 > g0 {
			newest = 1
		}
		b[metaSlot0Offset+newest*metaSlotSize+9] ^= 0x40
		require.NoError(t, os.WriteFile(path, b, 0o644))
	}

	t.Run("older state's arenas deleted", func(t *testing.T) {
		dir := build(t, true)
		flipNewest(t, dir)
		_, err := NewMmapQueue(dir, SetArenaSize(testArenaSize))
		require.ErrorIs(t, err, ErrCorrupt)
	})
	t.Run("older state's arenas present", func(t *testing.T) {
		dir := build(t, false)
		flipNewest(t, dir)
		q := smallQueue(t, dir)
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, 0, 100)
	})
}

// TestDamageArenaIsADirectory: a directory where an arena file belongs is
// damage like a missing arena (it was a bare EISDIR, not ErrCorrupt): the
// writer and a reader open; reading stops at its first message with
// ErrCorrupt, and again on retry; Check reports it.
func TestDamageArenaIsADirectory(t *testing.T) {
	dir := t.TempDir()
	q := smallQueue(t, dir)
	_, err := q.NewConsumer("r") // keeps the arenas the writer reads past
	require.NoError(t, err)
	for i := range uint64(30) {
		require.NoError(t, q.Enqueue(seqMessage(i, 700)))
	}
	require.NoError(t, q.Close())
	ids := arenaFileIDs(t, dir)
	require.Greater(t, len(ids), 3)
	path := filepath.Join(dir, arenaName(ids[2]))
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o755))

	read := func(deq func() ([]byte, error)) {
		t.Helper()
		n := uint64(0)
		var err error
		for ; ; n++ {
			var msg []byte
			if msg, err = deq(); err != nil {
				break
			}
			requireSeqMessage(t, msg, n, 700)
		}
		require.ErrorIs(t, err, ErrCorrupt)
		require.ErrorContains(t, err, path)
		require.Positive(t, n, "the messages before the directory are read")
		_, err = deq()
		require.ErrorIs(t, err, ErrCorrupt, "the consumer did not move")
	}
	q = smallQueue(t, dir)
	read(q.Dequeue)
	require.ErrorIs(t, q.Check(), ErrCorrupt)
	require.NoError(t, q.Close())

	r, err := OpenReader(dir, SetArenaSize(testArenaSize))
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	c, err := r.NewConsumer("r")
	require.NoError(t, err)
	read(c.Dequeue)
	require.ErrorIs(t, r.Check(), ErrCorrupt)
}
