package forward

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDial(t *testing.T) {
	for _, addr := range []string{
		"localhost:4222/events",                     // no scheme
		"amqp://localhost/events",                   // unknown scheme
		"kafka:///events",                           // no host
		"kafka://localhost:9092",                    // no topic
		"nats://localhost:4222/",                    // no subject
		"nats://localhost:4222/e?prefix=x",          // unknown parameter
		"kafka://localhost:9092/e?msg-id-prefix=x",  // not for Kafka
		"nats://localhost:4222/e?msg-id-prefix=%zz", // bad escape
	} {
		_, err := Dial(addr)
		require.ErrorIs(t, err, ErrBadSink, addr)
		require.ErrorContains(t, err, addr)
	}

	// Neither connects before it sends: a cluster that is not up yet is
	// one that is away.
	s, err := Dial("kafka://127.0.0.1:1,127.0.0.1:2/events")
	require.NoError(t, err)
	require.IsType(t, &Kafka{}, s)
	require.Equal(t, "events", s.(*Kafka).topic)
	require.NoError(t, s.Close())
	s, err = Dial("nats://127.0.0.1:1/events.a")
	require.NoError(t, err)
	require.IsType(t, &JetStream{}, s)
	require.Equal(t, "events.a", s.(*JetStream).subject)
	require.Empty(t, s.(*JetStream).prefix)
	require.NoError(t, s.Close())
	s, err = Dial("nats://127.0.0.1:1/events.a?msg-id-prefix=host-a-")
	require.NoError(t, err)
	require.Equal(t, "events.a", s.(*JetStream).subject)
	require.Equal(t, "host-a-", s.(*JetStream).prefix)
	require.NoError(t, s.Close())
}
