package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-ff72c416/bigqueue"
	"github.com/seed-ff72c416/bigqueue/forward"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestForwardUsage(t *testing.T) {
	dir := newQueue(t, "a")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-to", "nats://127.0.0.1:1/x", dir}, "missing -consumer NAME"},
		{[]string{"-consumer", "f", dir}, "missing -to URL"},
		{[]string{"-consumer", "f", "-to", "http://h/x", dir}, `unknown scheme "http"`},
		{[]string{"-consumer", "f", "-to", "kafka://h:9092", dir}, "no topic or subject"},
		{[]string{"-consumer", "f", "-to", "nats://127.0.0.1:1/x", "-batch", "0", dir}, "-batch 0"},
		{[]string{"-consumer", "f", "-to", "nats://127.0.0.1:1/x"}, "missing DIR"},
	} {
		r := runTool(t, "", append([]string{"forward"}, tc.args...)...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.want, tc.args)
	}
	r := runTool(t, "", "forward", "-consumer", "f", "-to", "nats://127.0.0.1:1/x", filepath.Join(t.TempDir(), "none"))
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "no queue in")
}

// forwardChild is "bigqueue forward" running as a child process, its
// progress lines (one each millisecond) read as they come.
type forwardChild struct {
	cmd   *exec.Cmd
	lines chan string // closed when stderr ends
}

func startForward(t *testing.T, bin, dir, to string) *forwardChild {
	t.Helper()
	cmd := exec.Command(bin, "forward", "-consumer", "f", "-to", to, "-batch", "256", "-progress", "1ms", dir)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &forwardChild{cmd: cmd, lines: make(chan string, 1<<16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c
}

var forwardedRE = regexp.MustCompile(`: (\d+) messages? forwarded`)

// waitForwarded reads progress lines until one says at least n messages
// went, and returns the number it says; it kills the child and fails
// when the child ends first or after a generous bound.
func (c *forwardChild) waitForwarded(t *testing.T, n int) int {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				_ = c.cmd.Wait()
				t.Fatalf("forward ended before %d messages went", n)
			}
			if m := forwardedRE.FindStringSubmatch(line); m != nil {
				got, err := strconv.Atoi(m[1])
				require.NoError(t, err)
				if got >= n {
					return got
				}
			}
		case <-timeout:
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
			t.Fatalf("forward: fewer than %d messages after a minute", n)
		}
	}
}

// stop sends SIGTERM and returns the last line the child wrote, after
// checking that it exited 0.
func (c *forwardChild) stop(t *testing.T) string {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	last := ""
	for line := range c.lines {
		last = line
	}
	require.NoError(t, c.cmd.Wait(), "exit status; last line %q", last)
	return last
}

func fwMessage(i int) string { return fmt.Sprintf("event-%06d", i) }

// engine is a cluster the forward tests start in-process.
type engine struct {
	to string
	// check checks that the engine holds the messages of offsets below n,
	// in order, with duplicates only in [dupFrom, dupTo).
	check func(t *testing.T, n int, dupFrom, dupTo uint64)
}

func natsEngine(t *testing.T) engine {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events"}, Duplicates: time.Hour})
	require.NoError(t, err)
	return engine{
		to: srv.ClientURL() + "/events",
		check: func(t *testing.T, n int, _, _ uint64) {
			info, err := stream.Info(ctx)
			require.NoError(t, err)
			require.Equal(t, uint64(n), info.State.Msgs, "each message once: the stream dropped the re-sent ones")
			cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			require.NoError(t, err)
			it, err := cons.Messages()
			require.NoError(t, err)
			defer it.Stop()
			for i := range n {
				m, err := it.Next()
				require.NoError(t, err)
				require.Equal(t, fwMessage(i), string(m.Data()), "in order")
				require.Equal(t, strconv.Itoa(i), m.Headers().Get(jetstream.MsgIDHeader))
			}
		},
	}
}

