package benchmarks

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Table collects the results of interleaved rounds and renders them as one
// markdown table: one row per workload and implementation, medians over the
// rounds.
type Table struct {
	workloads []Workload
	impls     []Impl
	rounds    int
	cells     map[cellKey]*cell
}

type cellKey struct{ workload, impl string }

type cell struct {
	byRound     []*Result // nil where the round has no result
	err         error     // first failure; the implementation is not run again
	unsupported bool
}

// NewTable returns an empty table for the given workloads, implementations
// and number of rounds.
func NewTable(ws []Workload, is []Impl, rounds int) *Table {
	t := &Table{workloads: ws, impls: is, rounds: rounds, cells: map[cellKey]*cell{}}
	for _, w := range ws {
		for _, i := range is {
			t.cells[cellKey{w.Name, i.Name}] = &cell{byRound: make([]*Result, rounds)}
		}
	}
	return t
}

// Skip reports whether impl should not run w again: it failed or cannot run it.
func (t *Table) Skip(w Workload, impl Impl) bool {
	c := t.cells[cellKey{w.Name, impl.Name}]
	return c.err != nil || c.unsupported
}

// Add records the outcome of one run.
func (t *Table) Add(w Workload, impl Impl, round int, r Result, err error) {
	c := t.cells[cellKey{w.Name, impl.Name}]
	switch {
	case errors.Is(err, ErrUnsupported):
		c.unsupported = true
	case err != nil:
		if c.err == nil {
			c.err = err
		}
	default:
		r := r
		c.byRound[round] = &r
	}
}

// Failed reports whether any run failed (unsupported workloads do not count).
func (t *Table) Failed() bool {
	for _, c := range t.cells {
		if c.err != nil {
			return true
		}
	}
	return false
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Markdown writes the table, then its footnotes and the module versions.
// versions maps a module path to the version that was built.
func (t *Table) Markdown(out io.Writer, versions map[string]string) error {
	var b strings.Builder
	var notes []string
	note := func(text string) string {
		for k, n := range notes {
			if n == text {
				return fmt.Sprintf("[%d]", k+1)
			}
		}
		notes = append(notes, text)
		return fmt.Sprintf("[%d]", len(notes))
	}

	b.WriteString("| workload | implementation | ns/msg | MB/s | allocs/msg | time vs bigqueue |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|\n")
	for _, w := range t.workloads {
		base := t.cells[cellKey{w.Name, BaselineName}]
		for _, impl := range t.impls {
			c := t.cells[cellKey{w.Name, impl.Name}]
			label := impl.Label
			row := func(ns, mbs, allocs, ratio string) {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", w.Name, label, ns, mbs, allocs, ratio)
			}
			switch {
			case c.err != nil:
				row("FAIL "+note(fmt.Sprintf("%s on %s failed: %v", impl.Name, w.Name, c.err)), "–", "–", "–")
				continue
			case c.unsupported:
				why := impl.Note
				if why == "" {
					why = "not supported"
				}
				row("n/a "+note(impl.Name+": "+why), "–", "–", "–")
				continue
			}
			var ns, allocs, ratios []float64
			for r, res := range c.byRound {
				if res == nil {
					continue
				}
				ns = append(ns, res.NsPerMsg())
				allocs = append(allocs, res.AllocsPerMsg())
				if base != nil && base.byRound[r] != nil {
					ratios = append(ratios, res.NsPerMsg()/base.byRound[r].NsPerMsg())
				}
			}
			if len(ns) == 0 {
				row("–", "–", "–", "–")
				continue
			}
			mns := median(ns)
			ratio := "–"
			if len(ratios) > 0 {
				ratio = fmt.Sprintf("%.2fx", median(ratios))
			}
			row(fmtNum(mns), fmtNum(float64(w.MsgSize)*1e3/mns), fmtNum(median(allocs)), ratio)
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for k, n := range notes {
			fmt.Fprintf(&b, "[%d] %s\n", k+1, n)
		}
	}
	b.WriteString("\nVersions:")
	seen := map[string]bool{}
	for _, impl := range t.impls {
		if seen[impl.Module] {
			continue
		}
		seen[impl.Module] = true
		v := versions[impl.Module]
		if v == "" {
			v = "unknown"
		}
		fmt.Fprintf(&b, " %s %s;", impl.Module, v)
	}
	b.WriteString("\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// fmtNum prints three significant digits at most, no exponent.
func fmtNum(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}
