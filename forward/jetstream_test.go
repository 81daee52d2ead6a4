package forward

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/seed-ff72c416/bigqueue"
	"github.com/stretchr/testify/require"
)

// startNATS starts an embedded NATS server with JetStream, storing in
// storeDir, on port (0: any); it returns the server.
func startNATS(t testing.TB, storeDir string, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true,
	})
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "nats-server did not start")
	return s
}

// TestJetStreamForward forwards a queue into a JetStream stream while the
// server is stopped, halfway through a batch, and started again: every
// message arrives, in order, exactly once (the stream drops the re-sent
// ones by Nats-Msg-Id), and each carries its queue offset. Without the
// Nats-Expected-Last-Msg-Id chain, the messages the client buffered while
// reconnecting land ahead of the lost ones (seen: offset 1056 stored
// before 1013).
func TestJetStreamForward(t *testing.T) {
	store := t.TempDir()
	srv := startNATS(t, store, -1)
	url := srv.ClientURL()
	_, portStr, _ := cutLast(url, ":")
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)

	nc, err := nats.Connect(url)
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events"}, Duplicates: time.Hour})
	require.NoError(t, err)
	nc.Close()

	q, err := bigqueue.NewMmapQueue(t.TempDir(), bigqueue.SetArenaSize(64<<10))
	require.NoError(t, err)
	defer func() { require.NoError(t, q.Close()) }()
	const n = 2000
	for i := range n {
		require.NoError(t, q.EnqueueString(fmt.Sprintf("event-%d", i)))
	}
	c, err := q.NewConsumer("to-nats")
	require.NoError(t, err)

	sink, err := NewJetStream(JetStreamConfig{URL: url, Subject: "events", AckTimeout: time.Second,
		Options: []nats.Option{nats.ReconnectWait(20 * time.Millisecond)}})
	require.NoError(t, err)
	defer func() { _ = sink.Close() }()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	restarted := make(chan *server.Server, 1)
	fw := New(c, sink, Options{MaxBatch: 100, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Progress: func(p Progress) {
			if p.LastError != nil {
				t.Logf("committed %d: %v", p.Committed, p.LastError)
			}
			if p.Committed >= n/2 && sink.published == nil {
				// The server goes away halfway through the next batch
				// and comes back: the messages of the batch published
				// before are lost or stored, those after wait in the
				// client's reconnect buffer and go out to the new
				// server, which must not store them ahead of the lost
				// ones.
				sink.published = func(i int) {
					if i == 50 && srv != nil {
						srv.Shutdown()
						srv.WaitForShutdown()
						srv = nil
						go func() { restarted <- startNATS(t, store, port) }()
					}
				}
			}
			if p.Committed == n {
				cancel()
			}
		}})
	require.ErrorIs(t, fw.Run(runCtx), context.Canceled)
	again := <-restarted
	defer again.Shutdown()

	nc, err = nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err = jetstream.New(nc)
	require.NoError(t, err)
	stream, err := js.Stream(ctx, "EVENTS")
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(n), info.State.Msgs, "every message once")
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	for i := range n {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("event-%d", i), string(m.Data()), "in order")
		require.Equal(t, strconv.Itoa(i), m.Headers().Get(jetstream.MsgIDHeader))
	}
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// TestJetStreamSharedStream: two forwarders, of two queues whose offsets
// overlap, into one stream, each on its subject with its MsgIDPrefix:
// the stream drops nothing as a duplicate of the other's, and each
// subject holds its queue's messages in order.
func TestJetStreamSharedStream(t *testing.T) {
	srv := startNATS(t, t.TempDir(), -1)
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Duplicates: time.Hour})
	require.NoError(t, err)

	const n = 300
	done := make(chan error, 2)
	for _, host := range []string{"a", "b"} {
		q, err := bigqueue.NewMmapQueue(t.TempDir(), bigqueue.SetArenaSize(64<<10))
		require.NoError(t, err)
		defer func() { require.NoError(t, q.Close()) }()
		for i := range n {
			require.NoError(t, q.EnqueueString(fmt.Sprintf("%s-%d", host, i)))
		}
		c, err := q.NewConsumer("to-nats")
		require.NoError(t, err)
		sink, err := Dial(srv.ClientURL() + "/events." + host + "?msg-id-prefix=" + host + "-")
		require.NoError(t, err)
		defer func() { require.NoError(t, sink.Close()) }()
		go func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done <- New(c, sink, Options{MaxBatch: 50, Progress: func(p Progress) {
				if p.Committed == n {
					cancel()
				}
			}}).Run(ctx)
		}()
	}
	for range 2 {
		require.ErrorIs(t, <-done, context.Canceled)
	}
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2*n), info.State.Msgs, "no message taken for the other forwarder's")
	for _, host := range []string{"a", "b"} {
		cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"events." + host}})
		require.NoError(t, err)
		for i := range n {
			m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("%s-%d", host, i), string(m.Data()))
			require.Equal(t, fmt.Sprintf("%s-%d", host, i), m.Headers().Get(jetstream.MsgIDHeader))
		}
	}
}

// TestJetStreamServerAway: a sink whose server is not there says so (its
// connection is reconnecting), not that the server lacks headers, which
// is what nats.go answers a message with headers on a connection that has
// not reached a server yet.
func TestJetStreamServerAway(t *testing.T) {
	srv := startNATS(t, t.TempDir(), -1)
	url := srv.ClientURL()
	srv.Shutdown() // nothing listens there now
	srv.WaitForShutdown()
	sink, err := NewJetStream(JetStreamConfig{URL: url, Subject: "events", AckTimeout: time.Second})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	n, err := sink.Send(context.Background(), []Record{{Offset: 7, Data: []byte("m")}})
	require.Zero(t, n)
	require.ErrorIs(t, err, nats.ErrConnectionReconnecting)
	require.ErrorContains(t, err, "offset 7")
	require.ErrorContains(t, err, url)
	require.NotErrorIs(t, err, nats.ErrHeadersNotSupported)
}
