package bigqueue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io/fs"
	"slices"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The index and every consumer file share one layout: a file of metaSize
// bytes, mapped, that holds a position in the queue twice over.
//
//	  0               8       12      16                              64
//	 +---------------+-------+-------+-------------------------------+
//	 | magic         |version|hdr crc| kind's header fields          |  written once
//	 +---------------+-------+-------+-------------------------------+
//	 64: live slot 0   | pos u64 | seq u64 | gen u64 | crc u32 |         every operation,
//	 96: live slot 1   | (same)                      |                   in turn
//	128: durable slot 0| gen u64 | v0 u64 | v1 u64 | v2 u64 | v3 u64 | crc u32 |
//	192: durable slot 1| (same)                                      |  at each Flush
//	256: kind's static data (the consumer's name) ................ 4096
//
// All integers are little endian. The header checksum is CRC-32C over bytes
// [0,12) and [16,64) and [256,4096): everything written once, at creation.
//
// The live position is written on every enqueue (index: the tail) or
// dequeue (consumer: its position), into the live slot that does not hold
// the newest generation, with generation+1 and a CRC-32C over pos, seq and
// gen. A process killed at any instruction leaves the page cache as it was:
// at worst the slot being written fails its checksum, and the other holds
// the position of the last operation that returned (contract 1 of doc.go).
// A single slot would fall back to the last Flush instead.
//
// A Flush writes the durable slot that does not hold the newest generation,
// with generation+1 and a checksum over gen and v0..v3, and then syncs the
// file. A torn write can spoil only the slot being written; the other keeps
// the state of the flush before. The index keeps head position and sequence
// and tail position and sequence in v0..v3; a consumer keeps its position
// and sequence in v0 and v1.
//
// These offsets are the on-disk format: they change only with formatVersion.
const (
	formatVersion = 1

	metaSize          = 4096
	metaMagicOffset   = 0
	metaVersionOffset = 8
	metaHdrCRCOffset  = 12
	metaFieldsOffset  = 16
	metaLiveOffset    = 64
	metaLiveSlotSize  = 32
	metaSlot0Offset   = 128
	metaSlotSize      = 64
	metaStaticOffset  = 256

	liveDataSize = 24 // pos, seq, gen
	slotDataSize = 40 // gen, v0..v3
)

// metaFile is a mapped index or consumer file.
type metaFile struct {
	path string
	data []byte
	id   fileID // the file mapped, which its name may no longer name

	liveGen  uint64 // generation of the newest live slot
	liveNext int    // the live slot setLive writes next
}

// headerCRC is the checksum of the parts of b written once.
func headerCRC(b []byte) uint32 {
	crc := crc32.Update(0, castagnoli, b[:metaHdrCRCOffset])
	crc = crc32.Update(crc, castagnoli, b[metaFieldsOffset:metaLiveOffset])
	return crc32.Update(crc, castagnoli, b[metaStaticOffset:metaSize])
}

// newMetaImage returns a fresh file image with the given magic, kind's
// fields (at most 48 bytes) and static data, and position p in the live slot
// and in durable slot 0 as generation 1.
func newMetaImage(magic [8]byte, fields, static []byte, v [4]int64) []byte {
	b := make([]byte, metaSize)
	copy(b[metaMagicOffset:], magic[:])
	binary.LittleEndian.PutUint32(b[metaVersionOffset:], formatVersion)
	copy(b[metaFieldsOffset:metaLiveOffset], fields)
	copy(b[metaStaticOffset:], static)
	binary.LittleEndian.PutUint32(b[metaHdrCRCOffset:], headerCRC(b))
	m := metaFile{data: b}
	m.setLive(v[0], v[1])
	m.writeSlot(0, 1, v)
	return b
}

// tmpSuffix names the temporary file a meta file is written to first.
const tmpSuffix = ".tmp"

// checkMetaImage validates the header of a file image read from disk, in
// the order that gives the right error: size, magic, version, checksum.
func checkMetaImage(path string, b []byte, magic [8]byte) error {
	if len(b) < metaSize {
		return errorf("%s is %d bytes, want %d: %w", path, len(b), metaSize, ErrCorrupt)
	}
	if string(b[metaMagicOffset:metaMagicOffset+8]) != string(magic[:]) {
		return errorf("%s: bad magic %q: %w", path, b[metaMagicOffset:metaMagicOffset+8], ErrCorrupt)
	}
	// The version before the checksum: a later format may checksum
	// otherwise, and must read as incompatible, not as corrupt.
	if v := binary.LittleEndian.Uint32(b[metaVersionOffset:]); v != formatVersion {
		return errorf("%s: format version %d, this package reads %d: %w", path, v, formatVersion, ErrIncompatibleVersion)
	}
	if got, want := binary.LittleEndian.Uint32(b[metaHdrCRCOffset:]), headerCRC(b); got != want {
		return errorf("%s: header checksum %#08x, want %#08x: %w", path, got, want, ErrCorrupt)
	}
	return nil
}

