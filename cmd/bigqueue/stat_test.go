package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statJSONOf runs "stat -json" on dir and decodes its output.
func statJSONOf(t *testing.T, dir string) statJSON {
	t.Helper()
	r := mustRun(t, "", "stat", "-json", dir)
	var st statJSON
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&st), r.stdout)
	return st
}

// consumerQueue makes a queue of 10 messages that the default consumer
// has read 1 of, "reader" 4 and "zeta" none.
func consumerQueue(t *testing.T) string {
	t.Helper()
	dir := newQueue(t, numbered(10)...)
	mustRun(t, "", "dequeue", "-n", "1", dir)
	mustRun(t, "", "dequeue", "-consumer", "reader", "-n", "4", dir)
	mustRun(t, "", "dequeue", "-consumer", "zeta", "-peek", dir)
	return dir
}

func TestStatJSON(t *testing.T) {
	dir := consumerQueue(t)
	st := statJSONOf(t, dir)

	assert.Equal(t, dir, st.Dir)
	assert.Equal(t, smallArena, st.ArenaSize)
	assert.GreaterOrEqual(t, st.Arenas, 1)
	assert.GreaterOrEqual(t, st.DiskBytes, int64(smallArena), "at least one arena on disk")
	assert.Equal(t, 10, st.Messages)
	assert.Greater(t, st.Tail, st.Head)

	require.Len(t, st.Consumers, 3)
	def, reader, zeta := st.Consumers[0], st.Consumers[1], st.Consumers[2]
	assert.Equal(t, consumerJSON{Name: "", Default: true, Position: def.Position, Backlog: 9}, def)
	assert.Equal(t, consumerJSON{Name: "reader", Position: reader.Position, Backlog: 6}, reader)
	assert.Equal(t, consumerJSON{Name: "zeta", Position: st.Head, Backlog: 10}, zeta)
	assert.Greater(t, def.Position, st.Head)
	assert.Greater(t, reader.Position, def.Position)
	assert.Less(t, reader.Position, st.Tail)

	// Reading everything leaves no backlog; the position reaches the tail.
	mustRun(t, "", "dequeue", "-consumer", "reader", dir)
	st = statJSONOf(t, dir)
	assert.Equal(t, consumerJSON{Name: "reader", Position: st.Tail, Backlog: 0}, st.Consumers[1])
}

func TestStatText(t *testing.T) {
	dir := consumerQueue(t)
	st := statJSONOf(t, dir)
	out := mustRun(t, "", "stat", dir).stdout

	for _, want := range []string{
		`(?m)^queue       ` + regexp.QuoteMeta(dir) + `$`,
		`(?m)^arena size  16\.0 KiB \(16384 bytes\)$`,
		`(?m)^messages    10$`,
		`(?m)^head        \d+$`,
		`(?m)^tail        \d+$`,
		`(?m)^on disk     .*\(\d+ bytes\)$`,
	} {
		assert.Regexp(t, want, out)
	}

	// The consumer table: a header, then one row per consumer, default first.
	table := out[strings.Index(out, "CONSUMER"):]
	rows := strings.Split(strings.TrimSpace(table), "\n")
	require.Len(t, rows, 4, table)
	assert.Equal(t, []string{"CONSUMER", "POSITION", "BACKLOG"}, strings.Fields(rows[0]))
	for i, want := range [][]string{{"(default)", "9"}, {"reader", "6"}, {"zeta", "10"}} {
		fields := strings.Fields(rows[i+1])
		require.Len(t, fields, 3, rows[i+1])
		assert.Equal(t, want[0], fields[0])
		assert.Equal(t, want[1], fields[2])
		assert.Equal(t, st.Consumers[i].Position, mustAtoi64(t, fields[1]))
	}
	// Numbers are right-aligned: every row has the same width.
	for _, row := range rows[1:] {
		assert.Equal(t, len(rows[0]), len(row), "row %q", row)
	}
}

func mustAtoi64(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

func TestConsumerLabel(t *testing.T) {
	tests := map[string]string{
		"":          "(default)",
		"reader":    "reader",
		"a/b":       "a/b",
		"ünïcode":   "ünïcode",
		"two words": `"two words"`,
		"tab\there": `"tab\there"`,
		"(default)": `"(default)"`,
		`q"uote`:    `"q\"uote"`,
	}
	for name, want := range tests {
		assert.Equal(t, want, consumerLabel(name), "name %q", name)
	}
}

func TestHumanUnits(t *testing.T) {
	assert.Equal(t, "512 B", humanBytes(512))
	assert.Equal(t, "1.0 KiB", humanBytes(1024))
	assert.Equal(t, "64.0 MiB", humanBytes(64<<20))
	assert.Equal(t, "1.5 GiB", humanBytes(3<<29))
	assert.Equal(t, "100 bytes", sizeWithBytes(100))
	assert.Equal(t, "16.0 KiB (16384 bytes)", sizeWithBytes(16384))

	assert.Equal(t, "0 arenas", count(0, "arena"))
	assert.Equal(t, "1 arena", count(1, "arena"))
	assert.Equal(t, "2 named consumers", count(2, "named consumer"))

	assert.Equal(t, "812ns", humanDuration(812))
	assert.Equal(t, "1.25µs", humanDuration(1250))
	assert.Equal(t, "34.0ms", humanDuration(34_000_000))
	assert.Equal(t, "250ms", humanDuration(250_000_000))
	assert.Equal(t, "2.00s", humanDuration(2_000_000_000))
}
