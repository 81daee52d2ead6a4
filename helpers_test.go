package bigqueue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// testArenaSize is the smallest arena size, so tests cross arenas often.
const testArenaSize = 4096

// openQueue opens a queue in dir for a test and closes it at cleanup,
// unless the test closed it already.
func openQueue(t testing.TB, dir string, opts ...Option) *MmapQueue {
	t.Helper()
	q, err := NewMmapQueue(dir, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// smallQueue opens a queue with 4 KiB arenas and no background flush.
func smallQueue(t testing.TB, dir string, opts ...Option) *MmapQueue {
	t.Helper()
	base := []Option{SetArenaSize(testArenaSize), SetPeriodicFlushOps(0), SetPeriodicFlushDuration(0)}
	return openQueue(t, dir, append(base, opts...)...)
}

// filledQueue is smallQueue holding n messages of size bytes (seqMessage
// 0 to n-1).
func filledQueue(t testing.TB, dir string, n, size int, opts ...Option) *MmapQueue {
	t.Helper()
	q := smallQueue(t, dir, opts...)
	for i := range uint64(n) {
		require.NoError(t, q.Enqueue(seqMessage(i, size)))
	}
	return q
}

// seqMessage returns a message of size bytes (at least 8 are used when
// size allows) that carries seq, so that a test sees reordering, loss and
// invention: the sequence number first, then bytes derived from it.
func seqMessage(seq uint64, size int) []byte {
	b := make([]byte, size)
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], seq)
	n := copy(b, hdr[:])
	for i := n; i < size; i++ {
		b[i] = byte(seq*31 + uint64(i)*7)
	}
	return b
}

// messageSize is the size of the seq-th message in tests that vary sizes.
func messageSize(seq uint64) int {
	return int(seq*37%300) + 8
}

// requireSeqMessage checks that msg is seqMessage(seq, size).
func requireSeqMessage(t testing.TB, msg []byte, seq uint64, size int) {
	t.Helper()
	want := seqMessage(seq, size)
	if string(msg) != string(want) {
		got := "short"
		if len(msg) >= 8 {
			got = fmt.Sprint(binary.LittleEndian.Uint64(msg))
		}
		t.Fatalf("message %d: got %d bytes (seq %s), want %d bytes", seq, len(msg), got, len(want))
	}
}

// splitmix64 is a tiny deterministic mixer: payloads are a pure function of
// their key, so a reader can tell a message that was enqueued from one that
// was not, without a shared list.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// contractPayload returns the message for key: the key in the first 8 bytes,
// then bytes derived from it. Its length, also derived from the key, is
// mostly small, sometimes the bare key and sometimes up to maxLen, so that
// messages span arenas when maxLen is larger than one.
func contractPayload(key uint64, maxLen int) []byte {
	h := splitmix64(key)
	var n int
	switch h % 16 {
	case 0:
		n = maxLen/2 + int((h>>8)%uint64(maxLen/2+1))
	case 1:
		n = 8
	default:
		n = 8 + int((h>>8)%300)
	}
	n = max(n, 8)
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, key)
	x := h
	for i := 8; i < n; i += 8 {
		x = splitmix64(x)
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], x)
		copy(b[i:], w[:])
	}
	return b
}

// checkContractPayload returns the key of msg, or an error when msg is not
// exactly contractPayload(key, maxLen): such a message was never enqueued.
func checkContractPayload(msg []byte, maxLen int) (uint64, error) {
	if len(msg) < 8 {
		return 0, fmt.Errorf("message of %d bytes carries no key", len(msg))
	}
	key := binary.LittleEndian.Uint64(msg)
	if want := contractPayload(key, maxLen); !bytes.Equal(msg, want) {
		return key, fmt.Errorf("message with key %#x: %d bytes differ from the %d enqueued", key, len(msg), len(want))
	}
	return key, nil
}

// readQueueDir returns the content of every regular file in dir.
func readQueueDir(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = b
	}
	return files
}

// writeQueueDir writes files into dir, which exists.
func writeQueueDir(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
}

// arenaFileIDs returns the ids of the arena files in dir, sorted.
func arenaFileIDs(t testing.TB, dir string) []int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var ids []int64
	for _, e := range entries {
		if id, ok := parseArenaName(e.Name()); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// testQDir opens dir as a queue directory, closed at cleanup.
func testQDir(t *testing.T, dir string) qdir {
	t.Helper()
	d, err := openQDir(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.close() })
	return d
}
