package benchmarks

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// smallScale returns the scale that runs w with about 1000 messages, fewer
// for large messages so the whole test stays fast.
func smallScale(w Workload) float64 {
	n := 1000
	if w.MsgSize >= 64<<10 {
		n = 40
	}
	return float64(n) / float64(w.N)
}

// TestAdapters runs every workload on every adapter with a small message
// count: each run checks order, count and content itself.
func TestAdapters(t *testing.T) {
	for _, impl := range Impls() {
		for _, w := range Workloads() {
			t.Run(impl.Name+"/"+w.Name, func(t *testing.T) {
				res, err := Run(impl, w, smallScale(w))
				if errors.Is(err, ErrUnsupported) {
					if impl.Note == "" {
						t.Fatalf("%s reports %s unsupported without a Note for the footnote", impl.Name, w.Name)
					}
					t.Skipf("n/a: %s", impl.Note)
				}
				if err != nil {
					t.Fatal(err)
				}
				if want := w.Messages(smallScale(w)); res.Messages != want {
					t.Fatalf("ran %d messages, want %d", res.Messages, want)
				}
				if res.Elapsed <= 0 {
					t.Fatalf("elapsed %v", res.Elapsed)
				}
			})
		}
	}
}

// TestAdaptersReopen checks that each adapter's queue is really persistent:
// messages enqueued before Close come back, in order, after reopening.
func TestAdaptersReopen(t *testing.T) {
	for _, impl := range Impls() {
		t.Run(impl.Name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{MsgSize: 64}
			q, err := impl.Open(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			buf := newPayload(cfg.MsgSize)
			for i := 0; i < 10; i++ {
				stamp(buf, uint64(i))
				if err := q.Enqueue(buf); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if q, err = impl.Open(dir, cfg); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = q.Close() }()
			for i := 0; i < 10; i++ {
				m, err := q.Dequeue()
				if err != nil {
					t.Fatalf("dequeue %d after reopen: %v", i, err)
				}
				if seq, err := readStamp(m, cfg.MsgSize); err != nil || seq != uint64(i) {
					t.Fatalf("message %d after reopen: seq %d, err %v", i, seq, err)
				}
			}
			if _, err := q.Dequeue(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("after draining: %v, want ErrEmpty", err)
			}
		})
	}
}

// faultyQueue is an in-memory queue that misbehaves on purpose, to prove the
// workloads fail loudly instead of reporting a time.
type faultyQueue struct {
	mu    sync.Mutex
	msgs  [][]byte
	n     int
	fault string // "lose", "dup", "swap", "truncate" or "" (correct)
}

func (f *faultyQueue) Enqueue(m []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	c := bytes.Clone(m)
	switch {
	case f.fault == "lose" && f.n == 7:
		return nil
	case f.fault == "dup" && f.n == 7:
		f.msgs = append(f.msgs, c, bytes.Clone(c))
		return nil
	case f.fault == "swap" && f.n == 7 && len(f.msgs) > 0:
		last := len(f.msgs) - 1
		f.msgs = append(f.msgs[:last], c, f.msgs[last])
		return nil
	case f.fault == "truncate" && f.n == 7:
		c = c[:len(c)-1]
	}
	f.msgs = append(f.msgs, c)
	return nil
}

func (f *faultyQueue) Dequeue() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.msgs) == 0 {
		return nil, ErrEmpty
	}
	m := f.msgs[0]
	f.msgs = f.msgs[1:]
	return m, nil
}

func (f *faultyQueue) Sync() error  { return nil }
func (f *faultyQueue) Close() error { return nil }

func TestWorkloadsCatchFaults(t *testing.T) {
	defer func(d time.Duration) { stallTimeout = d }(stallTimeout)
	stallTimeout = 200 * time.Millisecond
	for _, w := range Workloads() {
		for _, fault := range []string{"", "lose", "dup", "swap", "truncate"} {
			if fault == "swap" && strings.HasPrefix(w.Name, "concurrent-") {
				// Two consumers can each take one of the swapped pair, and
				// then no order is observable: only per-producer order is.
				continue
			}
			t.Run(w.Name+"/"+fault, func(t *testing.T) {
				impl := Impl{Name: "faulty-" + fault, Open: func(string, Config) (Queue, error) {
					return &faultyQueue{fault: fault}, nil
				}}
				_, err := Run(impl, w, 200/float64(w.N))
				if fault == "" {
					if err != nil {
						t.Fatalf("correct queue failed: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatalf("fault %q went unnoticed", fault)
				}
				t.Logf("caught: %v", err)
			})
		}
	}
}

func TestTableMarksFailuresAndNA(t *testing.T) {
	ws := Workloads()[:1]
	is := []Impl{
		{Name: BaselineName, Label: "base", Module: "m/base"},
		{Name: "broken", Label: "broken", Module: "m/broken"},
		{Name: "lazy", Label: "lazy", Module: "m/lazy", Note: "cannot sync"},
	}
	tb := NewTable(ws, is, 2)
	for r := 0; r < 2; r++ {
		tb.Add(ws[0], is[0], r, Result{Messages: 10, Bytes: 1280, Elapsed: 1000}, nil)
	}
	tb.Add(ws[0], is[1], 0, Result{}, errors.New("LOST MESSAGES"))
	tb.Add(ws[0], is[2], 0, Result{}, ErrUnsupported)
	if !tb.Failed() {
		t.Fatal("Failed() = false with a failed run")
	}
	if !tb.Skip(ws[0], is[1]) || !tb.Skip(ws[0], is[2]) || tb.Skip(ws[0], is[0]) {
		t.Fatal("Skip wrong")
	}
	var out strings.Builder
	if err := tb.Markdown(&out, map[string]string{"m/base": "v1"}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"| 100 | 1280 |", "1.00x", "FAIL [1]", "n/a [2]", "LOST MESSAGES", "cannot sync", "m/base v1"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}
