package bigqueue

import (
	"hash/crc32"
	"slices"
)

// position is a place in the queue's stream: pos is a byte offset from the
// start of the queue's life, seq the number of messages before it.
type position struct {
	pos int64
	seq int64
}

// A stream is the queue's records laid one after another across its
// arenas (see record.go for one record). Position p lies in arena
// p / size at offset p % size. The stream owns every read and write of
// arena bytes: the position arithmetic, writing records, reading and
// verifying them (from a mapping, or through a window under a memory cap),
// and clearing the header slot at the tail. The queue's lock guards it.
type stream struct {
	size int // arena size
	am   *arenaManager
	idx  *offsetIndex // where records start, arena by arena; nil in some tests

	// writtenFrom is the tail as open left it. A record at or after it
	// was written by this stream, into the page cache it is read from,
	// and checked as it was written: read verifies the checksum only of
	// records found on disk at open.
	writtenFrom int64

	scratch [crcPrefixSize + crcJoinMax]byte // for recordCRC and crcStart on the hot path
}

// arenaOf returns the arena holding position pos and the offset in it.
func (s *stream) arenaOf(pos int64) (id int64, off int) {
	size := int64(s.size)
	return pos / size, int(pos % size)
}

// messageArena returns the arena in which the message at position pos
// starts: a position in the last headerSize-1 bytes of an arena names a
// message in the next one, and needs nothing of its own arena.
func (s *stream) messageArena(pos int64) int64 {
	return s.recordStart(pos) / int64(s.size)
}

// recordStart returns where a record written at pos starts: pos itself, or
// the start of the next arena when the header would not fit in this one.
func (s *stream) recordStart(pos int64) int64 {
	size := int64(s.size)
	if left := size - pos%size; left < headerSize {
		return pos + left
	}
	return pos
}

// spans calls f, until it returns an error, for each arena that the
// positions [from, to) of the stream touch (from < to), with the offsets
// [lo, hi) of their part in that arena.
func (s *stream) spans(from, to int64, f func(id int64, lo, hi int) error) error {
	first, lo := s.arenaOf(from)
	last, end := s.arenaOf(to - 1)
	for id := first; id <= last; id++ {
		l, h := 0, s.size
		if id == first {
			l = lo
		}
		if id == last {
			h = end + 1
		}
		if err := f(id, l, h); err != nil {
			return err
		}
	}
	return nil
}

// recordEnd returns the position after a record of n message bytes written
// at pos.
func (s *stream) recordEnd(pos int64, n int) int64 {
	return s.recordStart(pos) + headerSize + int64(n)
}

// write writes msg as the record of the message at at and returns the
// position after it. The caller has checked the space (reserve in
// reclaim.go).
func (s *stream) write(at position, msg []byte, flags uint16) (int64, error) {
	start := s.recordStart(at.pos)
	id, off := s.arenaOf(start)
	a, err := s.am.getForWrite(id)
	if err != nil {
		return 0, err
	}
	crc := recordCRC(&s.scratch, start, flags, msg)
	if err := s.am.prepareWrite(a, off, min(off+headerSize+len(msg), s.size)); err != nil {
		return 0, err
	}
	putHeader(a.data[off:], recordHeader{flags: flags, crc: crc, length: uint64(len(msg))})
	pos := start + headerSize
	for len(msg) > 0 {
		id, off = s.arenaOf(pos)
		if a.id != id {
			if a, err = s.am.getForWrite(id); err != nil {
				return 0, err
			}
			if err := s.am.prepareWrite(a, off, min(off+len(msg), s.size)); err != nil {
				return 0, err
			}
		}
		n := copy(a.data[off:], msg)
		msg = msg[n:]
		pos += int64(n)
	}
	s.noteStart(position{start, at.seq})
	return pos, nil
}

// noteStart tells the offset index where a record starts.
func (s *stream) noteStart(start position) {
	if s.idx == nil {
		return
	}
	if id := start.pos / int64(s.size); id > s.idx.last {
		s.idx.note(id, start)
	}
}

// clearHeaderAt zeroes the header slot of the record that would be written
// at pos, the tail, before the tail is published. Past the tail may lie
// whole records that were written but never published (a batch cut short by
// a kill -9); when the live slot of the index later fails its checksum,
// recovery reads on from record to record, and would take such a record for
// one that follows the tail. An arena that is not on disk holds nothing to
// clear; one that cannot be mapped is not read either.
func (s *stream) clearHeaderAt(pos int64) {
	id, off := s.arenaOf(s.recordStart(pos))
	a := s.am.mapping(id)
	if a == nil {
		if !s.am.exists(id) {
			return
		}
		var err error
		if a, err = s.am.get(id); err != nil {
			return
		}
	}
	if off+headerSize > a.allocated && s.am.allocateTo(a, off+headerSize) != nil {
		return // a hole it could not allocate reads as zeros already
	}
	clear(a.data[off : off+headerSize])
}

