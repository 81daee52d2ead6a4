package bigqueue

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// formatV1Message is the i-th message of testdata/format-v1.
func formatV1Message(i int) string {
	return fmt.Sprintf("message %02d %s", i, string(make([]byte, i*3)))
}

// TestOpensFormatV1: testdata/format-v1 was written by this package before
// its redesign into a stream type (commit e6ec541), with 4 KiB arenas: 60
// messages, the default consumer after 25 of them, consumer "audit/ü"
// after 40, closed cleanly. The on-disk format is unchanged: it opens,
// verifies and reads back, and goes on being written.
func TestOpensFormatV1(t *testing.T) {
	dir := t.TempDir()
	entries, err := os.ReadDir("testdata/format-v1")
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata/format-v1", e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	q := smallQueue(t, dir)
	require.NoError(t, q.Check())
	require.Equal(t, []string{"audit/ü"}, q.Consumers())
	require.Equal(t, 35, q.Len())
	audit, err := q.NewConsumer("audit/ü")
	require.NoError(t, err)
	require.Equal(t, 20, audit.Len())

	require.NoError(t, q.EnqueueString(formatV1Message(60)))
	for i := 25; i <= 60; i++ {
		msg, err := q.DequeueString()
		require.NoError(t, err)
		require.Equal(t, formatV1Message(i), msg)
	}
	require.NoError(t, q.Close())

	q = smallQueue(t, dir)
	audit, err = q.NewConsumer("audit/ü")
	require.NoError(t, err)
	for i := 40; i <= 60; i++ {
		msg, err := audit.DequeueString()
		require.NoError(t, err)
		require.Equal(t, formatV1Message(i), msg)
	}
	require.True(t, q.IsEmpty())
	require.NoError(t, q.Check())
}

// TestRecordCRC: the checksum a record is written with is CRC-32C over the
// position, flags, length and message, laid out as record.go draws it,
// whether recordCRC takes it in one call (small messages) or two.
func TestRecordCRC(t *testing.T) {
	var scratch [crcPrefixSize + crcJoinMax]byte
	for _, n := range []int{0, 1, 17, crcJoinMax - 1, crcJoinMax, crcJoinMax + 1, 4096} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i*31 + n)
		}
		pos, flags := int64(n)*1_000_003+7, uint16(n%2)
		want := make([]byte, 0, crcPrefixSize+n)
		want = binary.LittleEndian.AppendUint64(want, uint64(pos))
		want = binary.LittleEndian.AppendUint16(want, flags)
		want = binary.LittleEndian.AppendUint64(want, uint64(n))
		want = append(want, msg...)
		require.Equal(t, crc32.Checksum(want, castagnoli), recordCRC(&scratch, pos, flags, msg), "message of %d bytes", n)
	}
}