func kafkaEngine(t *testing.T) engine {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "events"))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	seeds := cluster.ListenAddrs()
	// records reads the whole topic, partition by partition.
	records := func(t *testing.T) map[int32][]*kgo.Record {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("events"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		require.NoError(t, err)
		defer cl.Close()
		end, err := listEnds(cl)
		require.NoError(t, err)
		got := map[int32][]*kgo.Record{}
		have := func() bool {
			for p, e := range end {
				if int64(len(got[p])) < e {
					return false
				}
			}
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for !have() {
			fs := cl.PollFetches(ctx)
			require.NoError(t, ctx.Err())
			fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], r) })
		}
		return got
	}
	offsetOf := func(t *testing.T, r *kgo.Record) uint64 {
		for _, h := range r.Headers {
			if h.Key == forward.OffsetHeader {
				o, err := strconv.ParseUint(string(h.Value), 10, 64)
				require.NoError(t, err)
				return o
			}
		}
		t.Fatalf("record without %s", forward.OffsetHeader)
		return 0
	}
	return engine{
		to: "kafka://" + strings.Join(seeds, ",") + "/events",
		check: func(t *testing.T, n int, dupFrom, dupTo uint64) {
			parts := records(t)
			times := map[uint64]int{}
			for _, rs := range parts {
				for _, r := range rs {
					o := offsetOf(t, r)
					require.Equal(t, fwMessage(int(o)), string(r.Value))
					times[o]++
				}
			}
			require.Len(t, times, n, "every message")
			for o, k := range times {
				require.True(t, k == 1 || o >= dupFrom && o < dupTo,
					"offset %d %d times, outside the uncommitted window [%d, %d)", o, k, dupFrom, dupTo)
			}
			// Each partition holds the messages sent once in queue order.
			for p, rs := range parts {
				last, any := uint64(0), false
				for _, r := range rs {
					if o := offsetOf(t, r); times[o] == 1 {
						require.True(t, !any || o > last, "partition %d: offset %d after %d", p, o, last)
						last, any = o, true
					}
				}
			}
		},
	}
}

// listEnds returns the end offset of each partition of the topic events.
func listEnds(cl *kgo.Client) (map[int32]int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), "events")
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// TestForwardKilled: "bigqueue forward" beside a program that keeps
// writing the queue, killed with SIGKILL mid-stream and started again,
// then stopped with SIGTERM: every message arrives, in order, and a
// message arrives twice only from the window the killed forwarder had
// sent but not committed (on JetStream: never). The last line says what
// was committed.
func TestForwardKilled(t *testing.T) {
	bin := buildTool(t)

	for _, kind := range []string{"nats", "kafka"} {
		t.Run(kind, func(t *testing.T) {
			var eng engine
			if kind == "nats" {
				eng = natsEngine(t)
			} else {
				eng = kafkaEngine(t)
			}
			dir := filepath.Join(t.TempDir(), "q")
			require.NoError(t, os.Mkdir(dir, 0o755))
			// The producer: this process, the queue's writer.
			q, err := bigqueue.NewMmapQueue(dir, bigqueue.SetArenaSize(1<<20))
			require.NoError(t, err)
			defer func() { require.NoError(t, q.Close()) }()
			const n = 100_000
			for i := range n / 2 {
				require.NoError(t, q.EnqueueString(fwMessage(i)))
			}

			a := startForward(t, bin, dir, eng.to)
			went := a.waitForwarded(t, n/50)
			require.NoError(t, a.cmd.Process.Kill())
			_ = a.cmd.Wait()
			committed := consumersJSONOf(t, dir).Consumers[0].Offset
			t.Logf("killed after %d messages acknowledged; committed %d", went, committed)
			require.GreaterOrEqual(t, committed, uint64(went), "what was reported acknowledged was committed")
			require.Less(t, committed, uint64(n/2), "killed mid-stream")

			b := startForward(t, bin, dir, eng.to)
			for i := n / 2; i < n; i++ { // the producer goes on beside it
				require.NoError(t, q.EnqueueString(fwMessage(i)))
			}
			b.waitForwarded(t, n-int(committed))
			last := b.stop(t)
			assert.Equal(t, fmt.Sprintf("bigqueue forward: stopped after %d messages forwarded; consumer f committed at offset %d", n-int(committed), n), last)
			assert.Equal(t, uint64(n), consumersJSONOf(t, dir).Consumers[0].Offset)
			// At most a batch (-batch 256) was in flight when it was killed.
			eng.check(t, n, committed, committed+256)
		})
	}
}

// TestForwardStopWhileClusterDown: with nothing listening at the
// cluster's address, SIGTERM still ends the forwarder (the batch in
// flight gets its grace, then is dropped uncommitted): exit 0, nothing
// committed, the messages still there for the next run.
func TestForwardStopWhileClusterDown(t *testing.T) {
	bin := buildTool(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // a port nobody listens on

	for _, to := range []string{"nats://" + addr + "/events", "kafka://" + addr + "/events"} {
		dir := newQueue(t, "a", "b", "c")
		c := startForward(t, bin, dir, to)
		line := <-c.lines // running: it has shown its progress once
		assert.Contains(t, line, "0 messages forwarded", to)
		last := c.stop(t)
		assert.Equal(t, "bigqueue forward: stopped after 0 messages forwarded; consumer f committed at offset 0", last, to)
		assert.Equal(t, []namedConsumerJSON{{Name: "f", Offset: 0, Backlog: 3}}, consumersJSONOf(t, dir).Consumers, to)
	}
}