// read appends the message of the record at pos, which ends at or before
// limit (the tail), to dst (a new slice when dst is nil) and returns it with
// the position after the record. Unmapped arenas are read through w. The
// checksum is verified when the record was on disk at open; a record this
// stream wrote is not verified on the way out: its bytes are the ones it
// wrote, in the page cache, changed by no one since (the lock keeps other
// writers out), and the CRC of a large message costs as much as copying it.
// On error dst is returned as it was passed.
func (s *stream) read(w *window, pos, limit int64, dst []byte) (out []byte, next int64, err error) {
	out, next, _, err = s.record(w, pos, limit, dst, true)
	return out, next, err
}

// verify checks the record at pos, which ends at or before limit, and its
// checksum, and returns the position after it and its flags. It copies
// nothing: it is for recovery and Check.
func (s *stream) verify(w *window, pos, limit int64) (next int64, flags uint16, err error) {
	_, next, flags, err = s.record(w, pos, limit, nil, false)
	return next, flags, err
}

// record is read (copyOut set) and verify (not set).
func (s *stream) record(w *window, pos, limit int64, dst []byte, copyOut bool) (out []byte, next int64, flags uint16, err error) {
	if copyOut {
		if w.open {
			if out, next, flags, ok := s.windowedRecord(w, pos, limit, dst); ok {
				return out, next, flags, nil
			}
		}
		if out, next, flags, ok := s.mappedRecord(pos, limit, dst); ok {
			return out, next, flags, nil
		}
	}
	start, h, err := s.header(w, pos, limit)
	if err != nil {
		return dst, 0, 0, err
	}
	n := int(h.length)
	in := dst
	check := !copyOut || start < s.writtenFrom
	fresh := copyOut && dst == nil // allocate dst, and without zeroing it when one piece fills it
	if copyOut && !fresh {
		dst = slices.Grow(dst, n)
	}
	var crc uint32
	if check {
		crc = crcStart((*[crcPrefixSize]byte)(s.scratch[:crcPrefixSize]), start, h.flags, h.length)
	}
	p := start + headerSize
	for left := n; left > 0; {
		id, off := s.arenaOf(p)
		k := min(left, s.size-off)
		if copyOut && k >= directMin(s.size) && s.windowed(id) && !w.holds(id, off) {
			// A large piece of an unmapped arena: read it straight into dst
			// (but what the window holds already, the header's read
			// brought in, is taken from it first).
			if fresh {
				dst, fresh = make([]byte, 0, n), false
			}
			l := len(dst)
			dst = dst[:l+k]
			if err := w.readAt(s.am, id, off, dst[l:]); err != nil {
				return in, 0, 0, err
			}
			if check {
				crc = crc32.Update(crc, castagnoli, dst[l:])
			}
		} else {
			b, err := s.chunk(w, p, left, limit)
			if err != nil {
				return in, 0, 0, err
			}
			k = len(b)
			if check {
				crc = crc32.Update(crc, castagnoli, b)
			}
			switch {
			case fresh && k == n:
				// The whole message in one piece: one allocation,
				// not zeroed first (see appendMessage).
				dst, fresh = appendMessage(nil, b), false
			case fresh:
				dst, fresh = append(make([]byte, 0, n), b...), false
			case copyOut:
				dst = append(dst, b...)
			}
		}
		left -= k
		p += int64(k)
	}
	if check && crc != h.crc {
		id, _ := s.arenaOf(start)
		return in, 0, 0, errorf("%s: record at position %d: checksum %#08x, want %#08x: %w",
			s.am.path(id), start, crc, h.crc, ErrCorrupt)
	}
	if fresh {
		dst = []byte{} // an empty message
	}
	return dst, p, h.flags, nil
}

// mappedRecord is read's fast path, for the common case: a record this
// stream wrote (no checksum to verify, see read), whole in one arena that
// is mapped (so read through no window). ok is false when the record is
// not such a one, or looks wrong: the general path then reads it, and
// says what is wrong.
func (s *stream) mappedRecord(pos, limit int64, dst []byte) (out []byte, next int64, flags uint16, ok bool) {
	start := s.recordStart(pos)
	if start < s.writtenFrom || start+headerSize > limit {
		return nil, 0, 0, false
	}
	id, off := s.arenaOf(start)
	a := s.am.mapping(id)
	if a == nil || off+headerSize > s.size {
		return nil, 0, 0, false
	}
	s.am.touch(a) // a use, as get counts it
	b, flags, ok := s.inPlace(a.data, off, start, limit)
	if !ok {
		return nil, 0, 0, false
	}
	return appendMessage(dst, b), start + headerSize + int64(len(b)), flags, true
}

