#!/usr/bin/env bash
# Runs the reference's benchmarks on the reference and on this project,
# interleaved (reference, bigqueue, reference, ...) so that the drift of a
# noisy machine falls on both, then compares them with benchstat.
#   COUNT=10 BENCH='Benchmark(Enqueue|Dequeue)/ArenaSize-(4KB|128KB)/' ./run.sh
set -euo pipefail
cd "$(dirname "$0")"
COUNT=${COUNT:-10}
BENCH=${BENCH:-'Benchmark(Enqueue|Dequeue)/ArenaSize-(4KB|128KB|4MB)/|BenchmarkEnqueueDequeue'}
BENCHTIME=${BENCHTIME:-2000x}
OUT=${OUT:-$(mktemp -d)}
go test -c -o "$OUT/sidebyside.test" .
: >"$OUT/reference.txt"
: >"$OUT/bigqueue.txt"
for i in $(seq "$COUNT"); do
	for impl in reference bigqueue; do
		echo "round $i/$COUNT: $impl" >&2
		(cd "$OUT" && BQ_IMPL=$impl ./sidebyside.test -test.run '^$' -test.bench "$BENCH" \
			-test.benchtime "$BENCHTIME" -test.benchmem) | grep '^Benchmark' >>"$OUT/$impl.txt"
	done
done
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@latest
cd "$OUT" && benchstat reference.txt bigqueue.txt
