package bigqueue

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
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

// TestPopulateAhead: once the writer has ramped up to the full stride, a
// small Enqueue has the pages of the next stretch past it faulted in by the
// populator, not by the writer; nothing far past the stretch is.
func TestPopulateAhead(t *testing.T) {
	q := openQueue(t, t.TempDir(), SetArenaSize(8<<20), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	for q.s.am.stride < populateAhead {
		require.NoError(t, q.Enqueue(make([]byte, 16<<10)))
	}
	require.NoError(t, q.Enqueue(make([]byte, 128)))
	q.mu.Lock()
	p, a, w := q.s.am.pop, q.s.am.mapping(0), int(q.tail.pos)
	q.mu.Unlock()
	if populateOff.Load() {
		t.Skip("this kernel cannot populate a mapping (MADV_POPULATE_WRITE, Linux 5.14)")
	}
	require.NotNil(t, p, "the populator started")
	require.NotNil(t, a)
	waitPopulated(p)

	q.mu.Lock()
	defer q.mu.Unlock()
	in := present(t, a.data)
	const page = pageMask + 1
	for i := w/page + 1; i < (w+populateAhead/2)/page; i++ {
		require.True(t, in[i], "page %d, within %d bytes past the writer at %d, is faulted in", i, populateAhead/2, w)
	}
	for i := (w+2*populateAhead)/page + 1; i < len(in); i++ {
		require.False(t, in[i], "page %d, far ahead of the writer at %d, is not", i, w)
	}
}

// TestStrideRamp: a queue just opened allocates and populates firstStride
// ahead of its writer, and doubles the stride only as the writer uses it:
// a few messages take 64 KiB of disk; a writer that goes on reaches the
// full stride within its first MiB.
func TestStrideRamp(t *testing.T) {
	if allocChunk >= DefaultArenaSize {
		t.Skip("this platform allocates whole arenas (F_PREALLOCATE takes no range)")
	}
	dir := t.TempDir()
	q := openQueue(t, dir, SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0))
	for i := range uint64(100) {
		require.NoError(t, q.Enqueue(seqMessage(i, 128)))
	}
	require.Equal(t, firstStride, q.s.am.stride, "100 small messages")
	a := q.s.am.mapping(0)
	require.Equal(t, firstStride, a.allocated)
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(dir, arenaName(0)), &st))
	require.LessOrEqual(t, st.Blocks*512, int64(firstStride), "blocks of the arena file")
	for q.tail.pos < 1<<20 {
		require.NoError(t, q.Enqueue(make([]byte, 4<<10)))
	}
	require.Equal(t, populateAhead, q.s.am.stride, "after 1 MiB")
	require.Zero(t, a.allocated%allocChunk, "allocated in whole chunks at full stride")
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
