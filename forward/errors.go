package forward

import (
	"fmt"
	"strings"
)

// Every error of this package says "bigqueue: forward: " once, at its
// start, as the library's errors say "bigqueue: " once (SPEC section 7),
// however deeply it wraps the library's errors or its own.
const (
	libPrefix = "bigqueue: "
	prefix    = libPrefix + "forward: "
)

// errorf is fmt.Errorf with this package's prefix, its error arguments
// printed without theirs.
func errorf(format string, args ...any) error {
	for i, a := range args {
		if err, ok := a.(error); ok && err != nil {
			args[i] = bare{err}
		}
	}
	return prefixed{fmt.Errorf(format, args...)}
}

// prefixed is an error whose message starts with prefix.
type prefixed struct{ err error }

func (e prefixed) Error() string { return prefix + e.err.Error() }
func (e prefixed) Unwrap() error { return e.err }

// bare is an error whose message loses this package's prefix, or the
// library's.
type bare struct{ err error }

func (e bare) Error() string {
	s := e.err.Error()
	if t, ok := strings.CutPrefix(s, prefix); ok {
		return t
	}
	return strings.TrimPrefix(s, libPrefix)
}
func (e bare) Unwrap() error { return e.err }
