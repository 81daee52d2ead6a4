package bigqueue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzArenaSize is the arena size of the streams FuzzReadRecord reads.
const fuzzArenaSize = 4096

// encodeRecord appends the record of msg at position pos to dst, as the
// writer lays it when the header fits in the arena: seeds for the fuzzer.
func encodeRecord(dst []byte, pos int64, flags uint16, msg []byte) []byte {
	var hdr [headerSize]byte
	putHeader(hdr[:], recordHeader{
		flags:  flags,
		crc:    crc32.Update(crcStart(new([crcPrefixSize]byte), pos, flags, uint64(len(msg))), castagnoli, msg),
		length: uint64(len(msg)),
	})
	return append(append(dst, hdr[:]...), msg...)
}

// layStream writes data into arena files of a new directory from stream
// position at on, and returns a stream over them whose every record counts
// as found on disk at open (so reads verify checksums). With windowed set,
// it caps the mapped arenas and reads through a window, as a queue under
// SetMaxInMemArenas does.
func layStream(t *testing.T, data []byte, at int64, windowed bool) *stream {
	t.Helper()
	dir := t.TempDir()
	// writtenFrom past every record: all were on disk at open.
	s := &stream{size: fuzzArenaSize, writtenFrom: math.MaxInt64}
	first, _ := s.arenaOf(at)
	last, _ := s.arenaOf(at + int64(max(len(data), 1)) - 1)
	var ids []int64
	for id := first; id <= last; id++ {
		b := make([]byte, fuzzArenaSize)
		base := id * fuzzArenaSize
		for i := max(base, at); i < min(base+fuzzArenaSize, at+int64(len(data))); i++ {
			b[i-base] = data[i-at]
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, arenaName(id)), b, 0o644))
		ids = append(ids, id)
	}
	maxMapped := 0
	if windowed {
		maxMapped = 3
	}
	am, err := newArenaManager(testQDir(t, dir), fuzzArenaSize, maxMapped, ids)
	require.NoError(t, err)
	t.Cleanup(func() { _ = am.close() })
	s.am = am
	return s
}

// FuzzReadRecord lays arbitrary bytes into arena files at an arbitrary
// position and reads them as a record with the queue's own reader, mapped
// or through a window: it never panics and fails only with ErrCorrupt;
// verify and read agree; what reads back re-encodes, through the queue's
// own writer, to the same bytes (so nothing in a record goes unchecked); a
// region of zeros never reads as a record; and the same bytes do not read
// one byte further along the stream (the position is in the checksum).
func FuzzReadRecord(f *testing.F) {
	valid := encodeRecord(nil, 4096, 0, []byte("hello, queue"))
	f.Add(valid, uint64(4096), false)
	f.Add(valid, uint64(4096), true)
	f.Add(valid, uint64(4097), false)                     // another position
	f.Add(valid[:headerSize-1], uint64(4096), false)      // a header cut short
	f.Add(valid[:len(valid)-1], uint64(4096), true)       // a message cut short
	f.Add(encodeRecord(nil, 0, 0, nil), uint64(0), false) // empty message
	f.Add(encodeRecord(nil, 1<<40, flagBatchMore, []byte{0}), uint64(1<<40), true)
	f.Add(make([]byte, 64), uint64(0), false)        // zeros
	f.Add(make([]byte, headerSize), uint64(0), true) // a zero header
	f.Add([]byte{}, uint64(0), false)                // nothing
	huge := slices.Clone(valid)                      // length past the data
	binary.LittleEndian.PutUint64(huge[hdrLengthOffset:], 1<<63)
	f.Add(huge, uint64(4096), false)
	flags := slices.Clone(valid) // an unknown flag
	binary.LittleEndian.PutUint16(flags[hdrFlagsOffset:], 0x8000)
	f.Add(flags, uint64(4096), true)
	two := encodeRecord(encodeRecord(nil, 100, flagBatchMore, []byte("a")), 117, 0, []byte("b"))
	f.Add(two, uint64(100), false)
	// A message across an arena boundary, mapped and windowed.
	across := encodeRecord(nil, 4000, 0, bytes.Repeat([]byte("xyz"), 100))
	f.Add(across, uint64(4000), false)
	f.Add(across, uint64(4000), true)

	f.Fuzz(func(t *testing.T, data []byte, pos uint64, windowed bool) {
		if len(data) > 4*fuzzArenaSize {
			data = data[:4*fuzzArenaSize]
		}
		at := int64(pos % (1 << 40))
		s := layStream(t, data, at, windowed)
		limit := at + int64(len(data))
		var w1, w2 window
		defer func() { _, _ = w1.close(), w2.close() }()
		next, flags, err := s.verify(&w1, at, limit)
		prefix := []byte("prefix")
		msg, next2, err2 := s.read(&w2, at, limit, slices.Clone(prefix))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("verify error does not wrap ErrCorrupt: %v", err)
			}
			if err2 == nil {
				t.Fatalf("verify fails (%v) but read succeeds", err)
			}
			if !bytes.Equal(msg, prefix) {
				t.Fatalf("a failed read changed dst to %q", msg)
			}
			return
		}
		if err2 != nil || next2 != next || !bytes.HasPrefix(msg, prefix) {
			t.Fatalf("verify: next %d; read: next %d, err %v, dst kept: %v", next, next2, err2, bytes.HasPrefix(msg, prefix))
		}
		msg = msg[len(prefix):]
		start := s.recordStart(at)
		rec := data[start-at : next-at]
		if len(rec) != headerSize+len(msg) || !bytes.Equal(rec[headerSize:], msg) {
			t.Fatalf("record of %d bytes, message of %d: not the bytes after the header", len(rec), len(msg))
		}
		if bytes.Count(rec, []byte{0}) == len(rec) {
			t.Fatal("a region of zeros read as a record")
		}
		// The queue's writer lays the same message at the same position
		// into the same bytes.
		wdir := t.TempDir()
		wam, err := newArenaManager(testQDir(t, wdir), fuzzArenaSize, 0, nil)
		require.NoError(t, err)
		defer func() { _ = wam.close() }()
		ws := &stream{size: fuzzArenaSize, am: wam}
		end, err := ws.write(position{pos: at}, msg, flags)
		require.NoError(t, err)
		require.Equal(t, next, end, "the writer's record ends elsewhere")
		for p := start; p < end; {
			id, off := ws.arenaOf(p)
			k := min(int64(fuzzArenaSize-off), end-p)
			b, err := os.ReadFile(filepath.Join(wdir, arenaName(id)))
			require.NoError(t, err)
			if !bytes.Equal(b[off:off+int(k)], data[p-at:p-at+k]) {
				t.Fatalf("record reads back but re-encodes to other bytes at position %d", p)
			}
			p += k
		}
		// The position is part of the checksum: the same bytes do not read
		// one byte further along (when the header still fits there).
		if s.recordStart(at+1) == at+1 {
			moved := layStream(t, data, at+1, windowed)
			var w window
			defer func() { _ = w.close() }()
			if _, _, err := moved.verify(&w, at+1, limit+1); err == nil {
				t.Fatalf("record of position %d also reads at %d", at, at+1)
			}
		}
	})
}

