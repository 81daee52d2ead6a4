package bigqueue

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestWindowKeepsAtime: a window opens arenas with O_NOATIME, so reading an
// unmapped arena of a capped queue leaves the file's access time as it was,
// where a plain read on the same file system updates it (checked first on a
// file of the test's own: a file system mounted noatime cannot tell).
func TestWindowKeepsAtime(t *testing.T) {
	dir := t.TempDir()
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	atime := func(path string) time.Time {
		t.Helper()
		var st unix.Stat_t
		require.NoError(t, unix.Stat(path, &st))
		return time.Unix(st.Atim.Unix()).UTC()
	}

	control := filepath.Join(dir, "control")
	require.NoError(t, os.WriteFile(control, []byte("x"), 0o644))
	require.NoError(t, os.Chtimes(control, old, time.Now()))
	_, err := os.ReadFile(control)
	require.NoError(t, err)
	if atime(control).Equal(old) {
		t.Skip("this file system does not update access times on read")
	}

	q := smallQueue(t, dir, SetMaxInMemArenas(3))
	for i := range uint64(100) {
		require.NoError(t, q.Enqueue(seqMessage(i, 200)))
	}
	require.True(t, q.s.am.mapping(0) == nil, "arena 0 unmapped under the cap")
	path := q.s.am.path(0)
	require.NoError(t, os.Chtimes(path, old, time.Now()))
	m, err := q.Dequeue()
	require.NoError(t, err)
	requireSeqMessage(t, m, 0, 200)
	require.True(t, q.def.win.open, "read through the window")
	require.Equal(t, old, atime(path), "the window's read left the access time alone")
}
