package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// consumersJSONOf runs "consumers -json" on dir and decodes its output.
func consumersJSONOf(t *testing.T, dir string) consumersJSON {
	t.Helper()
	r := mustRun(t, "", "consumers", "-json", dir)
	var list consumersJSON
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&list), r.stdout)
	return list
}

func TestConsumersList(t *testing.T) {
	dir := consumerQueue(t) // 10 messages; default read 1, "reader" 4, "zeta" none
	mustRun(t, "", "dequeue", "-consumer", "two words", "-n", "10", dir)

	list := consumersJSONOf(t, dir)
	assert.Equal(t, consumersJSON{Dir: dir, Oldest: 0, Next: 10, Consumers: []namedConsumerJSON{
		{Name: "reader", Offset: 4, Backlog: 6},
		{Name: "two words", Offset: 10, Backlog: 0},
		{Name: "zeta", Offset: 0, Backlog: 10},
	}, Damaged: []string{}}, list)

	out := mustRun(t, "", "consumers", dir).stdout
	assert.Equal(t, ""+
		"CONSUMER     OFFSET  BACKLOG\n"+
		"reader            4        6\n"+
		`"two words"      10        0`+"\n"+
		"zeta              0       10\n", out)

	// More messages grow every backlog.
	mustRun(t, "x\ny\n", "enqueue", dir)
	list = consumersJSONOf(t, dir)
	assert.Equal(t, uint64(12), list.Next)
	assert.Equal(t, uint64(8), list.Consumers[0].Backlog)
}

func TestConsumersNone(t *testing.T) {
	dir := newQueue(t, "a")
	r := mustRun(t, "", "consumers", dir)
	assert.Empty(t, r.stdout, "no named consumers: nothing to list")
	assert.Empty(t, r.stderr)
	list := consumersJSONOf(t, dir)
	assert.Equal(t, consumersJSON{Dir: dir, Oldest: 0, Next: 1, Consumers: []namedConsumerJSON{}, Damaged: []string{}}, list)
	assert.Contains(t, mustRun(t, "", "consumers", "-json", dir).stdout, `"consumers": []`)
}

func TestConsumersDelete(t *testing.T) {
	dir := consumerQueue(t)
	r := mustRun(t, "", "consumers", "-delete", "reader", dir)
	assert.Empty(t, r.stdout)
	assert.Empty(t, r.stderr)
	list := consumersJSONOf(t, dir)
	require.Len(t, list.Consumers, 1)
	assert.Equal(t, "zeta", list.Consumers[0].Name)

	// Flags may come after DIR, as everywhere.
	mustRun(t, "", "consumers", dir, "-delete", "zeta")
	assert.Empty(t, consumersJSONOf(t, dir).Consumers)

	r = runTool(t, "", "consumers", "-delete", "reader", dir)
	assertOneLineError(t, r, exitFail, `delete consumer "reader": no consumer of that name in `+dir)

	// The default consumer is not a named one.
	r = runTool(t, "", "consumers", "-delete", "(default)", dir)
	assertOneLineError(t, r, exitFail, "no consumer of that name")

	// A deleted consumer starts again from the oldest message kept.
	oldest := consumersJSONOf(t, dir).Oldest
	assert.Equal(t, lines(numbered(10)[oldest:]...), mustRun(t, "", "dequeue", "-consumer", "reader", dir).stdout)
}

func TestConsumersErrors(t *testing.T) {
	dir := newQueue(t, "a")
	r := runTool(t, "", "consumers", "-delete", "", dir)
	assertOneLineError(t, r, exitUsage, "-delete needs the NAME")
	r = runTool(t, "", "consumers", "-delete", "x", "-json", dir)
	assertOneLineError(t, r, exitUsage, "does not go with -delete")
	r = runTool(t, "", "consumers", t.TempDir())
	assertOneLineError(t, r, exitFail, "no queue in")
}

// TestConsumersDamaged: a named consumer whose file is damaged does not
// take the queue with it: stat and consumers list its file, check fails
// naming it, and consumers -delete removes it.
func TestConsumersDamaged(t *testing.T) {
	dir := consumerQueue(t) // 10 messages; default read 1, "reader" 4, "zeta" none
	sum := sha256.Sum256([]byte("zeta"))
	file := "consumer-" + hex.EncodeToString(sum[:16]) + ".dat"
	require.FileExists(t, filepath.Join(dir, file), "the test's idea of a consumer's file name")
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), make([]byte, 4096), 0o644))

	assert.Contains(t, mustRun(t, "", "stat", dir).stdout, "damaged     consumer file "+file+" (no arena is deleted until it is)\n")
	assert.Equal(t, []string{file}, statJSONOf(t, dir).Damaged)
	assert.Equal(t, ""+
		"CONSUMER  OFFSET  BACKLOG\n"+
		"reader         4        6\n"+
		"damaged: "+file+"\n", mustRun(t, "", "consumers", dir).stdout)
	list := consumersJSONOf(t, dir)
	assert.Equal(t, []string{file}, list.Damaged)
	assert.Len(t, list.Consumers, 1)

	r := runTool(t, "", "check", dir)
	assertOneLineError(t, r, exitFail, file)
	for _, args := range [][]string{
		{"dequeue", "-consumer", "zeta", dir},
		{"forward", "-consumer", "zeta", "-to", "nats://127.0.0.1:1/s", dir},
	} {
		r = runTool(t, "", args...)
		assertOneLineError(t, r, exitFail, `bigqueue: consumer "zeta" is damaged, deleting it starts it anew: `)
		assert.Equal(t, 1, strings.Count(r.stderr, "zeta"), "%s names the consumer once: %s", args[0], r.stderr)
	}

	mustRun(t, "", "consumers", "-delete", "zeta", dir)
	assert.NoFileExists(t, filepath.Join(dir, file))
	list = consumersJSONOf(t, dir)
	assert.Empty(t, list.Damaged)
	assert.Contains(t, mustRun(t, "", "check", dir).stdout, "ok: ")
	assert.Equal(t, lines(numbered(10)[list.Oldest:]...), mustRun(t, "", "dequeue", "-consumer", "zeta", dir).stdout,
		"made anew, zeta starts at the oldest message kept")
}
