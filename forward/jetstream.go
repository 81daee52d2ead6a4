package forward

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream is a Sink into a NATS JetStream stream: each record is
// published to Subject with the Nats-Msg-Id header set to its queue
// offset, so that the stream drops a re-sent record within its duplicate
// window. The stream is created by its owner, not by the forwarder.
type JetStream struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
}

// NewJetStream connects to the NATS server at url and returns a sink that
// publishes to subject. NATS reconnects by itself; a publish while it is
// away fails, and the Forwarder retries.
func NewJetStream(url, subject string, opts ...nats.Option) (*JetStream, error) {
	opts = append([]nats.Option{nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("forward: connect to %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("forward: jetstream on %s: %w", url, err)
	}
	return &JetStream{nc: nc, js: js, subject: subject}, nil
}

// Send publishes the batch in order and waits for each acknowledgement;
// acked counts those acknowledged before the first failure.
func (s *JetStream) Send(ctx context.Context, batch []Record) (int, error) {
	for i, r := range batch {
		if _, err := s.js.Publish(ctx, s.subject, r.Data, jetstream.WithMsgID(strconv.FormatUint(r.Offset, 10))); err != nil {
			return i, fmt.Errorf("forward: publish offset %d to %s: %w", r.Offset, s.subject, err)
		}
	}
	return len(batch), nil
}

// Close closes the connection.
func (s *JetStream) Close() error {
	s.nc.Close()
	return nil
}
