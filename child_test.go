package bigqueue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The child-process plumbing of the crash, damage, lock and full-disk tests:
// the entry point of a child (this test binary run again), the command that
// starts one, and the result line it prints.

const (
	childModeEnv = "BQ_TEST_CHILD_MODE"
	childDirEnv  = "BQ_TEST_CHILD_DIR"
	childArgEnv  = "BQ_TEST_CHILD_ARG"

	// childResultPrefix starts the line a child prints its result on.
	childResultPrefix = "BQRESULT "
)

// TestCrashChild is not a test of its own: it is the entry point of the
// child processes that the crash, damage, lock and full-disk tests start by
// running this test binary again with -test.run=^TestCrashChild$ and the
// environment variable BQ_TEST_CHILD_MODE. Without it, it does nothing.
func TestCrashChild(t *testing.T) {
	mode := os.Getenv(childModeEnv)
	if mode == "" {
		return
	}
	dir := os.Getenv(childDirEnv)
	arg := []byte(os.Getenv(childArgEnv))
	switch mode {
	case "crash":
		crashChild(t, dir, arg)
	case "damage":
		damageChild(t, dir, arg)
	case "lockhold":
		lockHoldChild(t, dir)
	case "trylock":
		tryLockChild(t, dir)
	case "fulldisk":
		fullDiskChild(t, dir)
	case "reader":
		readerChild(t, dir, arg)
	case "writer":
		writerChild(t, dir, arg)
	case "osreader":
		osReaderChild(t, dir, arg)
	case "wakewriter":
		wakeWriterChild(t, dir, arg)
	case "lookonly":
		lookOnlyChild(t, dir)
	default:
		t.Fatalf("unknown child mode %q", mode)
	}
}

// childCommand returns the command that runs this test binary as a child in
// the given mode, with dir and arg (encoded as JSON) in its environment.
func childCommand(t testing.TB, mode, dir string, arg any) *exec.Cmd {
	t.Helper()
	a, err := json.Marshal(arg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=120s")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, childDirEnv+"="+dir, childArgEnv+"="+string(a))
	// Under -race, a child would sleep a second at exit (the race
	// runtime's atexit_sleep_ms): hundreds of children make that minutes.
	cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return cmd
}

// requireChildOK fails the test when the child ended with an error, saying
// whether it crashed (a panic, a fault such as SIGBUS, a signal) or failed
// an assertion.
func requireChildOK(t *testing.T, err error, out []byte) {
	t.Helper()
	if err == nil {
		return
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && (!exit.Exited() || bytes.Contains(out, []byte("panic: ")) ||
		bytes.Contains(out, []byte("unexpected fault address")) || bytes.Contains(out, []byte("fatal error: "))) {
		t.Fatalf("child crashed (panic, fault or signal): %v\n%s", err, out)
	}
	t.Fatalf("child failed: %v\n%s", err, out)
}

// childResult finds the result line a child printed and decodes it into v.
func childResult(out []byte, v any) error {
	for line := range strings.SplitSeq(string(out), "\n") {
		if s, ok := strings.CutPrefix(line, childResultPrefix); ok {
			return json.Unmarshal([]byte(s), v)
		}
	}
	return errors.New("child printed no result line")
}

// printChildResult prints v as the child's result line.
func printChildResult(t *testing.T, v any) {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	fmt.Printf("%s%s\n", childResultPrefix, b)
}

// testSeed returns the seed of a randomized test, from BQ_TEST_SEED when
// set, and logs it so that a failure can be replayed.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BQ_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	t.Logf("seed %d (replay with BQ_TEST_SEED=%d)", seed, seed)
	return seed
}

// startChildWithPipe starts cmd with the write end of a pipe as its fd 3,
// where children report progress, and returns the read end, closed at
// cleanup.
func startChildWithPipe(t *testing.T, cmd *exec.Cmd) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	cmd.ExtraFiles = []*os.File{w}
	require.NoError(t, cmd.Start())
	require.NoError(t, w.Close())
	return r
}
