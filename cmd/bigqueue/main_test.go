package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallArena keeps test queues small: four pages on most systems, so a few
// hundred messages already span several arenas.
const smallArena = 16 << 10

// result is what one run of the tool produced.
type result struct {
	code   int
	stdout string
	stderr string
}

// runTool runs the tool in-process with the given stdin and arguments.
func runTool(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun runs the tool and fails the test unless it exits 0.
func mustRun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := runTool(t, stdin, args...)
	require.Equalf(t, exitOK, r.code, "bigqueue %s: stderr %q", strings.Join(args, " "), r.stderr)
	return r
}

// newQueue makes a queue in a fresh directory holding the given messages,
// one per line, with small arenas, and returns the directory.
func newQueue(t *testing.T, messages ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "q")
	mustRun(t, lines(messages...), "enqueue", "-arena-size", "16384", dir)
	return dir
}

// lines joins messages into the input (or output) of one message per line.
func lines(messages ...string) string {
	var b strings.Builder
	for _, m := range messages {
		b.WriteString(m)
		b.WriteByte('\n')
	}
	return b.String()
}

// assertOneLineError checks that a failed run printed nothing on stdout and
// exactly one line starting with "bigqueue" on stderr, containing want.
func assertOneLineError(t *testing.T, r result, wantCode int, want string) {
	t.Helper()
	assert.Equal(t, wantCode, r.code, "exit status")
	assert.Empty(t, r.stdout, "stdout")
	assert.True(t, strings.HasPrefix(r.stderr, "bigqueue"), "stderr %q", r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "stderr must be one line: %q", r.stderr)
	assert.Contains(t, r.stderr, want)
}

func TestMainUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		r := runTool(t, "", args...)
		assert.Equal(t, exitOK, r.code, args)
		assert.Empty(t, r.stderr, args)
		for _, c := range commands {
			assert.Contains(t, r.stdout, "  "+c.name+" ", args)
		}
	}

	r := runTool(t, "")
	assert.Equal(t, exitUsage, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "usage: bigqueue COMMAND")
}

func TestCommandHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "-help"}, {"help", c.name}} {
			r := runTool(t, "", args...)
			assert.Equal(t, exitOK, r.code, args)
			assert.Empty(t, r.stderr, args)
			assert.True(t, strings.HasPrefix(r.stdout, "usage: bigqueue "+c.name+" "), "%v: %q", args, r.stdout)
		}
	}
	// Each flag a command takes is documented in its help.
	r := mustRun(t, "", "dequeue", "-h")
	for _, flag := range []string{"-consumer", "-n", "-peek"} {
		assert.Contains(t, r.stdout, flag)
	}
	r = mustRun(t, "", "enqueue", "-h")
	assert.Contains(t, r.stdout, "-arena-size")
	assert.Contains(t, r.stdout, "128 MiB")
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"enqueue"}, "missing DIR"},
		{[]string{"dequeue"}, "missing DIR"},
		{[]string{"stat"}, "missing DIR"},
		{[]string{"check"}, "missing DIR"},
		{[]string{"stat", "a", "b"}, `unexpected argument "b"`},
		{[]string{"bench", "extra"}, `unexpected argument "extra"`},
		{[]string{"enqueue", "-bogus", "d"}, "flag provided but not defined: -bogus"},
		{[]string{"dequeue", "-n", "x", "d"}, `invalid value "x" for flag -n`},
		{[]string{"dequeue", "-n", "-1", "d"}, "-n -1"},
		{[]string{"dequeue", "-peek", "-n", "2", "d"}, "-peek shows only the head message"},
		{[]string{"bench", "-size", "7"}, "-size 7"},
		{[]string{"bench", "-n", "0"}, "-n 0"},
	}
	for _, tt := range tests {
		r := runTool(t, "", tt.args...)
		assertOneLineError(t, r, exitUsage, tt.want)
	}
}

func TestNoQueue(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	empty := t.TempDir()
	for _, dir := range []string{missing, empty} {
		for _, cmd := range []string{"dequeue", "stat", "check"} {
			r := runTool(t, "", cmd, dir)
			assertOneLineError(t, r, exitFail, "no queue in "+dir)
		}
	}
	_, err := os.Stat(missing)
	assert.ErrorIs(t, err, os.ErrNotExist, "reading commands must not create the directory")
}

func TestFlagsAfterDir(t *testing.T) {
	dir := newQueue(t, "a", "b", "c")
	r := mustRun(t, "", "dequeue", dir, "-n", "1")
	assert.Equal(t, "a\n", r.stdout)
	// After "--" everything is positional.
	r = runTool(t, "", "dequeue", "--", dir, "-n")
	assertOneLineError(t, r, exitUsage, `unexpected argument "-n"`)
}
