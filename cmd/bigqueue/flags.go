package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdFlags is the flag set of one subcommand together with the text of its
// usage message. Parse errors are returned, never printed by the flag
// package, so that report can print them as one line.
type cmdFlags struct {
	*flag.FlagSet
	synopsis string // arguments after the command name, e.g. "[-n N] DIR"
	about    string // what the command does, printed above the flags
}

// newFlags returns the flag set of the subcommand name.
func newFlags(name, synopsis, about string) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, synopsis: synopsis, about: about}
}

// printUsage writes the subcommand's usage message to w.
func (f *cmdFlags) printUsage(w io.Writer) {
	_, _ = fmt.Fprintf(w, "usage: bigqueue %s %s\n\n%s\n", f.Name(), f.synopsis, strings.TrimSpace(f.about))
	hasFlags := false
	f.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		_, _ = fmt.Fprint(w, "\nflags:\n")
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
}

// parse parses args and returns the positional arguments, which must be
// exactly as many as names (used in the error message). Flags may also come
// after the positional arguments ("dequeue DIR -n 3"), except after "--".
func (f *cmdFlags) parse(args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequest{flags: f}
			}
			return nil, f.usageErr(err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < len(names):
		return nil, f.usageErr(errorf("missing %s", names[len(pos)]))
	case len(pos) > len(names):
		return nil, f.usageErr(errorf("unexpected argument %q", pos[len(names)]))
	}
	return pos, nil
}

// usageErr wraps err as a usage error of this subcommand.
func (f *cmdFlags) usageErr(err error) error {
	return &usageError{cmd: f.Name(), err: err}
}

// helpRequest is returned by parse for -h or -help: report prints the
// usage message to stdout and exits 0.
type helpRequest struct {
	flags *cmdFlags
}

func (h *helpRequest) Error() string { return "help requested" }

// usageError is a command line that does not parse: report prints it as one
// line with a pointer to -h and exits 2.
type usageError struct {
	cmd string
	err error
}

func (u *usageError) Error() string { return u.cmd + ": " + u.err.Error() }

func (u *usageError) Unwrap() error { return u.err }

// oneLine folds a multi-line error message into one line.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}
