package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// End-to-end tests: the tool built as a binary and run as a child process,
// interrupted by a signal or cut off by a closed pipe, as from a shell.

// e2eMessage is message i of an end-to-end queue: 63 bytes that start with
// the message's number, so a gap, a duplicate or a reordering shows.
func e2eMessage(i int) string {
	return fmt.Sprintf("%08d-%s", i, strings.Repeat("x", 54))
}

// e2eQueue makes a queue of n e2eMessages, with 4 MiB arenas, and returns
// its directory.
func e2eQueue(t *testing.T, n int) string {
	t.Helper()
	var in strings.Builder
	in.Grow(n * 64)
	for i := range n {
		in.WriteString(e2eMessage(i))
		in.WriteByte('\n')
	}
	dir := filepath.Join(t.TempDir(), "q")
	mustRun(t, in.String(), "enqueue", "-arena-size", "4M", dir)
	return dir
}

// checkPrefix checks that out is the first messages of an e2eQueue, one per
// line, whole, in order, and returns how many it holds.
func checkPrefix(t *testing.T, out []byte) int {
	t.Helper()
	if len(out) == 0 {
		return 0
	}
	require.Equal(t, byte('\n'), out[len(out)-1], "the output ends with a whole message")
	got := strings.Split(string(out[:len(out)-1]), "\n")
	for i, line := range got {
		require.Equal(t, e2eMessage(i), line, "line %d", i)
	}
	return len(got)
}

// backlogOf returns how many messages consumer (the default one for "")
// has not consumed in the queue in dir.
func backlogOf(t *testing.T, dir, consumer string) int {
	t.Helper()
	if consumer == "" {
		return statJSONOf(t, dir).Consumers[0].Backlog
	}
	for _, c := range consumersJSONOf(t, dir).Consumers {
		if c.Name == consumer {
			return int(c.Backlog)
		}
	}
	t.Fatalf("no consumer %q in %s", consumer, dir)
	return 0
}

// dequeueArgs returns the arguments of "dequeue" as consumer (the default
// one for "").
func dequeueArgs(consumer string, more ...string) []string {
	args := []string{"dequeue"}
	if consumer != "" {
		args = append(args, "-consumer", consumer)
	}
	return append(args, more...)
}

