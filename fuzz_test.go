package bigqueue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeRecord decodes arbitrary bytes as a record at an arbitrary
// position: it never panics; what decodes re-encodes to the same bytes (so
// nothing in a record goes unchecked); the same bytes do not decode at the
// next position (the position is in the checksum); and a region of zeros
// never decodes.
func FuzzDecodeRecord(f *testing.F) {
	valid := encodeRecord(nil, 4096, 0, []byte("hello, queue"))
	f.Add(valid, int64(4096))
	f.Add(valid, int64(4097))                     // another position
	f.Add(valid[:headerSize-1], int64(4096))      // a header cut short
	f.Add(valid[:len(valid)-1], int64(4096))      // a message cut short
	f.Add(encodeRecord(nil, 0, 0, nil), int64(0)) // empty message
	f.Add(encodeRecord(nil, 1<<40, flagBatchMore, []byte{0}), int64(1<<40))
	f.Add(make([]byte, 64), int64(0))         // zeros
	f.Add(make([]byte, headerSize), int64(0)) // a zero header
	f.Add([]byte{}, int64(-1))                // nothing, negative position
	huge := slices.Clone(valid)               // length past the data
	binary.LittleEndian.PutUint64(huge[hdrLengthOffset:], 1<<63)
	f.Add(huge, int64(4096))
	flags := slices.Clone(valid) // an unknown flag
	binary.LittleEndian.PutUint16(flags[hdrFlagsOffset:], 0x8000)
	f.Add(flags, int64(4096))
	two := encodeRecord(encodeRecord(nil, 100, flagBatchMore, []byte("a")), 117, 0, []byte("b"))
	f.Add(two, int64(100))

	f.Fuzz(func(t *testing.T, data []byte, pos int64) {
		msg, size, err := decodeRecord(data, pos)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error does not wrap ErrCorrupt: %v", err)
			}
			if msg != nil || size != 0 {
				t.Fatalf("failed decode returned %d bytes, size %d", len(msg), size)
			}
			return
		}
		if size < headerSize || size > len(data) || size != headerSize+len(msg) {
			t.Fatalf("size %d for a message of %d bytes in %d bytes of data", size, len(msg), len(data))
		}
		if !bytes.Equal(data[headerSize:size], msg) {
			t.Fatal("message is not the bytes after the header")
		}
		flags := binary.LittleEndian.Uint16(data[hdrFlagsOffset:])
		if again := encodeRecord(nil, pos, flags, msg); !bytes.Equal(again, data[:size]) {
			t.Fatalf("record decodes but does not re-encode to the same bytes:\n got %x\nwant %x", again, data[:size])
		}
		if bytes.Count(data[:size], []byte{0}) == size {
			t.Fatal("a region of zeros decoded as a record")
		}
		// The position is part of the checksum: the same bytes do not
		// decode one byte further along the stream.
		if _, _, err := decodeRecord(data, pos+1); err == nil {
			t.Fatalf("record of position %d also decodes at %d", pos, pos+1)
		}
	})
}

// TestDecodeRecordZeros: zeros of every length from 0 to two headers never
// decode, at any of a few positions.
func TestDecodeRecordZeros(t *testing.T) {
	for n := range 2*headerSize + 1 {
		for _, pos := range []int64{0, 1, 4096, 1 << 40} {
			_, _, err := decodeRecord(make([]byte, n), pos)
			require.ErrorIs(t, err, ErrCorrupt, "%d zeros at %d", n, pos)
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