// errNotFile marks the ErrCorrupt of a meta file's name that holds
// something else than a regular file (a directory, a FIFO, a symbolic
// link, which is not followed): not the queue's file, left to its owner.
var errNotFile = errors.New("not a regular file")

// notFileError is the error for path holding something else than a regular
// file: it wraps ErrCorrupt and errNotFile, and says so once.
func notFileError(path string) error {
	return &wrapError{text: path + " is not a regular file: " + bare(ErrCorrupt), errs: []error{ErrCorrupt, errNotFile}}
}

// openMetaFile maps the file name of d and validates its header. With
// readOnly set (a reader, OpenReader), it is opened and mapped for reading
// only.
func openMetaFile(d qdir, name string, magic [8]byte, readOnly bool) (*metaFile, error) {
	path := d.join(name)
	flags, prot := unix.O_RDWR, unix.PROT_READ|unix.PROT_WRITE
	if readOnly {
		flags, prot = unix.O_RDONLY, unix.PROT_READ
	}
	fd, err := openat(d.fd, name, flags|unix.O_NOFOLLOW)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, errorf("%s is missing: %w: %w", path, ErrCorrupt, &fs.PathError{Op: "open", Path: path, Err: err})
		case errors.Is(err, unix.EISDIR), errors.Is(err, unix.ELOOP):
			return nil, notFileError(path)
		}
		return nil, errorf("open %s: %w", path, err)
	}
	defer func() { _ = unix.Close(fd) }()
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil {
		return nil, errorf("stat %s: %w", path, err)
	}
	if sb.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, notFileError(path)
	}
	if sb.Size < metaSize {
		return nil, errorf("%s is %d bytes, want %d: %w", path, sb.Size, metaSize, ErrCorrupt)
	}
	data, err := unix.Mmap(fd, 0, metaSize, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, errorf("map %s: %w", path, err)
	}
	if err := checkMetaImage(path, data, magic); err != nil {
		_ = unix.Munmap(data)
		return nil, err
	}
	m := &metaFile{path: path, data: data, id: idOf(&sb)}
	if i, gen, ok := m.newestLive(); ok {
		m.liveGen, m.liveNext = gen, 1-i
	}
	return m, nil
}

// fileID tells files apart: two names for one file have the same, a file
// made anew under an old name does not.
type fileID struct{ dev, ino uint64 }

func idOf(sb *unix.Stat_t) fileID { return fileID{uint64(sb.Dev), uint64(sb.Ino)} } //nolint:unconvert // int32 on darwin

// field returns the kind's header fields.
func (m *metaFile) field() []byte { return m.data[metaFieldsOffset:metaLiveOffset] }

// static returns the kind's static data.
func (m *metaFile) static() []byte { return m.data[metaStaticOffset:metaSize] }

// liveSlot returns live slot i.
func (m *metaFile) liveSlot(i int) []byte {
	off := metaLiveOffset + i*metaLiveSlotSize
	return m.data[off : off+liveDataSize+4]
}

// newestLive returns which live slot holds the newest generation whose
// checksum holds, and that generation; ok is false when neither does.
func (m *metaFile) newestLive() (i int, gen uint64, ok bool) {
	for j := range 2 {
		b := m.liveSlot(j)
		g := binary.LittleEndian.Uint64(b[16:])
		if g == 0 || binary.LittleEndian.Uint32(b[liveDataSize:]) != crc32.Checksum(b[:liveDataSize], castagnoli) {
			continue
		}
		if !ok || g > gen {
			i, gen, ok = j, g, true
		}
	}
	return i, gen, ok
}

// live returns the newest live position, and false if no live slot's
// checksum holds.
func (m *metaFile) live() (pos, seq int64, ok bool) {
	i, _, ok := m.newestLive()
	if !ok {
		return 0, 0, false
	}
	b := m.liveSlot(i)
	return int64(binary.LittleEndian.Uint64(b[0:])), int64(binary.LittleEndian.Uint64(b[8:])), true
}

// setLive records a new position in the older live slot.
func (m *metaFile) setLive(pos, seq int64) {
	b := m.liveSlot(m.liveNext)
	m.liveGen++
	binary.LittleEndian.PutUint64(b[0:], uint64(pos))
	binary.LittleEndian.PutUint64(b[8:], uint64(seq))
	binary.LittleEndian.PutUint64(b[16:], m.liveGen)
	// The checksum is stored last, atomically: a release, so that a reader
	// in another process that loads it (liveShared, an acquire) and finds
	// it matching sees the slot's position, and every record byte written
	// before it. (Go's atomics are sequentially consistent: STLR/LDAR on
	// arm64; on amd64 every store is a release anyway.)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&b[liveDataSize])), crc32.Checksum(b[:liveDataSize], castagnoli))
	m.liveNext = 1 - m.liveNext
}

