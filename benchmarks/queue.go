// Package benchmarks runs the same queue workloads on this project and on the
// persistent queues Go users pick today, so their costs can be set side by side.
//
// Every implementation is wrapped in an adapter that satisfies [Queue]; the
// workloads in workloads.go only ever talk to that interface. cmd/compare runs
// the workloads interleaved over several rounds and prints one markdown table.
// See README.md for what each adapter does and what "durable" means for each.
package benchmarks

import (
	"errors"
	"sort"
	"strings"
)

// Queue is the common shape of every implementation under test.
//
// Enqueue must not keep a reference to its argument after it returns: the
// workloads reuse one buffer per producer. Dequeue returns ErrEmpty when no
// message is available right now; the returned slice belongs to the caller.
// Enqueue and Dequeue must be safe for concurrent use (the concurrent workload
// runs two producers and two consumers on one Queue). Sync makes every
// enqueue before it durable, in the peer's own terms (see README.md).
type Queue interface {
	Enqueue(message []byte) error
	Dequeue() ([]byte, error)
	Sync() error
	Close() error
}

// AppendDequeuer is implemented by adapters that can dequeue into a buffer the
// caller owns. When a Queue implements it the workloads use it instead of
// Dequeue, passing each consumer's own buffer.
type AppendDequeuer interface {
	DequeueAppend(dst []byte) ([]byte, error)
}

// Config tells an adapter what the workload is about to do, so it can pick the
// options documented in README.md.
type Config struct {
	// MsgSize is the size of every message of the workload, in bytes.
	MsgSize int
	// Durable is set for the durable workload: the adapter keeps its library's
	// per-write sync off and relies on Sync being called every 100 messages,
	// or, where the library has no explicit sync, configures its own sync
	// cadence to the same 100 operations.
	Durable bool
}

// Errors shared by every adapter.
var (
	// ErrEmpty is returned by Queue.Dequeue when no message is available.
	ErrEmpty = errors.New("queue is empty")
	// ErrUnsupported is returned by an opener when the implementation cannot
	// run the workload described by its Config (e.g. it offers no sync).
	// The workload is then reported as n/a, never silently dropped.
	ErrUnsupported = errors.New("workload not supported by this implementation")
)

// Impl describes one implementation under test.
type Impl struct {
	// Name is the short name used by -only.
	Name string
	// Label is the row label in the table.
	Label string
	// Module is the Go module the implementation comes from; its version is
	// read from the build info of the running binary.
	Module string
	// Open opens a fresh queue in dir, which exists and is empty.
	Open func(dir string, cfg Config) (Queue, error)
	// Note explains a limitation; it is printed as a footnote when the
	// implementation is reported as n/a for a workload.
	Note string
}

// BaselineName is the implementation every ratio is relative to.
const BaselineName = "bigqueue"

var impls []Impl

// register is called from each adapter file's init function.
func register(i Impl) { impls = append(impls, i) }

// Impls returns every registered implementation, baseline first, then in a
// fixed order so tables from different runs line up.
func Impls() []Impl {
	order := map[string]int{
		"bigqueue": 0, "bigqueue-append": 1, "reference": 2,
		"dque": 3, "diskqueue": 4, "wal": 5, "goque": 6,
	}
	out := append([]Impl(nil), impls...)
	sort.SliceStable(out, func(a, b int) bool {
		ra, okA := order[out[a].Name]
		rb, okB := order[out[b].Name]
		if !okA {
			ra = len(order)
		}
		if !okB {
			rb = len(order)
		}
		return ra < rb
	})
	return out
}

// SelectImpls returns the implementations named in the comma list only, in
// the order of Impls. An empty list selects all of them.
func SelectImpls(only string) ([]Impl, error) {
	all := Impls()
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []Impl
	for _, i := range all {
		if want[i.Name] {
			out = append(out, i)
			delete(want, i.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		sort.Strings(unknown)
		return nil, errors.New("unknown implementation(s): " + strings.Join(unknown, ", ") +
			"; known: " + strings.Join(implNames(all), ", "))
	}
	return out, nil
}

func implNames(is []Impl) []string {
	names := make([]string, len(is))
	for k, i := range is {
		names[k] = i.Name
	}
	return names
}
