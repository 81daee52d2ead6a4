package forward

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// OffsetHeader is the Kafka record header that carries a message's queue
// offset, in decimal: a consumer of the topic drops a re-sent message by
// it.
const OffsetHeader = "bigqueue-offset"

// Kafka is a Sink into a Kafka topic. Each record carries its queue
// offset in the OffsetHeader header. Every record goes to partition 0:
// Kafka keeps order only within a partition, and the queue's order is the
// contract (pass kgo.RecordPartitioner to NewKafka to spread records over
// the partitions instead, each partition then in queue order). The client
// is franz-go's, with its defaults otherwise: an idempotent producer that
// waits for every in-sync replica, each partition written in order and
// without gaps (when a record fails, the ones after it on its partition
// fail too). A re-sent batch can therefore repeat records that were
// written after the first failure: these are the duplicates of the
// uncommitted window. The topic is created by its owner, not by the
// forwarder.
type Kafka struct {
	cl    *kgo.Client
	topic string
	recs  []kgo.Record
	errs  []error
}

// DefaultDeliveryTimeout is how long the Kafka sink lets franz-go retry a
// record before Send gives up on it; the Forwarder then retries the batch
// from that record after its backoff. Pass kgo.RecordDeliveryTimeout to
// NewKafka to change it.
const DefaultDeliveryTimeout = 10 * time.Second

// NewKafka returns a sink that produces to topic through the brokers at
// seeds (host:port). opts are franz-go client options, applied after the
// sink's own (seeds, topic, partition 0, DefaultDeliveryTimeout), so they
// can override them: a partitioner, TLS, SASL. The client connects
// lazily; while the brokers are away, Send fails after the delivery
// timeout, or as soon as its context ends, and the Forwarder retries.
func NewKafka(seeds []string, topic string, opts ...kgo.Opt) (*Kafka, error) {
	if topic == "" {
		return nil, errorf("%w: kafka sink for %v: no topic", ErrBadSink, seeds)
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		// Records name their partition, and all name 0 (see Kafka).
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(DefaultDeliveryTimeout),
		// A record whose request went out and got no answer (a broker
		// gone away) may be failed too, so that Send returns after the
		// delivery timeout or when its context ends (SIGTERM). The
		// Forwarder sends it again, and the broker may then hold it
		// twice: a duplicate of the uncommitted window, which the
		// contract allows, for a forwarder that always stops in time.
		kgo.AllowIdempotentProduceCancellation(),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, errorf("kafka client for %v: %w", seeds, err)
	}
	return &Kafka{cl: cl, topic: topic}, nil
}

// Send produces the batch and waits for every record's acknowledgement;
// acked counts the records from the start of the batch acknowledged
// before the first failure.
func (s *Kafka) Send(ctx context.Context, batch []Record) (int, error) {
	if cap(s.recs) < len(batch) {
		s.recs = make([]kgo.Record, len(batch))
		s.errs = make([]error, len(batch))
	}
	recs, errs := s.recs[:len(batch)], s.errs[:len(batch)]
	var wg sync.WaitGroup
	wg.Add(len(batch))
	for i, r := range batch {
		// Every record of the last batch has been answered (wg.Wait
		// below), so the client holds none of them any more.
		recs[i] = kgo.Record{
			Value:   r.Data,
			Headers: []kgo.RecordHeader{{Key: OffsetHeader, Value: strconv.AppendUint(nil, r.Offset, 10)}},
		}
		errs[i] = nil
		s.cl.Produce(ctx, &recs[i], func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	// Send now rather than after the client's linger: nothing else is
	// coming until this batch is acknowledged.
	_ = s.cl.Flush(ctx) // its error is ctx's, which the records' errors say
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return i, errorf("produce offset %d to %s: %w", batch[i].Offset, s.topic, err)
		}
	}
	return len(batch), nil
}

// Close closes the client; records still buffered are failed.
func (s *Kafka) Close() error {
	s.cl.Close()
	return nil
}
