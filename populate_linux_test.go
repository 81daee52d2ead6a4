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
