package forward

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-ff72c416/bigqueue"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The cost of forwarding: b.N messages of 128 bytes sent to an engine
// started for the run, either forwarded from a queue's backlog (via=queue)
// or published straight from memory with the same client, the same
// headers and no pause between batches (via=direct). Compare with
//
//	go test -run '^$' -bench Forwarding -benchtime 50000x -count 10 | tee out.txt
//	benchstat -col /via out.txt
//
// The messages/s metric is b.N over the time from the first send to the
// last acknowledgement.

const benchMessageSize = 128

func benchMessages(n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		m := make([]byte, benchMessageSize)
		copy(m, fmt.Sprintf("message %d ", i))
		msgs[i] = m
	}
	return msgs
}

// forwardBacklog enqueues msgs into a fresh queue, then forwards them all
// into sink, timed.
func forwardBacklog(b *testing.B, msgs [][]byte, sink Sink) {
	q, err := bigqueue.NewMmapQueue(b.TempDir(), bigqueue.SetArenaSize(64<<20))
	require.NoError(b, err)
	defer func() { require.NoError(b, q.Close()) }()
	require.NoError(b, q.EnqueueBatch(msgs))
	c, err := q.NewConsumer("bench")
	require.NoError(b, err)
	b.ResetTimer()
	forwardAll(b, c, sink, Options{}, uint64(len(msgs)))
	b.StopTimer()
	b.ReportMetric(float64(len(msgs))/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkForwarding(b *testing.B) {
	b.Run("engine=nats", func(b *testing.B) {
		b.Run("via=direct", func(b *testing.B) {
			url := benchNATS(b)
			msgs := benchMessages(b.N)
			nc, err := nats.Connect(url)
			require.NoError(b, err)
			defer nc.Close()
			js, err := jetstream.New(nc)
			require.NoError(b, err)
			b.ResetTimer()
			futs := make([]jetstream.PubAckFuture, len(msgs))
			for i, m := range msgs {
				futs[i], err = js.PublishAsync("events", m, jetstream.WithMsgID(strconv.Itoa(i)))
				require.NoError(b, err)
			}
			for _, f := range futs {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(len(msgs))/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run("via=queue", func(b *testing.B) {
			url := benchNATS(b)
			msgs := benchMessages(b.N)
			sink, err := NewJetStream(JetStreamConfig{URL: url, Subject: "events"})
			require.NoError(b, err)
			defer func() { require.NoError(b, sink.Close()) }()
			forwardBacklog(b, msgs, sink)
		})
	})
	b.Run("engine=kafka", func(b *testing.B) {
		b.Run("via=direct", func(b *testing.B) {
			seeds := benchKafka(b)
			msgs := benchMessages(b.N)
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("events"))
			require.NoError(b, err)
			defer cl.Close()
			recs := make([]kgo.Record, len(msgs))
			var wg sync.WaitGroup
			wg.Add(len(msgs))
			b.ResetTimer()
			for i, m := range msgs {
				recs[i] = kgo.Record{Value: m, Headers: []kgo.RecordHeader{{Key: OffsetHeader, Value: strconv.AppendUint(nil, uint64(i), 10)}}}
				cl.Produce(context.Background(), &recs[i], func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(len(msgs))/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run("via=queue", func(b *testing.B) {
			seeds := benchKafka(b)
			msgs := benchMessages(b.N)
			sink, err := NewKafka(seeds, "events")
			require.NoError(b, err)
			defer func() { require.NoError(b, sink.Close()) }()
			forwardBacklog(b, msgs, sink)
		})
	})
}

// benchNATS starts a NATS server with a stream on the subject events and
// returns its URL.
func benchNATS(b *testing.B) string {
	b.Helper()
	srv := startNATS(b, b.TempDir(), -1)
	b.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(b, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(b, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events"}, Duplicates: time.Hour})
	require.NoError(b, err)
	return srv.ClientURL()
}

// benchKafka starts a one-broker Kafka cluster with the topic events in
// one partition and returns its address.
func benchKafka(b *testing.B) []string {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	require.NoError(b, err)
	b.Cleanup(c.Close)
	return c.ListenAddrs()
}
