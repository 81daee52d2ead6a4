package forward

import (
	"errors"
	"io"
	"net/url"
	"strings"
)

// ErrBadSink is wrapped by the errors of a sink address or configuration
// that cannot work: an unknown scheme, no host, no topic or subject.
var ErrBadSink = errors.New(prefix + "bad sink")

// ClosingSink is a Sink that holds a connection until Close.
type ClosingSink interface {
	Sink
	io.Closer
}

// Dial returns the sink that addr names, with the defaults of its kind:
//
//	kafka://HOST:PORT[,HOST:PORT...]/TOPIC   NewKafka: the seed brokers and the topic
//	nats://[USER:PASS@]HOST:PORT/SUBJECT     NewJetStream: the server and the subject
//	nats://HOST:PORT/SUBJECT?msg-id-prefix=P    the same, JetStreamConfig.MsgIDPrefix P
//
// The caller closes it.
func Dial(addr string) (ClosingSink, error) {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, errorf("%w %q: want kafka://HOST:PORT/TOPIC or nats://HOST:PORT/SUBJECT", ErrBadSink, addr)
	}
	hosts, dest, _ := strings.Cut(rest, "/")
	dest, query, _ := strings.Cut(dest, "?")
	prefix := ""
	if query != "" {
		v, err := url.ParseQuery(query)
		if err != nil {
			return nil, errorf("%w %q: %w", ErrBadSink, addr, err)
		}
		for k := range v {
			if k != "msg-id-prefix" || scheme != "nats" {
				return nil, errorf("%w %q: unknown parameter %q", ErrBadSink, addr, k)
			}
		}
		prefix = v.Get("msg-id-prefix")
	}
	switch {
	case hosts == "":
		return nil, errorf("%w %q: no host", ErrBadSink, addr)
	case dest == "":
		return nil, errorf("%w %q: no topic or subject after the host", ErrBadSink, addr)
	}
	switch scheme {
	case "kafka":
		return NewKafka(strings.Split(hosts, ","), dest)
	case "nats":
		return NewJetStream(JetStreamConfig{URL: "nats://" + hosts, Subject: dest, MsgIDPrefix: prefix})
	default:
		return nil, errorf("%w %q: unknown scheme %q (kafka or nats)", ErrBadSink, addr, scheme)
	}
}
