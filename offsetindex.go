package bigqueue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"path/filepath"
	"slices"
	"sort"

	"golang.org/x/sys/unix"
)

// The offset index is a sparse map from offsets to positions: for each
// arena, where the first record that starts at or after the arena's first
// byte lies, and its offset. Seek and CommitOffset start from the entry of
// the arena holding the offset they look for and walk at most that arena's
// record headers; a retention limit finds the first record of an arena.
//
// It lives in memory from the head's arena on, and in offsets.dat, which
// opening reads instead of scanning the queue (a reader, OpenReader, reads
// it again for what the writer has appended since when a Seek looks past
// its last entry: catchUp):
//
//	 0         8         12        16
//	+---------+---------+---------+
//	| magic   | version | 0       |                    header
//	+---------+---------+---------+----------+-------+-------+
//	| arena u64         | pos u64            | offset u64    | crc u32 | 0 u32 |  32 bytes an entry,
//	+-------------------+--------------------+---------------+---------+-------+  from offset 16 on
//
// All integers are little endian; the checksum is CRC-32C over the first
// 24 bytes of the entry. Entries are in increasing arena order. New ones
// are appended, without a sync, as the writer starts each arena (so that
// readers in other processes find them at once), and synced at each flush,
// after the arenas and before the index (index.go); recovery adds those of
// the records it walks past the durable tail. After a crash the file may
// hold entries for records that are gone: opening keeps none at or past
// the recovered tail, nor any after a damaged one. The file is rewritten (temporary file, rename) when most of
// its entries are for arenas before the head. It is an accelerator, not
// part of the queue's state: a missing, damaged or stale entry only makes
// a walk longer, never a result different.
//
// These values are the format of offsets.dat: they change only with
// offsetsVersion.
const (
	offsetsName       = "offsets.dat"
	offsetsVersion    = 1
	offsetsHeaderSize = 16
	offsetsEntrySize  = 32
	offsetsEntryData  = 24
)

var offsetsMagic = [8]byte{'B', 'Q', 'O', 'F', 'F', 'S', 'E', 'T'}

// arenaStart is an entry: the first record starting at or after the first
// byte of arena.
type arenaStart struct {
	arena int64
	start position
}

// offsetIndex is the index of one queue. The queue's lock guards it.
type offsetIndex struct {
	dir   string
	dirFd int
	fd    int // offsets.dat, open for writing; -1 when not open

	entries []arenaStart // in arena order
	synced  int          // entries[:synced] are in the file (synced or not: see dirty)
	inFile  int          // entries in the file, the dead ones before the head included
	last    int64        // highest arena with an entry, or -1
	rewrite bool         // the file must be rewritten at the next sync
	dirty   bool         // entries were written since the last fsync

	// seenIno and seenSize identify the offsets.dat a reader last read
	// (catchUp).
	seenIno  uint64
	seenSize int64
}

// loadOffsetIndex reads offsets.dat in dir, keeping the valid entries for
// arenas from first on and for records before tail. A missing or damaged
// file gives an index with what could be read, rewritten at the next sync.
func loadOffsetIndex(dir string, dirFd int, first int64, tail int64) *offsetIndex {
	x := &offsetIndex{dir: dir, dirFd: dirFd, fd: -1, last: -1}
	b, err := qdir{path: dir, fd: dirFd}.readFile(offsetsName)
	if err != nil || !offsetsHeaderOK(b) {
		x.rewrite = true
		return x
	}
	_, ok := x.add(b[offsetsHeaderSize:], first, tail)
	x.inFile, x.rewrite = (len(b)-offsetsHeaderSize)/offsetsEntrySize, !ok
	x.synced = len(x.entries)
	return x
}

// offsetsHeaderOK reports whether b starts with the header of offsets.dat.
func offsetsHeaderOK(b []byte) bool {
	return len(b) >= offsetsHeaderSize && string(b[:8]) == string(offsetsMagic[:]) &&
		binary.LittleEndian.Uint32(b[8:]) == offsetsVersion
}