// windowedRecord is read's fast path under a memory cap: a record this
// stream wrote, whole in what the window w holds. ok is false otherwise.
func (s *stream) windowedRecord(w *window, pos, limit int64, dst []byte) (out []byte, next int64, flags uint16, ok bool) {
	start := s.recordStart(pos)
	if start < s.writtenFrom || start+headerSize > limit {
		return nil, 0, 0, false
	}
	id, off := s.arenaOf(start)
	if !w.holds(id, off) {
		return nil, 0, 0, false
	}
	b, flags, ok := s.inPlace(w.buf, off-w.off, start, limit)
	if !ok {
		return nil, 0, 0, false
	}
	return appendMessage(dst, b), start + headerSize + int64(len(b)), flags, true
}

// inPlace returns the message of the record at position start, which lies
// at offset off of buf, when its header and message lie whole in buf and
// before limit; ok is false otherwise, or when the header looks wrong.
func (s *stream) inPlace(buf []byte, off int, start, limit int64) (msg []byte, flags uint16, ok bool) {
	if off+headerSize > len(buf) {
		return nil, 0, false
	}
	h, err := parseHeader(buf[off:off+headerSize], start)
	if err != nil || h.length > uint64(limit-start-headerSize) || h.length > uint64(len(buf)-off-headerSize) {
		return nil, 0, false
	}
	return buf[off+headerSize : off+headerSize+int(h.length)], h.flags, true
}

// appendMessage appends msg to dst, or returns a copy of it when dst is
// nil (an empty message is not nil). The copy is make then copy, which the
// compiler turns into one allocation without zeroing (makeslicecopy):
// 8-10 ns less than append's growslice for 16 and 128 bytes.
func appendMessage(dst, msg []byte) []byte {
	if dst != nil {
		return append(dst, msg...)
	}
	out := make([]byte, len(msg))
	copy(out, msg)
	return out
}

// header decodes the header of the record at pos, which lies before limit,
// and bounds its length by limit. It returns where the record starts.
func (s *stream) header(w *window, pos, limit int64) (start int64, h recordHeader, err error) {
	start = s.recordStart(pos)
	if start+headerSize > limit {
		return 0, h, errorf("record at position %d: header past the tail %d: %w", start, limit, ErrCorrupt)
	}
	b, err := s.chunk(w, start, headerSize, limit)
	if err != nil {
		return 0, h, err
	}
	id, off := s.arenaOf(start)
	if len(b) < headerSize {
		// The window ended inside the header: read it whole.
		var hdr [headerSize]byte
		if err := w.readAt(s.am, id, off, hdr[:]); err != nil {
			return 0, h, err
		}
		b = hdr[:]
	}
	if h, err = parseHeader(b, start); err != nil {
		return 0, h, errorf("%s: %w", s.am.path(id), err)
	}
	if h.length > uint64(limit-start-headerSize) {
		return 0, h, errorf("%s: record at position %d: length %d past the tail %d: %w",
			s.am.path(id), start, h.length, limit, ErrCorrupt)
	}
	return start, h, nil
}

// chunk returns up to n bytes of the stream at position p, at least one,
// reading a mapped arena in place and, under a memory cap, an unmapped one
// through the window w. limit is the tail: no byte at or past it is read.
func (s *stream) chunk(w *window, p int64, n int, limit int64) ([]byte, error) {
	id, off := s.arenaOf(p)
	n = min(n, s.size-off)
	if !s.windowed(id) {
		a, err := s.am.get(id)
		if err != nil {
			return nil, err
		}
		return a.data[off : off+n], nil
	}
	avail := int(min(int64(s.size-off), limit-p))
	return w.view(s.am, id, off, n, avail)
}

// windowed reports whether arena id is read through a window: when it is
// not mapped, under a memory cap or while the process has mapLimit arenas
// mapped (mapping it would unmap another, most likely one the reader needs
// next). Otherwise an arena is mapped to be read.
func (s *stream) windowed(id int64) bool {
	if s.am.mapping(id) != nil {
		return false
	}
	return s.am.max > 0 || mappedArenas.Load() >= mapLimit()
}
