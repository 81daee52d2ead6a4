package bigqueue

import (
	"encoding/binary"
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// present reports, page by page, whether b (page-aligned) is mapped in
// this process's page tables, from /proc/self/pagemap (bit 63 of each
// page's entry). The page cache is no witness: with large folios one write
// fault can bring megabytes of a file into it, mapping one page.
func present(t *testing.T, b []byte) []bool {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	const page = pageMask + 1
	buf := make([]byte, 8*((len(b)+pageMask)/page))
	_, err = f.ReadAt(buf, int64(uintptr(unsafe.Pointer(&b[0]))/page*8))
	require.NoError(t, err)
	out := make([]bool, len(buf)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(buf[8*i:])>>63 != 0
	}
	return out
}

// TestPopulateAhead: one small Enqueue into a fresh arena has the pages of
// the next stretch faulted in by the populator, not by the writer, which
// touched only the first page; nothing past the stretch is.
func TestPopulateAhead(t *testing.T) {
	q := openQueue(t, t.TempDir(), SetArenaSize(8<<20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	require.NoError(t, q.Enqueue(make([]byte, 128)))
	q.mu.Lock()
	p, a := q.s.am.pop, q.s.am.mapping(0)
	q.mu.Unlock()
	if populateOff.Load() {
		t.Skip("this kernel cannot populate a mapping (MADV_POPULATE_WRITE, Linux 5.14)")
	}
	require.NotNil(t, p, "the populator started")
	require.NotNil(t, a)
	waitPopulated(p)

	q.mu.Lock()
	defer q.mu.Unlock()
	in := present(t, a.data[:4<<20])
	stretch := populateAhead / (pageMask + 1)
	for i := 1; i < stretch; i++ {
		require.True(t, in[i], "page %d, within %d bytes of the writer, is faulted in", i, populateAhead)
	}
	for i := 2 * stretch; i < len(in); i++ {
		require.False(t, in[i], "page %d, far ahead of the writer, is not", i)
	}
}

// TestUnmapAhead: under a cap of 3 mapped arenas, as the writer starts a
// new arena, the arena it will unmap when it starts the next one has its
// page tables cleared by the populator (none of its pages is mapped any
// more, though the arena still is), and reads back whole afterwards.
func TestUnmapAhead(t *testing.T) {
	const arenaSize, size = 1 << 20, 1000
	q := openQueue(t, t.TempDir(), SetArenaSize(arenaSize), SetMaxInMemArenas(3),
		SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	// Into arena 3: arena 0 is unmapped, 1, 2 and 3 are mapped, 1 is next.
	n := 3*arenaSize/(size+headerSize) + 10
	for i := range n {
		require.NoError(t, q.Enqueue(seqMessage(uint64(i), size)))
	}
	q.mu.Lock()
	p, next := q.s.am.pop, q.s.am.back
	require.Equal(t, 3, len(q.s.am.mapped))
	q.mu.Unlock()
	require.NotNil(t, p, "the populator started")
	require.Equal(t, int64(1), next.id, "arena 1 is the next to be unmapped")
	waitPopulated(p)

	q.mu.Lock()
	in := present(t, next.data)
	q.mu.Unlock()
	for i, mapped := range in {
		require.False(t, mapped, "page %d of arena 1 is still mapped", i)
	}
	for i := range n {
		m, err := q.Dequeue()
		require.NoError(t, err)
		requireSeqMessage(t, m, uint64(i), size)
	}
}