// add takes the entries in b (whole ones, from a file's entries) that are
// for arenas from first on and past the last one known, and for records
// before tail. It stops at the first entry that is damaged, out of order
// or past tail, and trusts nothing after it; it returns how many entries
// it read before that one (all of b's when ok).
func (x *offsetIndex) add(b []byte, first, tail int64) (valid int, ok bool) {
	n := len(b) / offsetsEntrySize
	var prev arenaStart
	for i := range n {
		e := b[i*offsetsEntrySize:][:offsetsEntrySize]
		if binary.LittleEndian.Uint32(e[offsetsEntryData:]) != crc32.Checksum(e[:offsetsEntryData], castagnoli) {
			return i, false
		}
		a := arenaStart{
			arena: int64(binary.LittleEndian.Uint64(e[0:])),
			start: position{int64(binary.LittleEndian.Uint64(e[8:])), int64(binary.LittleEndian.Uint64(e[16:]))},
		}
		if i > 0 && (a.arena <= prev.arena || a.start.pos < prev.start.pos || a.start.seq < prev.start.seq) {
			return i, false
		}
		if a.start.pos >= tail {
			return i, false
		}
		prev = a
		if l := len(x.entries); a.arena >= first && a.arena > x.last && a.start.seq >= 0 &&
			(l == 0 || a.start.pos >= x.entries[l-1].start.pos && a.start.seq >= x.entries[l-1].start.seq) {
			x.entries = append(x.entries, a)
			x.last = a.arena
		}
	}
	return n, true
}

// catchUp is a reader's: it takes in the entries the writer has added to
// offsets.dat since the reader last read it, for arenas from first on and
// records before tail: those past what it read when the file is the same
// (its inode), all of them when the writer has rewritten it. A reader that
// stays open long would otherwise walk every arena written since it opened
// to seek, and stop at any damaged header on the way.
func (x *offsetIndex) catchUp(first, tail int64) {
	fd, err := openat(x.dirFd, offsetsName, unix.O_RDONLY)
	if err != nil {
		return
	}
	defer func() { _ = unix.Close(fd) }()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || (uint64(st.Ino) == x.seenIno && st.Size == x.seenSize) {
		return
	}
	from := int64(0)
	if uint64(st.Ino) == x.seenIno && st.Size > x.seenSize {
		from = x.seenSize
	}
	b := make([]byte, st.Size-from)
	n, _ := preadFull(fd, b, from) // a shorter read is taken as far as it goes
	b = b[:n]
	if from == 0 {
		if !offsetsHeaderOK(b) {
			return
		}
		b, from = b[offsetsHeaderSize:], offsetsHeaderSize
	}
	// Only whole entries, all valid, count as read: a torn or
	// half-written one is read again next time.
	valid, _ := x.add(b, first, tail)
	x.seenIno, x.seenSize = uint64(st.Ino), from+int64(valid)*offsetsEntrySize
}

// note records that the record at start is the first to start in or
// after arena; the writer and recovery call it for every record, and it
// does something only when the record starts in an arena past the last
// one noted. A record spanning arenas is noted for each of them.
func (x *offsetIndex) note(arena int64, start position) {
	if arena <= x.last {
		return
	}
	from := arena
	if x.last >= 0 {
		from = x.last + 1 // arenas no record starts in point at this record too
	}
	for id := from; id <= arena; id++ {
		x.entries = append(x.entries, arenaStart{id, start})
	}
	x.last = arena
	_ = x.write() // a failure leaves the file to the next sync's rewrite
}

// truncate forgets the entries of records at or after position pos: those
// a failed batch wrote but never published.
func (x *offsetIndex) truncate(pos int64) {
	i := len(x.entries)
	for i > 0 && x.entries[i-1].start.pos >= pos {
		i--
	}
	if i < x.synced {
		x.synced, x.rewrite = i, true
	}
	x.entries = x.entries[:i]
	x.last = -1
	if i > 0 {
		x.last = x.entries[i-1].arena
	}
}

// dropBefore forgets the entries of arenas before first, the head's.
func (x *offsetIndex) dropBefore(first int64) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].arena >= first })
	if i == 0 {
		return
	}
	x.entries = slices.Delete(x.entries, 0, i)
	x.synced = max(x.synced-i, 0)
}

// before returns the start of the last entry whose record's offset is at
// most o.
func (x *offsetIndex) before(o int64) (position, bool) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].start.seq > o })
	if i == 0 {
		return position{}, false
	}
	return x.entries[i-1].start, true
}

// atOrAfter returns the start of the first entry whose record starts at or
// after position pos.
func (x *offsetIndex) atOrAfter(pos int64) (position, bool) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].start.pos >= pos })
	if i == len(x.entries) {
		return position{}, false
	}
	return x.entries[i].start, true
}

// diskBytes is what offsets.dat takes on disk once the entries noted so far
// are synced: whole blocks of metaSize bytes, at least one.
func (x *offsetIndex) diskBytes() int64 {
	n := int64(offsetsHeaderSize + (x.inFile+len(x.entries)-x.synced)*offsetsEntrySize)
	return max(1, (n+metaSize-1)/metaSize) * metaSize
}

