package forward

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seed-ff72c416/bigqueue"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startKafka starts an in-process Kafka cluster of three brokers with the
// topic events in three partitions, persisting to dataDir, listening on
// ports (none: any).
func startKafka(t *testing.T, dataDir string, ports ...int) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(3, "events"), kfake.DataDir(dataDir)}
	if len(ports) > 0 {
		opts = append(opts, kfake.Ports(ports...))
	}
	c, err := kfake.NewCluster(opts...)
	require.NoError(t, err)
	return c
}

// kafkaRecord is what a topic consumer sees of a forwarded message.
type kafkaRecord struct {
	partition int32
	offset    uint64 // the queue offset, from OffsetHeader
	data      string
}

// consumeKafka reads the topic from its start until it has seen every
// queue offset below n, and returns the records in the order each
// partition holds them.
func consumeKafka(t *testing.T, seeds []string, n uint64) []kafkaRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var recs []kafkaRecord
	seen := map[uint64]bool{}
	for uint64(len(seen)) < n {
		fetches := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "only %d of %d offsets in the topic", len(seen), n)
		fetches.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			var off uint64
			found := false
			for _, h := range r.Headers {
				if h.Key == OffsetHeader {
					off, err = strconv.ParseUint(string(h.Value), 10, 64)
					require.NoError(t, err)
					found = true
				}
			}
			require.True(t, found, "record %s/%d@%d has no %s header", r.Topic, r.Partition, r.Offset, OffsetHeader)
			seen[off] = true
			recs = append(recs, kafkaRecord{r.Partition, off, string(r.Value)})
		})
	}
	return recs
}

// checkKafkaOrder checks that every offset below n arrived with its
// message, and that each partition holds the messages that arrived once in
// queue order. A message sent again (a batch refused part way is re-sent
// from its first refused message) may arrive twice, on its partition or
// another one, after later messages: these are the duplicates of the
// uncommitted window, and it returns how many there were.
func checkKafkaOrder(t *testing.T, recs []kafkaRecord, n uint64) int {
	t.Helper()
	times := map[uint64]int{}
	for _, r := range recs {
		require.Equal(t, fmt.Sprintf("msg-%d", r.offset), r.data, "offset %d carries another message", r.offset)
		times[r.offset]++
	}
	for i := range n {
		require.NotZero(t, times[i], "offset %d never arrived", i)
	}
	last := map[int32]uint64{}
	started := map[int32]bool{}
	for _, r := range recs {
		if times[r.offset] > 1 {
			continue
		}
		require.True(t, !started[r.partition] || r.offset > last[r.partition],
			"partition %d: offset %d after %d", r.partition, r.offset, last[r.partition])
		last[r.partition], started[r.partition] = r.offset, true
	}
	return len(recs) - int(n)
}

// TestKafkaForwardOnePartition forwards a queue, in many batches, with the
// sink's defaults into a topic of three partitions: every record is on one
// partition, in queue order, so that a consumer of the topic reads the
// messages in the order they were enqueued. (franz-go's default
// partitioner moves to another partition every 64 KiB: 500 KiB are sent.)
func TestKafkaForwardOnePartition(t *testing.T) {
	cluster := startKafka(t, t.TempDir())
	defer cluster.Close()
	seeds := cluster.ListenAddrs()
	q, err := bigqueue.NewMmapQueue(t.TempDir(), bigqueue.SetArenaSize(1<<20))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	const n = 500
	pad := strings.Repeat("x", 1000)
	for i := range n {
		require.NoError(t, q.EnqueueString(fmt.Sprintf("msg-%d", i)+pad))
	}
	c, err := q.NewConsumer("to-kafka")
	require.NoError(t, err)
	sink, err := NewKafka(seeds, "events")
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fw := New(c, sink, Options{MaxBatch: 7, Progress: func(p Progress) {
		if p.Committed == n {
			cancel()
		}
	}})
	require.ErrorIs(t, fw.Run(ctx), context.Canceled)

	recs := consumeKafka(t, seeds, n)
	require.Len(t, recs, n, "no failure, so no duplicate")
	for i, r := range recs {
		require.Equal(t, recs[0].partition, r.partition, "record %d", i)
		require.Equal(t, uint64(i), r.offset, "record %d", i)
		require.Equal(t, fmt.Sprintf("msg-%d", i)+pad, r.data)
	}
}

// TestKafkaForward forwards a queue into a three-broker Kafka cluster
// that refuses produce requests (retriable NOT_LEADER_FOR_PARTITION, and
// POLICY_VIOLATION, which fails records back to the forwarder) and is
// restarted mid-stream: every message arrives, each partition in queue
// order, with duplicates only from re-sent batches.
func TestKafkaForward(t *testing.T) {
	data := t.TempDir()
	cluster := startKafka(t, data)
	seeds := cluster.ListenAddrs()
	var ports []int
	for _, a := range seeds {
		_, p, err := net.SplitHostPort(a)
		require.NoError(t, err)
		port, err := strconv.Atoi(p)
		require.NoError(t, err)
		ports = append(ports, port)
	}
	produce := []kmsg.Key{kmsg.Produce}
	cluster.Fault(kfake.Fault{Keys: produce, Err: kerr.NotLeaderForPartition, Count: 10})
	refused := cluster.Fault(kfake.Fault{Keys: produce, Partitions: []int32{1}, Err: kerr.PolicyViolation, Count: 3})

	q, err := bigqueue.NewMmapQueue(t.TempDir(), bigqueue.SetArenaSize(64<<10))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	const n = 3000
	fill(t, q, 0, n)
	c, err := q.NewConsumer("to-kafka")
	require.NoError(t, err)

	// Records go round the partitions, so that a refused partition fails
	// a batch part way; metadata is refreshed at once after NOT_LEADER;
	// a record not delivered in a second comes back to the forwarder.
	sink, err := NewKafka(seeds, "events", kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.MetadataMinAge(10*time.Millisecond), kgo.RecordDeliveryTimeout(time.Second))
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		down                bool
		failedBefore, downs uint64
		last                Progress
	)
	fw := New(c, sink, Options{MaxBatch: 100, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Progress: func(p Progress) {
			last = p
			switch {
			case downs == 0 && p.Committed >= n/2:
				// The brokers go away mid-stream...
				cluster.Close()
				down, downs, failedBefore = true, 1, p.Failures
			case down && p.Failures >= failedBefore+3:
				// ... long enough to fail three sends, and come back on
				// the same ports with what they had written.
				cluster = startKafka(t, data, ports...)
				down = false
			}
			if p.Committed == n {
				cancel()
			}
		}})
	require.ErrorIs(t, fw.Run(ctx), context.Canceled)
	defer cluster.Close()
	require.False(t, down, "the cluster came back")
	require.Equal(t, uint64(n), c.Committed())
	require.Equal(t, 3, refused.Hits(), "every refusal reached the cluster")
	require.GreaterOrEqual(t, last.Failures, failedBefore+3)

	dups := checkKafkaOrder(t, consumeKafka(t, seeds, n), n)
	require.NotZero(t, dups, "a batch refused part way is re-sent whole")
	t.Logf("%d records re-sent after %d failed sends", dups, last.Failures)
}
