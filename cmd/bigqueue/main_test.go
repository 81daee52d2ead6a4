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
	for cmd, flags := range map[string][]string{
		"dequeue":   {"-consumer", "-n", "-peek", "-follow", "-format", "-v"},
		"enqueue":   {"-arena-size SIZE", "-format", "-v", "(default 128MiB)", "K, KB and KiB all mean 1024"},
		"consumers": {"-json", "-delete"},
		"bench":     {"-arena-size SIZE", "powers of 1024"},
	} {
		r := mustRun(t, "", cmd, "-h")
		for _, flag := range flags {
			assert.Contains(t, r.stdout, flag, cmd)
		}
	}
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
		{[]string{"bench", "-arena-size", "1.5M"}, `invalid value "1.5M" for flag -arena-size`},
		{[]string{"bench", "-arena-size", "1K"}, "-arena-size 1KiB: too small"},
		{[]string{"dequeue", "-format", "json", "d"}, `invalid value "json" for flag -format: want lines, nul or len`},
		{[]string{"dequeue", "-follow", "d"}, "-follow needs -consumer NAME"},
		{[]string{"dequeue", "-follow", "-peek", "-consumer", "c", "d"}, "does not go with -follow"},
		{[]string{"consumers"}, "missing DIR"},
		{[]string{"consumers", "-delete"}, "flag needs an argument: -delete"},
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

func TestEnqueueUsageErrorsCreateNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "q")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-arena-size", "x"}, `invalid value "x" for flag -arena-size: want a whole number of bytes`},
		{[]string{"-arena-size", "-5"}, `invalid value "-5" for flag -arena-size`},
		{[]string{"-arena-size", "64Q"}, `invalid value "64Q" for flag -arena-size`},
		{[]string{"-arena-size", "99999999999G"}, "too large"},
		{[]string{"-arena-size", "100"}, "-arena-size 100: too small, the minimum is the page size"},
		{[]string{"-arena-size", "0"}, "-arena-size 0: too small"},
		{[]string{"-arena-size", "2048G"}, "-arena-size 2048GiB: too large, the maximum is 1 TiB"},
		{[]string{"-format", "csv"}, `invalid value "csv" for flag -format`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-v=maybe"}, `invalid boolean value "maybe" for -v`},
	}
	for _, tt := range tests {
		// The bad flag before DIR, and after it.
		for _, args := range [][]string{append(tt.args, dir), append([]string{dir}, tt.args...)} {
			r := runTool(t, "m\n", append([]string{"enqueue"}, args...)...)
			assertOneLineError(t, r, exitUsage, tt.want)
		}
	}
	r := runTool(t, "m\n", "enqueue", dir, "extra")
	assertOneLineError(t, r, exitUsage, `unexpected argument "extra"`)
	r = runTool(t, "m\n", "enqueue", "")
	assertOneLineError(t, r, exitUsage, "DIR is an empty string")

	left, err := os.ReadDir(parent)
	require.NoError(t, err)
	assert.Empty(t, left, "a usage error creates no directory")
}
