package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// sizeUnits are the suffixes parseSize accepts, lower-cased, and what each
// multiplies by. One rule for all of them: K, KB and KiB all mean 1024.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
}

// errSizeSyntax is what parseSize says about a string it cannot read.
var errSizeSyntax = errors.New("want a whole number of bytes, optionally followed by K, M or G (powers of 1024: 64K, 1MiB, 1G)")

// parseSize reads a size in bytes: a decimal number with an optional unit,
// "4096", "64K", "64k", "64KiB", "64KB", "1M", "1MiB", "1G", "1GiB". Every
// unit is a power of 1024, whatever its spelling, and the case of the
// unit does not matter.
func parseSize(s string) (int, error) {
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	if digits == 0 {
		return 0, errSizeSyntax
	}
	unit, ok := sizeUnits[strings.ToLower(s[digits:])]
	if !ok {
		return 0, errSizeSyntax
	}
	n, err := strconv.ParseInt(s[:digits], 10, 64)
	if err != nil || n > math.MaxInt/unit {
		return 0, errors.New("too large")
	}
	return int(n * unit), nil
}

// maxArenaSize is the largest arena size the library reopens a queue
// with: a queue made with a larger one reads as damaged.
const maxArenaSize = 1 << 40

// checkArenaSize says what is wrong with size as the arena size of a new
// queue, if anything: it must lie between the page size and 1 TiB.
func checkArenaSize(size int) error {
	if page := os.Getpagesize(); size < page {
		return fmt.Errorf("-arena-size %s: too small, the minimum is the page size, %d bytes", formatSize(size), page)
	}
	if size > maxArenaSize {
		return fmt.Errorf("-arena-size %s: too large, the maximum is 1 TiB (1024G)", formatSize(size))
	}
	return nil
}

// formatSize writes n in the largest unit that divides it: "128MiB",
// "64KiB", "1000".
func formatSize(n int) string {
	for _, u := range []struct {
		suffix string
		size   int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.Itoa(n/u.size) + u.suffix
		}
	}
	return strconv.Itoa(n)
}

// sizeFlag is a flag.Value holding a size that parseSize reads.
type sizeFlag int

func (s *sizeFlag) String() string { return formatSize(int(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}
