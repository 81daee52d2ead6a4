package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// framing is how dequeue writes messages to stdout and enqueue reads them
// from stdin (-format):
//
//	lines  message "\n"                 (a message holding "\n" reads as several)
//	nul    message "\x00"               (a message holding NUL reads as several)
//	len    length "\n" message "\n"     (length in decimal: binary-safe)
//
// On input, lines and nul take a last message that lacks its delimiter as
// a message too; len wants every frame whole.
type framing int

const (
	frameLines framing = iota // the default
	frameNUL
	frameLen
)

var framingNames = [...]string{frameLines: "lines", frameNUL: "nul", frameLen: "len"}

func (f *framing) String() string { return framingNames[*f] }

func (f *framing) Set(s string) error {
	for i, name := range framingNames {
		if s == name {
			*f = framing(i)
			return nil
		}
	}
	return errors.New("want lines, nul or len")
}

// appendFrame appends msg to dst, framed.
func (f framing) appendFrame(dst, msg []byte) []byte {
	switch f {
	case frameNUL:
		return append(append(dst, msg...), 0)
	case frameLen:
		dst = strconv.AppendInt(dst, int64(len(msg)), 10)
		dst = append(dst, '\n')
		return append(append(dst, msg...), '\n')
	default:
		return append(append(dst, msg...), '\n')
	}
}

// unit names one message in errors about input: "line" when messages are
// lines, "message" otherwise.
func (f framing) unit() string {
	if f == frameLines {
		return "line"
	}
	return "message"
}

// readBlock is how much of stdin a frameReader buffers, and the most of a
// len frame's body it reads at once.
const readBlock = 64 << 10

// maxLengthDigits bounds the length line of a len frame: enough for any int.
const maxLengthDigits = 19

// frameReader reads framed messages. Unlike bufio.Scanner it has no limit
// on the length of a message.
type frameReader struct {
	br  *bufio.Reader
	f   framing
	buf []byte // a long message being put together
}

func newFrameReader(r io.Reader, f framing) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, readBlock), f: f}
}

// next returns the next message, valid until the following call, or io.EOF
// when the input ends where a frame could start. A read error of the input
// is returned wrapped; a len frame that is not well formed is an error
// that says what is wrong with it.
func (r *frameReader) next() ([]byte, error) {
	if cap(r.buf) > 4*readBlock {
		r.buf = nil // a long message's buffer is not kept for the others
	}
	r.buf = r.buf[:0]
	switch r.f {
	case frameNUL:
		return r.delimited(0)
	case frameLen:
		return r.lengthPrefixed()
	default:
		return r.delimited('\n')
	}
}

// delimited reads up to the next delim, which it drops; at the end of the
// input, what is left is the last message.
func (r *frameReader) delimited(delim byte) ([]byte, error) {
	long := false
	for {
		chunk, err := r.br.ReadSlice(delim)
		if errors.Is(err, bufio.ErrBufferFull) {
			r.buf = append(r.buf, chunk...)
			long = true
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, errorf("read stdin: %w", err)
		}
		msg := chunk
		if long {
			r.buf = append(r.buf, chunk...)
			msg = r.buf
		}
		if err != nil { // io.EOF
			if len(msg) == 0 {
				return nil, io.EOF
			}
			return msg, nil
		}
		return msg[:len(msg)-1], nil
	}
}

// lengthPrefixed reads a len frame: the length in decimal, "\n", that many
// bytes, "\n".
func (r *frameReader) lengthPrefixed() ([]byte, error) {
	head, err := r.br.ReadSlice('\n')
	switch {
	case errors.Is(err, io.EOF) && len(head) == 0:
		return nil, io.EOF
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("input ends inside a length line (%q)", clip(head))
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("length line too long (%q...): not len framing?", clip(head))
	case err != nil:
		return nil, errorf("read stdin: %w", err)
	}
	digits := head[:len(head)-1]
	n, ok := parseLength(digits)
	if !ok {
		return nil, fmt.Errorf("length line %q is not a decimal number of bytes: not len framing?", clip(digits))
	}
	// Read the body in blocks, so that a wrong length meets the end of the
	// input before it allocates much more than the input holds.
	for len(r.buf) < n {
		have := len(r.buf)
		r.buf = append(r.buf, make([]byte, min(n-have, readBlock))...)
		got, err := io.ReadFull(r.br, r.buf[have:])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("input ends %d bytes into a message of %d", have+got, n)
			}
			return nil, errorf("read stdin: %w", err)
		}
	}
	switch end, err := r.br.ReadByte(); {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("input ends after a message of %d bytes, before its closing newline", n)
	case err != nil:
		return nil, errorf("read stdin: %w", err)
	case end != '\n':
		return nil, fmt.Errorf("a message of %d bytes is followed by %q, not a newline: wrong length?", n, string(rune(end)))
	}
	return r.buf, nil
}

// parseLength reads a len frame's length: ASCII digits only, no sign, no
// spaces.
func parseLength(digits []byte) (int, bool) {
	if len(digits) == 0 || len(digits) > maxLengthDigits {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n > math.MaxInt {
		return 0, false
	}
	return int(n), true
}

// clip shortens b for an error message.
func clip(b []byte) []byte {
	const most = 32
	if len(b) > most {
		return b[:most]
	}
	return b
}
