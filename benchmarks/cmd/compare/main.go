// Command compare runs the same workloads on bigqueue and on other Go
// persistent queues, interleaved over several rounds, and prints one markdown
// table of medians to stdout. Progress goes to stderr.
//
//	go run ./cmd/compare [-rounds 5] [-scale 1] [-only bigqueue,reference] [-workloads fifo-4KiB]
//
// It exits with status 1 if any implementation lost, duplicated, reordered or
// damaged a message, or returned an error: such a run gets FAIL, not a time.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/seed-ff72c416/bigqueue/benchmarks"
)

func main() {
	rounds := flag.Int("rounds", 5, "interleaved rounds; the table reports the median")
	scale := flag.Float64("scale", 1, "multiplies every workload's message count")
	only := flag.String("only", "", "comma list of implementations (default all): "+
		strings.Join(names(benchmarks.Impls()), ","))
	workloads := flag.String("workloads", "", "comma list of workloads (default all): "+
		strings.Join(wnames(benchmarks.Workloads()), ","))
	seed := flag.Uint64("seed", 1, "seed of the per-round shuffle of implementations")
	flag.Parse()

	if err := run(*rounds, *scale, *only, *workloads, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(rounds int, scale float64, only, wlist string, seed uint64) error {
	if rounds < 1 {
		return fmt.Errorf("-rounds must be at least 1, got %d", rounds)
	}
	if scale <= 0 {
		return fmt.Errorf("-scale must be positive, got %v", scale)
	}
	impls, err := benchmarks.SelectImpls(only)
	if err != nil {
		return err
	}
	ws, err := benchmarks.SelectWorkloads(wlist)
	if err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "compare: %d rounds, scale %g, %d implementations, %d workloads, GOMAXPROCS %d\n",
		rounds, scale, len(impls), len(ws), runtime.GOMAXPROCS(0))
	for _, w := range ws {
		fmt.Fprintf(os.Stderr, "  %-16s %6d messages of %d B (%s)\n", w.Name, w.Messages(scale), w.MsgSize, w.Desc)
	}

	table := benchmarks.NewTable(ws, impls, rounds)
	rng := rand.New(rand.NewPCG(seed, 0x62717565))
	start := time.Now()
	for r := 0; r < rounds; r++ {
		for _, w := range ws {
			order := append([]benchmarks.Impl(nil), impls...)
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			for _, impl := range order {
				if table.Skip(w, impl) {
					continue
				}
				t0 := time.Now()
				res, err := benchmarks.Run(impl, w, scale)
				table.Add(w, impl, r, res, err)
				prefix := fmt.Sprintf("[round %d/%d] %-16s %-16s", r+1, rounds, w.Name, impl.Name)
				switch {
				case err == nil:
					fmt.Fprintf(os.Stderr, "%s %10.0f ns/msg %8.1f MB/s %7.2f allocs/msg (%.2fs)\n",
						prefix, res.NsPerMsg(), res.MBPerSec(), res.AllocsPerMsg(), time.Since(t0).Seconds())
				case isUnsupported(err):
					fmt.Fprintf(os.Stderr, "%s n/a: %v\n", prefix, err)
				default:
					fmt.Fprintf(os.Stderr, "%s FAIL: %v\n", prefix, err)
				}
			}
		}
	}
	fmt.Fprintf(os.Stderr, "compare: done in %s\n", time.Since(start).Round(100*time.Millisecond))

	if err := table.Markdown(os.Stdout, versions()); err != nil {
		return err
	}
	if table.Failed() {
		return fmt.Errorf("at least one implementation FAILED a workload (see the footnotes)")
	}
	return nil
}

func isUnsupported(err error) bool {
	return errors.Is(err, benchmarks.ErrUnsupported)
}

// versions returns module path -> version from the binary's build info.
func versions() map[string]string {
	v := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, d := range bi.Deps {
		switch {
		case d.Replace != nil && d.Replace.Version == "", d.Version == "(devel)":
			v[d.Path] = "(local checkout)"
		case d.Replace != nil:
			v[d.Path] = d.Replace.Version
		default:
			v[d.Path] = d.Version
		}
	}
	return v
}

func names(is []benchmarks.Impl) []string {
	out := make([]string, len(is))
	for k, i := range is {
		out[k] = i.Name
	}
	return out
}

func wnames(ws []benchmarks.Workload) []string {
	out := make([]string, len(ws))
	for k, w := range ws {
		out[k] = w.Name
	}
	return out
}
