package forward

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamConfig says where a JetStream sink publishes.
type JetStreamConfig struct {
	// URL of the NATS server (nats://host:port).
	URL string
	// Subject the messages are published to. The stream that stores it
	// is created by its owner, not by the forwarder. It tells a re-sent
	// message by its Nats-Msg-Id, across all its subjects: unless
	// MsgIDPrefix is set, the id is the bare queue offset, and the stream
	// must hold this forwarder's messages only.
	Subject string
	// MsgIDPrefix, for a stream that also stores other publishers'
	// messages (several forwarders, a subject each), goes before the
	// offset in each Nats-Msg-Id: give each forwarder its own. The
	// stream's last message may then be another publisher's, so the
	// sink cannot have the stream check the order: it publishes one
	// message at a time, each after the acknowledgement of the one
	// before (in order, at a fraction of the messages/s).
	MsgIDPrefix string
	// AckTimeout is how long Send waits for the stream's acknowledgement
	// of a message before it counts it as failed; the Forwarder then
	// sends it again. Default DefaultDeliveryTimeout.
	AckTimeout time.Duration
	// Options are nats.go connection options (credentials, TLS, reconnect
	// pacing), applied after the sink's own: connect and reconnect
	// forever.
	Options []nats.Option
}

// JetStream is a Sink into a NATS JetStream stream. Each message is
// published to the subject with the Nats-Msg-Id header set to its queue
// offset, so that the stream drops a re-sent message within its duplicate
// window (the stream's Duplicates setting).
//
// Messages are published without waiting for each acknowledgement in
// turn, two batches at a time by default (it is a PipelineSink), and
// still land in order: each message published while the one before it is
// in flight carries Nats-Expected-Last-Msg-Id, that message's offset, so
// that when one is lost (a server going away mid-batch) the stream
// refuses the ones after it rather than storing them ahead of it. The
// Forwarder then re-sends from the lost one; the stream drops those it
// already had.
type JetStream struct {
	url     string
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	prefix  string // MsgIDPrefix: one message at a time
	// The state of the batches in flight, used by the goroutine that
	// publishes (see PipelineSink).
	inFlight int    // batches published and not yet waited for
	last     string // Nats-Msg-Id of the last message published
	broken   bool   // a message in flight failed

	published func(i int) // a test's hook, after message i of a batch went out
}

// NewJetStream connects to the NATS server at cfg.URL and returns a sink
// that publishes to cfg.Subject. NATS reconnects by itself; a message
// published while it is away fails after the ack timeout, or is refused,
// and the Forwarder sends it again.
func NewJetStream(cfg JetStreamConfig) (*JetStream, error) {
	if cfg.Subject == "" {
		return nil, errorf("%w: jetstream sink for %s: no subject", ErrBadSink, cfg.URL)
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultDeliveryTimeout
	}
	// A server that is not up yet is one that is away: keep trying.
	opts := append([]nats.Option{nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}, cfg.Options...)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, errorf("connect to %s: %w", cfg.URL, err)
	}
	// What is in flight is bounded by the Forwarder's batch, not here.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncMaxPending(1<<16))
	if err != nil {
		nc.Close()
		return nil, errorf("jetstream on %s: %w", cfg.URL, err)
	}
	return &JetStream{url: cfg.URL, nc: nc, js: js, subject: cfg.Subject, prefix: cfg.MsgIDPrefix}, nil
}

// Send publishes the batch and waits for the acknowledgements in order;
// acked counts those acknowledged before the first failure. A message the
// stream dropped as a duplicate counts as acknowledged: the stream has it.
func (s *JetStream) Send(ctx context.Context, batch []Record) (int, error) {
	return s.Publish(ctx, batch)()
}

// Publish publishes the batch without waiting for the stream, and returns
// the function that waits for its acknowledgements, as Send does. While
// an earlier batch is in flight, the first message of this one names the
// last of that one as the message it must follow; once a failure is
// known, nothing more is published until every batch in flight has been
// waited for.
func (s *JetStream) Publish(ctx context.Context, batch []Record) func() (int, error) {
	if s.inFlight == 0 {
		s.broken, s.last = false, "" // everything before is settled: a new chain
	}
	if s.broken {
		err := s.failed(batch[0].Offset, errAfterFailure)
		return func() (int, error) { return 0, err }
	}
	if err := s.connected(); err != nil {
		err = s.failed(batch[0].Offset, err)
		return func() (int, error) { return 0, err }
	}
	if s.prefix != "" {
		acked, err := s.publishEach(ctx, batch)
		s.broken = err != nil
		s.inFlight++
		return func() (int, error) { s.inFlight--; return acked, err }
	}
	futs := make([]jetstream.PubAckFuture, 0, len(batch))
	var pubErr error
	for i, r := range batch {
		id := strconv.FormatUint(r.Offset, 10)
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(id)}
		if s.last != "" {
			opts = append(opts, jetstream.WithExpectLastMsgID(s.last))
		}
		f, err := s.js.PublishAsync(s.subject, r.Data, opts...)
		if err != nil {
			pubErr = s.failed(r.Offset, err)
			s.broken = true
			break
		}
		futs = append(futs, f)
		s.last = id
		if s.published != nil {
			s.published(i)
		}
	}
	s.inFlight++
	return func() (int, error) {
		defer func() { s.inFlight-- }()
		for i, f := range futs {
			var err error
			select {
			case <-f.Ok():
				continue
			case err = <-f.Err():
			case <-ctx.Done():
				err = ctx.Err()
			}
			s.broken = true
			return i, s.failed(batch[i].Offset, err)
		}
		if pubErr != nil {
			return len(futs), pubErr
		}
		return len(batch), nil
	}
}

// publishEach publishes the batch one message at a time, each after the
// acknowledgement of the one before, with ids of the sink's prefix.
func (s *JetStream) publishEach(ctx context.Context, batch []Record) (int, error) {
	for i, r := range batch {
		id := s.prefix + strconv.FormatUint(r.Offset, 10)
		if _, err := s.js.Publish(ctx, s.subject, r.Data, jetstream.WithMsgID(id)); err != nil {
			return i, s.failed(r.Offset, err)
		}
	}
	return len(batch), nil
}

// connected returns why nothing can be published now, when the connection
// is not up: nats.go refuses a message with headers on a connection that
// has not reached a server yet, and its error (headers not supported by
// this server) would blame the server's version for a server that is not
// there.
func (s *JetStream) connected() error {
	switch st := s.nc.Status(); st {
	case nats.CONNECTED:
		return nil
	case nats.CLOSED:
		return errorf("%s: %w", s.url, nats.ErrConnectionClosed)
	default:
		return errorf("not connected to %s (%s): %w", s.url, st, nats.ErrConnectionReconnecting)
	}
}

// failed says that publishing the message at offset failed with err.
func (s *JetStream) failed(offset uint64, err error) error {
	return errorf("publish offset %d to %s: %w", offset, s.subject, err)
}

// errAfterFailure refuses a batch published while an earlier one failed:
// it would be stored ahead of the messages to send again.
var errAfterFailure = errors.New("an earlier message failed; not sent")

// Close closes the connection.
func (s *JetStream) Close() error {
	s.nc.Close()
	return nil
}
