package bigqueue

import "sync"

// Populating ahead of the writer, off its path.
//
// The first write to a page of a file mapping is a page fault: the kernel
// finds or allocates the page-cache page, zeroes it, and maps it. For small
// messages that is half the CPU time of an Enqueue when the writer takes
// the fault itself. Instead the writer hands the range it will fill next
// (allocated already, see prepareWrite) to a populator goroutine, which
// faults it in with MADV_POPULATE_WRITE a step at a time, on another core,
// and goes on writing. Nothing waits for the populator: a writer that
// catches up with it takes the remaining faults itself, as it would
// without one; a page both touch is faulted once, under the kernel's page
// lock.
//
// The one thing the populator must never do is touch a mapping after it is
// unmapped (the address range could by then hold another mapping). It
// touches a mapping only between taking a step and reporting it done, both
// under mu, and only an arena it was handed and that was not dropped since;
// every unmap of a writable arena drops it first (arenaManager.unpopulate),
// which waits for a step under way on it.
//
// On kernels without MADV_POPULATE_WRITE (before Linux 5.14) and off Linux,
// the first call fails, populateOff is set, and the writer faults its own
// pages from then on.
//
// The populator also clears, when it has nothing to populate, the page
// tables of the arena the writer will unmap next. Under a cap on mapped
// arenas (SetMaxInMemArenas; 3 by default) the writer unmaps the least
// recently used arena each time it starts a new one, and unmapping 64 MiB
// of written pages took 1.5 ms here, most of it tearing down their page
// table entries; after MADV_DONTNEED on the range, 15 µs. As it starts an
// arena, the writer hands over the one it will unmap when it starts the
// next (arenaManager.unmapNext).
// Dropping a shared file mapping's entries loses nothing: the pages stay in
// the page cache, dirty until written back, and a reader of the arena in
// the meantime faults them in again.

// populateAhead is how far ahead of the writer pages are faulted in; the
// writer hands over the next stretch when less than half of it is left.
// A queue just opened starts at firstStride and doubles up to it
// (arenaManager.stride).
const (
	populateAhead = 1 << 20
	firstStride   = 64 << 10
)

// populateStep is how much the populator faults in per system call: a
// drop waits for at most one step (about 16 pages, some tens of µs).
const populateStep = 64 << 10

// populateInline is the size of range below which the writer faults it
// in itself, in one call, rather than hand it over: with small arenas
// (a range never larger than the arena), waking the populator for each
// costs more than the faults (BenchmarkEnqueue with 4 KiB arenas was 10-20%
// slower with every range handed over).
const populateInline = 256 << 10

// unmapAheadStep is how much of an arena's page tables the populator
// clears per system call: a drop waits for at most one step (about 0.1 ms).
const unmapAheadStep = 4 << 20

// unmapAheadMin is the smallest arena whose page tables are cleared ahead:
// a smaller one is unmapped quickly anyway, and handing it over would wake
// the populator at every arena.
const unmapAheadMin = 1 << 20

// unmapAheadFunc is unmapAhead (populate_linux.go); a variable so that tests
// can watch the populator's steps.
var unmapAheadFunc = unmapAhead

// pageMask rounds an offset down to a page boundary (4 KiB: madvise wants
// a page-aligned start; a larger page size only makes it round further).
const pageMask = 4096 - 1

// populateFunc is populate (populate_linux.go); a variable so that tests
// can watch and hold the populator's steps.
var populateFunc = populate

// testHookDropWaits, when set by a test, is called (under the populator's
// mutex) each time drop waits for a step under way.
var testHookDropWaits func()

// A populator faults in, on its own goroutine, the range of an arena that
// the writer will fill next, and, when idle, clears the page tables of the
// arena it will unmap next.
type populator struct {
	mu       sync.Mutex
	work     sync.Cond // signalled when there is a range to populate, or on stop
	stepDone sync.Cond // broadcast when a step ends

	// The range to populate: [from, to) of data, the mapping of arena a.
	a        *arena
	data     []byte
	from, to int

	// The arena whose page tables to clear, from offset clearFrom of its
	// mapping clearData, when there is nothing to populate; or nil.
	clearA    *arena
	clearData []byte
	clearFrom int

	busy    *arena // the arena of the step under way, or nil
	stopped bool
	done    chan struct{} // closed when the goroutine has returned
}

// newPopulator starts a populator.
func newPopulator() *populator {
	p := &populator{done: make(chan struct{})}
	p.work.L = &p.mu
	p.stepDone.L = &p.mu
	go p.run()
	return p
}

func (p *populator) run() {
	defer close(p.done)
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for !p.stopped && p.from >= p.to && p.clearA == nil {
			p.work.Wait()
		}
		if p.stopped {
			return
		}
		if p.from >= p.to {
			p.clearStep()
			continue
		}
		data, from := p.data, p.from
		to := min(p.to, from+populateStep)
		p.from = to
		var ok bool
		p.step(p.a, func() { ok = populateFunc(data[from:to]) })
		if !ok {
			populateOff.Store(true)
			p.a, p.data, p.from, p.to = nil, nil, 0, 0
		}
	}
}

// clearStep clears the page tables of a step of the arena handed to
// unmapAhead; called with mu held, it releases it during the system call.
func (p *populator) clearStep() {
	a, data, from := p.clearA, p.clearData, p.clearFrom
	to := min(len(data), from+unmapAheadStep)
	p.clearFrom = to
	if to >= len(data) {
		p.clearA, p.clearData = nil, nil
	}
	p.step(a, func() { unmapAheadFunc(data[from:to]) })
}

// step runs call, a system call on the mapping of arena a, with mu (held by
// the caller) released and a marked busy, for drop to wait on.
func (p *populator) step(a *arena, call func()) {
	p.busy = a
	p.mu.Unlock()
	call()
	p.mu.Lock()
	p.busy = nil
	p.stepDone.Broadcast()
}

// unmapAhead hands arena a, which the writer will unmap next, to the
// populator, to clear its page tables when it has nothing to populate.
func (p *populator) unmapAhead(a *arena) {
	p.mu.Lock()
	p.clearA, p.clearData, p.clearFrom = a, a.data, 0
	p.mu.Unlock()
	p.work.Signal()
}

// post hands [from, to) of arena a, mapped as data, to the populator. A
// range of a it has not finished is taken in (the writer asks for the next
// stretch when it comes within half a stride of the end of the last one,
// and with a small stride that can be before the populator is done).
func (p *populator) post(a *arena, from, to int) {
	p.mu.Lock()
	if p.a == a && p.from < p.to {
		from = min(from, p.from)
	}
	p.a, p.data, p.from, p.to = a, a.data, from, to
	p.mu.Unlock()
	p.work.Signal()
}

// drop makes sure the populator no longer touches arena a: it forgets a's
// range and a's clearing, and waits for a step under way on a to end. The caller may then
// unmap a.
func (p *populator) drop(a *arena) {
	p.mu.Lock()
	if p.a == a {
		p.a, p.data, p.from, p.to = nil, nil, 0, 0
	}
	if p.clearA == a {
		p.clearA, p.clearData = nil, nil
	}
	for p.busy == a {
		if testHookDropWaits != nil {
			testHookDropWaits()
		}
		p.stepDone.Wait()
	}
	p.mu.Unlock()
}

// stop ends the populator, after its step under way, and waits for it.
func (p *populator) stop() {
	p.mu.Lock()
	p.stopped = true
	p.a, p.data, p.from, p.to = nil, nil, 0, 0
	p.clearA, p.clearData = nil, nil
	p.mu.Unlock()
	p.work.Signal()
	<-p.done
}
