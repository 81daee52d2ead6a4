package bigqueue

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPopulatorDropWaitsForStep: drop returns only once the step under way
// on the arena has ended, and the populator touches the arena no more: the
// caller may unmap it then.
func TestPopulatorDropWaitsForStep(t *testing.T) {
	a := &arena{id: 7, data: make([]byte, 4*populateStep)}
	started, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	var mu sync.Mutex
	var calls int
	var stepEnded, dropped, touchedAfterDrop bool
	orig := populateFunc
	populateFunc = func(b []byte) bool {
		mu.Lock()
		calls++
		first := calls == 1
		touchedAfterDrop = touchedAfterDrop || dropped
		mu.Unlock()
		if first {
			close(started)
			<-release
			mu.Lock()
			stepEnded = true
			mu.Unlock()
		}
		return true
	}
	waited := false
	testHookDropWaits = func() {
		waited = true
		releaseOnce.Do(func() { close(release) })
	}
	t.Cleanup(func() { populateFunc, testHookDropWaits = orig, nil })

	p := newPopulator()
	p.post(a, 0, len(a.data))
	<-started
	p.drop(a)
	mu.Lock()
	dropped = true
	ended := stepEnded
	mu.Unlock()
	p.stop()

	require.True(t, waited, "drop waited for the step under way")
	require.True(t, ended, "the step had ended when drop returned")
	mu.Lock()
	defer mu.Unlock()
	require.False(t, touchedAfterDrop, "no step on the arena after drop")
	require.Equal(t, 1, calls, "the rest of the arena's range was forgotten")
}

// TestPopulatorPostReplacesRange: a range posted for another arena replaces
// the one before (the writer has moved on), and a range posted again for the
// same arena does not go back over what was done.
func TestPopulatorPostReplacesRange(t *testing.T) {
	a := &arena{id: 1, data: make([]byte, 8*populateStep)}
	b := &arena{id: 2, data: make([]byte, 8*populateStep)}
	hold, held := make(chan struct{}), make(chan struct{}, 16)
	type step struct {
		data *byte
		n    int
	}
	var mu sync.Mutex
	var steps []step
	orig := populateFunc
	populateFunc = func(s []byte) bool {
		mu.Lock()
		steps = append(steps, step{&s[0], len(s)})
		mu.Unlock()
		held <- struct{}{}
		<-hold
		return true
	}
	t.Cleanup(func() { populateFunc = orig })

	p := newPopulator()
	p.post(a, 0, 4*populateStep)
	<-held // step [0, 1 step) of a under way
	p.post(a, 0, 6*populateStep)
	p.post(b, 2*populateStep, 3*populateStep)
	close(hold)
	waitPopulated(p)
	p.stop()

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []step{
		{&a.data[0], populateStep},
		{&b.data[2*populateStep], populateStep},
	}, steps)
}

// waitPopulated waits until p has nothing left to do.
func waitPopulated(p *populator) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.from < p.to || p.clearA != nil || p.busy != nil {
		p.stepDone.Wait()
	}
}

// TestPopulatorClearsWhenIdle: an arena handed over to have its page
// tables cleared is cleared a step at a time once there is nothing to
// populate (populating comes first); drop stops it, waiting for the step
// under way, and nothing of it is touched afterwards.
func TestPopulatorClearsWhenIdle(t *testing.T) {
	a := &arena{id: 1, data: make([]byte, 2*populateStep)}
	b := &arena{id: 2, data: make([]byte, 4*unmapAheadStep)}
	type step struct {
		kind string
		data *byte
		n    int
	}
	var mu sync.Mutex
	var steps []step
	var dropped, touchedAfterDrop bool
	hold, held := make(chan struct{}), make(chan struct{}, 16)
	record := func(kind string, s []byte) {
		mu.Lock()
		steps = append(steps, step{kind, &s[0], len(s)})
		touchedAfterDrop = touchedAfterDrop || (dropped && kind == "clear")
		n := len(steps)
		mu.Unlock()
		if n == 1 || kind == "clear" && n == 4 {
			held <- struct{}{} // the first step, and the second clearing step
			<-hold
		}
	}
	origP, origC := populateFunc, unmapAheadFunc
	populateFunc = func(s []byte) bool { record("populate", s); return true }
	unmapAheadFunc = func(s []byte) { record("clear", s) }
	t.Cleanup(func() { populateFunc, unmapAheadFunc = origP, origC })

	p := newPopulator()
	p.post(a, 0, len(a.data))
	<-held // populating a's first step
	p.unmapAhead(b)
	hold <- struct{}{}
	<-held // clearing b's second step
	waits := false
	testHookDropWaits = func() {
		waits = true
		hold <- struct{}{}
	}
	t.Cleanup(func() { testHookDropWaits = nil })
	p.drop(b)
	mu.Lock()
	dropped = true
	mu.Unlock()
	waitPopulated(p)
	p.stop()

	mu.Lock()
	defer mu.Unlock()
	require.True(t, waits, "drop waited for the clearing step under way")
	require.False(t, touchedAfterDrop)
	require.Equal(t, []step{
		{"populate", &a.data[0], populateStep},
		{"populate", &a.data[populateStep], populateStep},
		{"clear", &b.data[0], unmapAheadStep},
		{"clear", &b.data[unmapAheadStep], unmapAheadStep},
	}, steps)
}