// intact checks, for a file that another process writes, that it is still
// whole (size: its size now) and its header and a durable slot still hold,
// before its mapping is read again.
func (m *metaFile) intact(size int64, magic [8]byte) error {
	if size < metaSize {
		return errorf("%s is %d bytes, want %d: %w", m.path, size, metaSize, ErrCorrupt)
	}
	if err := checkMetaImage(m.path, m.data, magic); err != nil {
		return err
	}
	if _, _, ok := m.durable(); !ok {
		return errorf("%s: no durable position with a valid checksum: %w", m.path, ErrCorrupt)
	}
	return nil
}

// resyncLive takes up the live slots where another process left them: the
// next setLive writes a generation after theirs, in the older slot.
func (m *metaFile) resyncLive() {
	if i, gen, ok := m.newestLive(); ok && gen >= m.liveGen {
		m.liveGen, m.liveNext = gen, 1-i
	}
}

// liveShared returns the newest live position as another process's writer
// publishes it: each slot is read as a seqlock, checksum first (an
// acquire), then the data, then the checksum again, and kept only when the
// data match a checksum that did not change meanwhile. ok is false when no
// slot could be read whole (the writer was rewriting both).
func (m *metaFile) liveShared() (pos, seq int64, ok bool) {
	var gen uint64
	for j := range 2 {
		b := m.liveSlot(j)
		crcp := (*uint32)(unsafe.Pointer(&b[liveDataSize]))
		crc := atomic.LoadUint32(crcp)
		var data [liveDataSize]byte
		copy(data[:], b[:liveDataSize])
		if atomic.LoadUint32(crcp) != crc || crc32.Checksum(data[:], castagnoli) != crc {
			continue
		}
		g := binary.LittleEndian.Uint64(data[16:])
		if g == 0 || (ok && g <= gen) {
			continue
		}
		pos, seq, gen, ok = int64(binary.LittleEndian.Uint64(data[0:])), int64(binary.LittleEndian.Uint64(data[8:])), g, true
	}
	return pos, seq, ok
}

// slot decodes durable slot i; ok is false if its checksum fails.
func (m *metaFile) slot(i int) (gen uint64, v [4]int64, ok bool) {
	off := metaSlot0Offset + i*metaSlotSize
	b := m.data[off : off+slotDataSize+4]
	gen = binary.LittleEndian.Uint64(b[0:])
	for j := range v {
		v[j] = int64(binary.LittleEndian.Uint64(b[8+8*j:]))
	}
	ok = gen != 0 && binary.LittleEndian.Uint32(b[slotDataSize:]) == crc32.Checksum(b[:slotDataSize], castagnoli)
	return gen, v, ok
}

func (m *metaFile) writeSlot(i int, gen uint64, v [4]int64) {
	off := metaSlot0Offset + i*metaSlotSize
	b := m.data[off : off+slotDataSize+4]
	binary.LittleEndian.PutUint64(b[0:], gen)
	for j := range v {
		binary.LittleEndian.PutUint64(b[8+8*j:], uint64(v[j]))
	}
	binary.LittleEndian.PutUint32(b[slotDataSize:], crc32.Checksum(b[:slotDataSize], castagnoli))
}

// durable returns the newest durable slot whose checksum holds.
func (m *metaFile) durable() (gen uint64, v [4]int64, ok bool) {
	g0, v0, ok0 := m.slot(0)
	g1, v1, ok1 := m.slot(1)
	switch {
	case ok0 && (!ok1 || g0 > g1):
		return g0, v0, true
	case ok1:
		return g1, v1, true
	default:
		return 0, v, false
	}
}

// durableDamaged reports whether a durable slot that was written (not all
// zeros, as a slot never written is) fails its checksum: durable then fell
// back to the other slot, which may be older than the files around it.
func (m *metaFile) durableDamaged() bool {
	for i := range 2 {
		off := metaSlot0Offset + i*metaSlotSize
		b := m.data[off : off+slotDataSize+4]
		if _, _, ok := m.slot(i); !ok && slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
			return true
		}
	}
	return false
}

// setDurable writes v as the next generation into the older slot. The
// caller syncs afterwards.
func (m *metaFile) setDurable(v [4]int64) {
	g0, _, ok0 := m.slot(0)
	g1, _, ok1 := m.slot(1)
	if !ok0 {
		g0 = 0
	}
	if !ok1 {
		g1 = 0
	}
	if g0 > g1 {
		m.writeSlot(1, g0+1, v)
	} else {
		m.writeSlot(0, g1+1, v)
	}
}

// sync writes the mapped page to disk.
func (m *metaFile) sync() error {
	if err := unix.Msync(m.data, unix.MS_SYNC); err != nil {
		return errorf("sync %s: %w", m.path, err)
	}
	return nil
}

// close unmaps the file.
func (m *metaFile) close() error {
	if m.data == nil {
		return nil
	}
	err := unix.Munmap(m.data)
	m.data = nil
	if err != nil {
		return errorf("unmap %s: %w", m.path, err)
	}
	return nil
}
