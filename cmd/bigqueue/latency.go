package main

import (
	"slices"
	"time"
)

// percentiles are the latency quantiles bench reports, besides the maximum.
var percentiles = []struct {
	label string
	q     float64
}{
	{"p50", 0.50},
	{"p90", 0.90},
	{"p99", 0.99},
	{"p99.9", 0.999},
}

// latencySummary is the distribution of one phase's per-operation times.
type latencySummary struct {
	quantiles []time.Duration // one per entry of percentiles
	max       time.Duration
}

// summarize sorts lat in place and returns its percentiles by the
// nearest-rank method: the q quantile is the smallest sample that at least
// q of the samples are less than or equal to. lat must not be empty.
func summarize(lat []time.Duration) latencySummary {
	slices.Sort(lat)
	s := latencySummary{max: lat[len(lat)-1]}
	for _, p := range percentiles {
		s.quantiles = append(s.quantiles, lat[nearestRank(len(lat), p.q)])
	}
	return s
}

// nearestRank returns the index in a sorted sample of n values of its q
// quantile (0 < q <= 1): ceil(q*n)-1, clamped to the sample.
func nearestRank(n int, q float64) int {
	// Computed in integers where possible: q*n in floating point can land
	// just above an integer (0.9*10 = 9.000000000000002) and skip a rank.
	perMille := int(q*1000 + 0.5)
	rank := (perMille*n + 999) / 1000
	return min(max(rank-1, 0), n-1)
}

// A monoClock reads the monotonic clock alone, as a duration since it was
// made: one clock read, where time.Now takes two (the wall clock, then the
// monotonic one). Around a 100 ns call the difference shows.
type monoClock struct{ base time.Time }

func newMonoClock() monoClock { return monoClock{base: time.Now()} }

func (c monoClock) now() time.Duration { return time.Since(c.base) }

// timerOverhead estimates what reading the clock twice around an operation
// adds to each measured latency: the median of many empty measurements.
func timerOverhead() time.Duration {
	const samples = 1001
	lat := make([]time.Duration, samples)
	clk := newMonoClock()
	for i := range lat {
		t0 := clk.now()
		lat[i] = clk.now() - t0
	}
	slices.Sort(lat)
	return lat[samples/2]
}
