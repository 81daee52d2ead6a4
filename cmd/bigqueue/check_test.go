package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckIntact(t *testing.T) {
	dir := consumerQueue(t)
	r := mustRun(t, "", "check", dir)
	assert.Regexp(t, `^ok: `+regexp.QuoteMeta(dir)+`: 10 messages, \d+ bytes from head \d+ to tail \d+, in \d+ arenas?; 2 named consumers\n$`, r.stdout)
	assert.Empty(t, r.stderr)
}

func TestCheckDamagedArena(t *testing.T) {
	// Messages of 100 bytes spread over several 16 KiB arenas.
	msgs := make([]string, 500)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("%06d%s", i, strings.Repeat("x", 94))
	}
	dir := newQueue(t, msgs...)
	mustRun(t, "", "check", dir)

	// Flip bytes in the first arena, which holds the head: past the first
	// record's header, inside the first page.
	arena := headArena(t, dir)
	data, err := os.ReadFile(arena)
	require.NoError(t, err)
	require.Greater(t, len(data), 4096)
	for i := 16; i < 4096; i += 97 {
		data[i] ^= 0xff
	}
	require.NoError(t, os.WriteFile(arena, data, 0o644))

	r := runTool(t, "", "check", dir)
	assertOneLineError(t, r, exitFail, "damaged")
	assert.Contains(t, r.stderr, "corrupt")
	assert.Contains(t, r.stderr, filepath.Base(arena), "the error names the damaged file")
	assert.Equal(t, 1, strings.Count(r.stderr, "bigqueue: "), "the prefix is not repeated: %q", r.stderr)
}

func TestCheckDamagedIndex(t *testing.T) {
	dir := newQueue(t, "a", "b")
	index := filepath.Join(dir, "index.dat")
	data, err := os.ReadFile(index)
	require.NoError(t, err)
	for i := range min(len(data), 64) {
		data[i] ^= 0x5a
	}
	require.NoError(t, os.WriteFile(index, data, 0o644))

	for _, cmd := range []string{"check", "stat", "dequeue"} {
		r := runTool(t, "", cmd, dir)
		assertOneLineError(t, r, exitFail, "queue "+dir+" is damaged")
		assert.Contains(t, r.stderr, "corrupt")
	}
}

// headArena returns the path of the arena file with the lowest id in dir:
// the one that holds the queue's head.
func headArena(t *testing.T, dir string) string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "arena-*.dat"))
	require.NoError(t, err)
	require.NotEmpty(t, paths, "no arena files in %s", dir)
	idOf := func(path string) uint64 {
		digits := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "arena-"), ".dat")
		id, err := strconv.ParseUint(digits, 10, 64)
		require.NoError(t, err, path)
		return id
	}
	head := paths[0]
	for _, p := range paths[1:] {
		if idOf(p) < idOf(head) {
			head = p
		}
	}
	return head
}