// sync appends the new entries to offsets.dat and syncs it, or rewrites
// the file when it is damaged.
func (x *offsetIndex) sync() error {
	if x.rewrite {
		return x.rewriteFile()
	}
	if x.synced == len(x.entries) && !x.dirty {
		return nil
	}
	if err := x.write(); err != nil {
		return err
	}
	if x.rewrite {
		return x.rewriteFile()
	}
	if err := unix.Fsync(x.fd); err != nil {
		return errorf("sync %s: %w", filepath.Join(x.dir, offsetsName), err)
	}
	x.dirty = false
	return nil
}

// write appends the entries not in offsets.dat yet, without a sync: note
// calls it as the writer starts an arena, for readers in other processes.
// A file it cannot open is rewritten at the next sync.
func (x *offsetIndex) write() error {
	if x.rewrite || x.synced == len(x.entries) {
		return nil
	}
	if x.fd < 0 {
		fd, err := openat(x.dirFd, offsetsName, unix.O_RDWR)
		if err != nil {
			x.rewrite = true
			return nil
		}
		x.fd = fd
	}
	buf := encodeEntries(nil, x.entries[x.synced:])
	if err := pwriteAll(x.fd, buf, int64(offsetsHeaderSize+x.inFile*offsetsEntrySize)); err != nil {
		x.rewrite = true // what was written of it is not to be trusted
		return errorf("write %s: %w", filepath.Join(x.dir, offsetsName), err)
	}
	x.inFile += len(x.entries) - x.synced
	x.synced = len(x.entries)
	x.dirty = true
	return nil
}

// compact rewrites offsets.dat when most of its entries are for arenas
// before the head, and more than compactMin of them.
func (x *offsetIndex) compact() error {
	if dead := x.inFile - x.synced; dead > compactMin && dead > x.synced {
		return x.rewriteFile()
	}
	return nil
}

// compactMin is how many dead entries (32 KiB) offsets.dat may hold before
// it is rewritten.
const compactMin = 1024

// compactForRoom rewrites offsets.dat without its dead entries when it has
// some and takes more than a block: under a disk cap the file counts
// against the cap (reserve), and between compactions it grows by an entry
// per arena, past what the smallest cap leaves it. It reports whether it
// rewrote the file.
func (x *offsetIndex) compactForRoom() (bool, error) {
	if x.inFile-x.synced <= 0 || x.diskBytes() <= metaSize {
		return false, nil
	}
	return true, x.rewriteFile()
}

// rewriteFile writes every entry into a new offsets.dat, durably.
func (x *offsetIndex) rewriteFile() error {
	if err := x.close(); err != nil {
		return err
	}
	image := make([]byte, offsetsHeaderSize, offsetsHeaderSize+len(x.entries)*offsetsEntrySize)
	copy(image, offsetsMagic[:])
	binary.LittleEndian.PutUint32(image[8:], offsetsVersion)
	image = encodeEntries(image, x.entries)
	if err := (qdir{path: x.dir, fd: x.dirFd}).writeFile(offsetsName, image); err != nil {
		return err
	}
	x.synced, x.inFile, x.rewrite, x.dirty = len(x.entries), len(x.entries), false, false
	return nil
}

// close closes the file.
func (x *offsetIndex) close() error {
	if x.fd < 0 {
		return nil
	}
	err := unix.Close(x.fd)
	x.fd = -1
	if err != nil {
		return errorf("close %s: %w", filepath.Join(x.dir, offsetsName), err)
	}
	return nil
}

func encodeEntries(dst []byte, entries []arenaStart) []byte {
	for _, a := range entries {
		var e [offsetsEntrySize]byte
		binary.LittleEndian.PutUint64(e[0:], uint64(a.arena))
		binary.LittleEndian.PutUint64(e[8:], uint64(a.start.pos))
		binary.LittleEndian.PutUint64(e[16:], uint64(a.start.seq))
		binary.LittleEndian.PutUint32(e[offsetsEntryData:], crc32.Checksum(e[:offsetsEntryData], castagnoli))
		dst = append(dst, e[:]...)
	}
	return dst
}

// preadFull reads b from off, until b is full, the file ends (n < len(b),
// err nil) or a read fails; n is what it read.
func preadFull(fd int, b []byte, off int64) (n int, err error) {
	for n < len(b) {
		k, err := unix.Pread(fd, b[n:], off+int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || k == 0 {
			return n, err
		}
		n += k
	}
	return n, nil
}

// pwriteAll writes all of b at off.
func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