// waitForSize waits until the file at path holds at least size bytes, for
// a child process that writes it; it gives up, killing the child, after a
// generous bound.
func waitForSize(t *testing.T, cmd *exec.Cmd, path string, size int64) {
	t.Helper()
	for range 20_000 { // 20 s at most
		fi, err := os.Stat(path)
		require.NoError(t, err)
		if fi.Size() >= size {
			return
		}
		time.Sleep(time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	t.Fatalf("%s: still under %d bytes after 20 s", path, size)
}

// signalChild sends sig to the child; that the child has already exited is
// fine (it may have finished before the signal).
func signalChild(t *testing.T, cmd *exec.Cmd, sig os.Signal) {
	t.Helper()
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		require.NoError(t, err)
	}
}

// buildTool builds the tool into a temporary directory and returns the
// binary's path.
func buildTool(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bigqueue")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func TestEndToEnd(t *testing.T) {
	bin := buildTool(t)

	// Ctrl-C: every message the child took is written, every message
	// written is consumed, and nothing else is.
	for _, consumer := range []string{"c", ""} {
		t.Run("interrupt/consumer="+consumer, func(t *testing.T) {
			const total = 200_000
			dir := e2eQueue(t, total)
			outPath := filepath.Join(t.TempDir(), "out")
			outFile, err := os.Create(outPath)
			require.NoError(t, err)
			var stderr bytes.Buffer
			cmd := exec.Command(bin, dequeueArgs(consumer, dir)...)
			cmd.Stdout, cmd.Stderr = outFile, &stderr
			require.NoError(t, cmd.Start())
			require.NoError(t, outFile.Close())

			waitForSize(t, cmd, outPath, 1)
			signalChild(t, cmd, os.Interrupt)
			require.NoError(t, cmd.Wait(), "exit status; stderr %q", stderr.String())

			data, err := os.ReadFile(outPath)
			require.NoError(t, err)
			written := checkPrefix(t, data)
			assert.Equal(t, total, written+backlogOf(t, dir, consumer), "written + backlog")
			if written < total {
				assert.Equal(t, "bigqueue dequeue: interrupted after "+count(written, "message")+
					", each written, then committed\n", stderr.String())
			} else {
				assert.Empty(t, stderr.String(), "finished before the signal came")
			}
			t.Logf("wrote %d of %d messages before the signal", written, total)

			// The rest comes next, from where the interrupted run stopped.
			rest := mustRun(t, "", dequeueArgs(consumer, "-n", "1", dir)...).stdout
			if written < total {
				assert.Equal(t, e2eMessage(written)+"\n", rest)
			}
		})
	}

	// A closed pipe ("| head -c 4096"): exit status 1, and the error says
	// how many messages went out; those and the ones left add up.
	for _, consumer := range []string{"c", ""} {
		t.Run("closed-pipe/consumer="+consumer, func(t *testing.T) {
			const total = 50_000
			dir := e2eQueue(t, total)
			r, w, err := os.Pipe()
			require.NoError(t, err)
			var stderr bytes.Buffer
			cmd := exec.Command(bin, dequeueArgs(consumer, dir)...)
			cmd.Stdout, cmd.Stderr = w, &stderr
			require.NoError(t, cmd.Start())
			require.NoError(t, w.Close())

			head := make([]byte, 4096) // 64 whole messages
			_, err = io.ReadFull(r, head)
			require.NoError(t, err)
			require.NoError(t, r.Close())
			err = cmd.Wait()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "stderr %q", stderr.String())
			assert.Equal(t, exitFail, exit.ExitCode())

			checkPrefix(t, head)
			m := regexp.MustCompile(`^bigqueue: dequeue from ` + regexp.QuoteMeta(dir) +
				`: write stdout: broken pipe \((\d+) messages? written and consumed; nothing lost, the rest stay in the queue\)\n$`).
				FindStringSubmatch(stderr.String())
			require.NotNil(t, m, "stderr %q", stderr.String())
			written, err := strconv.Atoi(m[1])
			require.NoError(t, err)
			assert.GreaterOrEqual(t, written, 64, "at least what the test read was written")
			assert.Equal(t, total, written+backlogOf(t, dir, consumer), "written + backlog")
			// Nothing lost: the next message is the first not written.
			rest := mustRun(t, "", dequeueArgs(consumer, dir)...).stdout
			assert.True(t, strings.HasPrefix(rest, e2eMessage(written)+"\n"), "resumes at message %d", written)
			assert.Equal(t, total-written, strings.Count(rest, "\n"))
		})
	}

	// -follow writes the backlog, waits, and SIGTERM ends it with status 0,
	// everything written committed.
	t.Run("follow-sigterm", func(t *testing.T) {
		const total = 1000
		dir := e2eQueue(t, total)
		outPath := filepath.Join(t.TempDir(), "out")
		outFile, err := os.Create(outPath)
		require.NoError(t, err)
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "dequeue", "-follow", "-consumer", "f", dir)
		cmd.Stdout, cmd.Stderr = outFile, &stderr
		require.NoError(t, cmd.Start())
		require.NoError(t, outFile.Close())

		waitForSize(t, cmd, outPath, total*64)
		signalChild(t, cmd, syscall.SIGTERM)
		require.NoError(t, cmd.Wait(), "exit status; stderr %q", stderr.String())

		data, err := os.ReadFile(outPath)
		require.NoError(t, err)
		assert.Equal(t, total, checkPrefix(t, data))
		assert.Equal(t, "bigqueue dequeue: interrupted after 1000 messages, each written, then committed\n", stderr.String())
		list := consumersJSONOf(t, dir)
		assert.Equal(t, []namedConsumerJSON{{Name: "f", Offset: total, Backlog: 0}}, list.Consumers)
	})
}

// TestInspectWithReadAccessOnly: stat, check and consumers work for a user
// who may only read the queue (a monitor running as another user), as a
// reader: opening as the writer fails on the lock file, which they cannot
// open for writing (it exited 1, "permission denied"). The tool runs as
// nobody when the test runs as root, else with the lock files and the
// directory made read-only.
func TestInspectWithReadAccessOnly(t *testing.T) {
	bin := buildTool(t)
	dir := newQueue(t, "a", "b", "c")
	mustRun(t, "", "dequeue", "-consumer", "c", "-n", "1", dir)
	for _, p := range []string{dir, filepath.Dir(bin)} {
		for d := p; strings.HasPrefix(d, os.TempDir()+string(filepath.Separator)); d = filepath.Dir(d) {
			require.NoError(t, os.Chmod(d, 0o755)) // t.TempDir's are 0700
		}
	}
	asReader := func(cmd *exec.Cmd) *exec.Cmd {
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		return cmd
	}
	if os.Geteuid() != 0 {
		for _, name := range []string{"LOCK", "LOCK.reclaim"} {
			require.NoError(t, os.Chmod(filepath.Join(dir, name), 0o444))
		}
		require.NoError(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	}
	out, err := asReader(exec.Command(bin, "stat", "-json", dir)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var st statJSON
	require.NoError(t, json.Unmarshal(out, &st), "%s", out)
	assert.Equal(t, 3, st.Messages)
	out, err = asReader(exec.Command(bin, "check", dir)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "ok: ")
	out, err = asReader(exec.Command(bin, "consumers", dir)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "c              1        2")
}
