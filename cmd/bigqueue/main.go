// Command bigqueue inspects and drives a bigqueue directory from the shell:
// it enqueues messages from stdin, dequeues messages to stdout (consuming
// each only once it is written), forwards a named consumer to Kafka or
// NATS JetStream, lists and deletes named consumers, prints
// a queue's state, verifies every record on disk, and benchmarks the
// library.
//
// Run "bigqueue -h" for the list of subcommands and "bigqueue CMD -h" for
// the flags of one. Exit status: 0 on success (also for a dequeue ended by
// SIGINT or SIGTERM), 1 when the command failed (including a damaged queue
// found by check), 2 for a usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses of run.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// env is what a subcommand may touch of the outside world, so that tests
// can run every subcommand in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand: its name, a one-line summary for the main
// usage text, and the function that parses its arguments and runs it.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

// commands lists the subcommands in the order the usage text shows them.
var commands = []command{
	{"enqueue", "append the messages of stdin, one per line (or -format nul, len)", runEnqueue},
	{"dequeue", "write messages to stdout, then consume them; -follow waits for more", runDequeue},
	{"forward", "send a named consumer's messages to Kafka or NATS JetStream, following new ones", runForward},
	{"consumers", "list the named consumers with their offsets, or delete one", runConsumers},
	{"stat", "show arenas, disk use, head, tail and consumers", runStat},
	{"check", "verify every record kept in the queue", runCheck},
	{"bench", "measure enqueue and dequeue on a temporary queue", runBench},
}

func main() {
	// A closed pipe on stdout must come back as a write error that dequeue
	// reports, not kill the process silently halfway through a batch.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args (without the program name) and returns
// the exit status. Errors are written to stderr as one line.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(rest) > 0 {
			// "bigqueue help CMD" is "bigqueue CMD -h".
			name, rest = rest[0], []string{"-h"}
			break
		}
		printMainUsage(stdout)
		return exitOK
	}
	cmd := lookup(name)
	if cmd == nil {
		_, _ = fmt.Fprintf(stderr, "bigqueue: unknown command %q (run 'bigqueue -h' for the list)\n", name)
		return exitUsage
	}
	return report(e, cmd.run(e, rest))
}

// lookup returns the subcommand called name, or nil.
func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// report turns the error a subcommand returned into output and an exit
// status: help goes to stdout with status 0, a usage error and any other
// failure are one line on stderr.
func report(e *env, err error) int {
	var help *helpRequest
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &help):
		help.flags.printUsage(e.stdout)
		return exitOK
	case errors.As(err, &usage):
		_, _ = fmt.Fprintf(e.stderr, "bigqueue %s: %v (run 'bigqueue %s -h' for usage)\n",
			usage.cmd, usage.err, usage.cmd)
		return exitUsage
	default:
		_, _ = fmt.Fprintf(e.stderr, "%s%s\n", libPrefix, oneLine(libErr{err}.Error()))
		return exitFail
	}
}

// printMainUsage writes the summary of every subcommand to w.
func printMainUsage(w io.Writer) {
	_, _ = fmt.Fprint(w, `usage: bigqueue COMMAND [flags] [DIR]

bigqueue works on a queue directory written by github.com/seed-ff72c416/bigqueue.
It opens an existing queue at the arena size the queue was created with.

commands:
`)
	for _, c := range commands {
		_, _ = fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	_, _ = fmt.Fprint(w, `
Run 'bigqueue COMMAND -h' for the flags of a command.
Exit status: 0 on success, 1 on failure (check: the queue is damaged), 2 on a usage error.
`)
}

// libPrefix starts the message of every error of the library, once; the
// tool prints it once at the start of its error line.
const libPrefix = "bigqueue: "

// libErr is an error whose message loses the library's prefix, so that a
// library error wrapped in the tool's context does not repeat it mid-line.
type libErr struct{ err error }

func (e libErr) Error() string { return strings.TrimPrefix(e.err.Error(), libPrefix) }
func (e libErr) Unwrap() error { return e.err }

// errorf is fmt.Errorf whose error arguments are printed without the
// library's prefix.
func errorf(format string, args ...any) error {
	for i, a := range args {
		if err, ok := a.(error); ok && err != nil {
			args[i] = libErr{err}
		}
	}
	return fmt.Errorf(format, args...)
}
