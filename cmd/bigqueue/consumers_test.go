package main

import (
	"encoding/json"
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
	}}, list)

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
	assert.Equal(t, consumersJSON{Dir: dir, Oldest: 0, Next: 1, Consumers: []namedConsumerJSON{}}, list)
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