// TestReadZeros: zeros of every length from 0 to two headers never read as
// a record, at any of a few positions, mapped or through a window.
func TestReadZeros(t *testing.T) {
	for n := range 2*headerSize + 1 {
		for _, pos := range []int64{0, 1, 4096, 1 << 40} {
			for _, windowed := range []bool{false, true} {
				s := layStream(t, make([]byte, n), pos, windowed)
				var w window
				_, _, err := s.verify(&w, pos, pos+int64(n))
				require.ErrorIs(t, err, ErrCorrupt, "%d zeros at %d", n, pos)
				require.NoError(t, w.close())
			}
		}
	}
}

// FuzzOpenDamaged builds small queues (one closed cleanly, one copied while
// open after unflushed operations, as a kill -9 leaves it) and damages one
// file as the fuzzer says: write or xor bytes at an offset, truncate or
// delete it. Opening must not panic or fault and must follow the rules of
// inspectDamaged; when the damaged file is an arena or the lock, the outcome
// must be exactly what damageBase.expected computes.
func FuzzOpenDamaged(f *testing.F) {
	var bases [2]*damageBase
	var names [2][]string
	for i, crashed := range []bool{false, true} {
		bases[i] = buildDamageBase(f, f.TempDir(), 4096, 48, crashed)
		for name := range bases[i].Files {
			names[i] = append(names[i], name)
		}
		slices.Sort(names[i])
	}
	// Seeds: each file of each base with each operation, and some
	// particular damages.
	for i := range bases {
		for j := range names[i] {
			for op := range uint8(4) {
				f.Add(i == 1, uint8(j), op, uint32(j*977), []byte{0xff})
			}
		}
	}
	f.Add(false, uint8(0), uint8(0), uint32(0), make([]byte, 4096))                  // zero a page
	f.Add(true, uint8(0), uint8(0), uint32(8), []byte{0xff, 0xff, 0xff, 0xff, 0xff}) // a huge length
	f.Add(true, uint8(1), uint8(1), uint32(4096-8), []byte(nil))                     // truncate inside the last record

	f.Fuzz(func(t *testing.T, crashed bool, which, op uint8, off uint32, data []byte) {
		bi := 0
		if crashed {
			bi = 1
		}
		b := bases[bi]
		name := names[bi][int(which)%len(names[bi])]
		files := make(map[string][]byte, len(b.Files))
		for n, d := range b.Files {
			files[n] = d
		}
		orig := b.Files[name]
		switch op % 4 {
		case 0: // write data at off, perhaps past the end
			at := int(off) % (len(orig) + 1)
			d := slices.Clone(orig)
			if end := at + len(data); end > len(d) {
				d = append(d, make([]byte, end-len(d))...)
			}
			copy(d[at:], data)
			files[name] = d
		case 1: // truncate
			files[name] = slices.Clone(orig[:int(off)%(len(orig)+1)])
		case 2: // delete
			delete(files, name)
		case 3: // xor data in, wrapping around
			d := slices.Clone(orig)
			for i, x := range data {
				if len(d) > 0 {
					d[(int(off)+i)%len(d)] ^= x
				}
			}
			files[name] = d
		}
		dir := t.TempDir()
		writeQueueDir(t, dir, files)
		got, err := inspectDamaged(dir, b.damageParams)
		if err != nil {
			t.Fatalf("%s damaged: %v (outcome %+v)", name, err, got)
		}
		_, isArena := parseArenaName(name)
		same := bytes.Equal(files[name], orig) && (op%4 != 2)
		if isArena || name == lockName || same {
			want := b.expected(files, b.Def, b.Cons)
			got.OpenErr = ""
			require.Equal(t, want, got, "%s damaged", name)
		}
		// Whatever happened, the directory holds no stray files.
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, e := range entries {
			require.NotEqual(t, ".tmp", filepath.Ext(e.Name()), "left behind: %s", e.Name())
		}
	})
}
