package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// defaultLabel stands for the default consumer, whose name is "", in text
// output.
const defaultLabel = "(default)"

// consumerLabel is how text output shows a consumer's name: "(default)" for
// the default consumer, the name itself when it is plain, and the name
// quoted when it holds spaces or unprintable characters or could be taken
// for the default consumer.
func consumerLabel(name string) string {
	if name == "" {
		return defaultLabel
	}
	plain := name != defaultLabel && strings.IndexFunc(name, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"'
	}) < 0
	if plain {
		return name
	}
	return strconv.Quote(name)
}

// humanBytes formats n bytes with a binary unit: "512 B", "64.0 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	value, exp := float64(n)/unit, 0
	for value >= unit && exp < 5 {
		value /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", value, "KMGTPE"[exp])
}

// sizeWithBytes formats n as "64.0 MiB (67108864 bytes)", or "512 bytes"
// when there is no larger unit to show.
func sizeWithBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%s (%d bytes)", humanBytes(n), n)
}

// humanDuration formats d with about three significant digits: "812ns",
// "1.25µs", "34.0ms", "2.00s".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return threeDigits(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return threeDigits(float64(d)/float64(time.Millisecond)) + "ms"
	default:
		return threeDigits(d.Seconds()) + "s"
	}
}

// threeDigits formats v, which is at least 1, with three significant
// digits, or more when v has more digits before the point.
func threeDigits(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// writeTable writes rows as aligned columns two spaces apart: the first
// column, which names the row, left-aligned and the others right-aligned.
func writeTable(w io.Writer, rows [][]string) error {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var line []byte
	for _, row := range rows {
		line = line[:0]
		for i, cell := range row {
			pad := widths[i] - utf8.RuneCountInString(cell)
			if i > 0 {
				line = append(line, "  "...)
				line = append(line, strings.Repeat(" ", pad)...)
			}
			line = append(line, cell...)
			if i == 0 && len(row) > 1 {
				line = append(line, strings.Repeat(" ", pad)...)
			}
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return nil
}

// count formats n things: "1 arena", "3 arenas", "0 messages".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
