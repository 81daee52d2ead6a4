package bigqueue

import (
	"hash/crc32"
	"slices"
)

// The queue's stream: records laid one after another across the arenas (see
// record.go), addressed by position. These helpers read and write records;
// the caller holds the queue's lock.

// arenaOf returns the arena holding position pos and the offset in it.
func (q *MmapQueue) arenaOf(pos int64) (id int64, off int) {
	size := int64(q.conf.arenaSize)
	return pos / size, int(pos % size)
}

// recordStart returns where a record written at pos starts: pos itself, or
// the start of the next arena when the header would not fit in this one.
func (q *MmapQueue) recordStart(pos int64) int64 {
	size := int64(q.conf.arenaSize)
	if left := size - pos%size; left < headerSize {
		return pos + left
	}
	return pos
}

// recordEnd returns the position after a record of n message bytes written
// at pos.
func (q *MmapQueue) recordEnd(pos int64, n int) int64 {
	return q.recordStart(pos) + headerSize + int64(n)
}

// writeRecord writes msg as the record at pos and returns the position after
// it. The space must have been checked with reserve.
func (q *MmapQueue) writeRecord(pos int64, msg []byte, flags uint16) (int64, error) {
	start := q.recordStart(pos)
	id, off := q.arenaOf(start)
	a, err := q.am.getForWrite(id)
	if err != nil {
		return 0, err
	}
	crc := crc32.Update(crcStart(&q.crcScratch, start, flags, uint64(len(msg))), castagnoli, msg)
	a.prepareWrite(off, off+headerSize+len(msg))
	putHeader(a.data[off:], recordHeader{flags: flags, crc: crc, length: uint64(len(msg))})
	pos = start + headerSize
	for len(msg) > 0 {
		id, off = q.arenaOf(pos)
		if a.id != id {
			if a, err = q.am.getForWrite(id); err != nil {
				return 0, err
			}
			a.prepareWrite(off, off+len(msg))
		}
		n := copy(a.data[off:], msg)
		msg = msg[n:]
		pos += int64(n)
	}
	return pos, nil
}

// clearHeaderAt zeroes the header slot of the record that would be written
// at pos, the tail, before the tail is published. Past the tail may lie
// whole records that were written but never published (a batch cut short by
// a kill -9); when the live slot of the index later fails its checksum,
// recovery reads on from record to record, and would take such a record for
// one that follows the tail. An arena that is not on disk holds nothing to
// clear; one that cannot be mapped is not read either.
func (q *MmapQueue) clearHeaderAt(pos int64) {
	id, off := q.arenaOf(q.recordStart(pos))
	a := q.am.mapping(id)
	if a == nil {
		if !q.am.exists(id) {
			return
		}
		var err error
		if a, err = q.am.get(id); err != nil {
			return
		}
	}
	clear(a.data[off : off+headerSize])
}

// chunk returns up to n bytes of the stream at position p, at least one,
// reading a mapped arena in place and, under a memory cap, an unmapped one
// through the window w. limit is the tail: no byte at or past it is read.
func (q *MmapQueue) chunk(w *window, p int64, n int, limit int64) ([]byte, error) {
	id, off := q.arenaOf(p)
	n = min(n, q.conf.arenaSize-off)
	if !q.windowed(id) {
		a, err := q.am.get(id)
		if err != nil {
			return nil, err
		}
		return a.data[off : off+n], nil
	}
	avail := int(min(int64(q.conf.arenaSize-off), limit-p))
	return w.view(q.am, id, off, n, avail)
}

// windowed reports whether arena id is read through a window: under a
// memory cap, when it is not mapped. Without a cap, every arena is mapped.
func (q *MmapQueue) windowed(id int64) bool {
	return q.am.max > 0 && q.am.mapping(id) == nil
}

// readHeader decodes the header of the record at pos, which lies before
// limit, and bounds its length by limit.
func (q *MmapQueue) readHeader(w *window, pos, limit int64) (start int64, h recordHeader, err error) {
	start = q.recordStart(pos)
	if start+headerSize > limit {
		return 0, h, errorf("record at position %d: header past the tail %d: %w", start, limit, ErrCorrupt)
	}
	b, err := q.chunk(w, start, headerSize, limit)
	if err != nil {
		return 0, h, err
	}
	id, off := q.arenaOf(start)
	if len(b) < headerSize {
		// The window ended inside the header: read it whole.
		var hdr [headerSize]byte
		if err := w.readAt(q.am, id, off, hdr[:]); err != nil {
			return 0, h, err
		}
		b = hdr[:]
	}
	if h, err = parseHeader(b, start); err != nil {
		return 0, h, errorf("%s: %w", q.am.path(id), err)
	}
	if h.length > uint64(limit-start-headerSize) {
		return 0, h, errorf("%s: record at position %d: length %d past the tail %d: %w",
			q.am.path(id), start, h.length, limit, ErrCorrupt)
	}
	return start, h, nil
}

// readRecord reads the record at pos, which ends at or before limit,
// reading unmapped arenas through w. With copyOut the message is appended to
// dst (a new slice when dst is nil) and its checksum verified when the
// record was on disk at open; without copyOut the record is only verified,
// for recovery and Check. A record this MmapQueue wrote itself is not
// verified on the way out: its bytes are the ones it wrote, in the page
// cache, checked by no one else since (the lock keeps other writers out),
// and the CRC of a large message costs as much as copying it. It returns the
// position after the record and the record's flags. On error dst is
// returned as it was passed.
func (q *MmapQueue) readRecord(w *window, pos, limit int64, dst []byte, copyOut bool) (out []byte, next int64, flags uint16, err error) {
	start, h, err := q.readHeader(w, pos, limit)
	if err != nil {
		return dst, 0, 0, err
	}
	n := int(h.length)
	in := dst
	verify := !copyOut || start < q.writtenFrom
	fresh := copyOut && dst == nil // allocate dst, and without zeroing it when one piece fills it
	if copyOut && !fresh {
		dst = slices.Grow(dst, n)
	}
	var crc uint32
	if verify {
		crc = crcStart(&q.crcScratch, start, h.flags, h.length)
	}
	p := start + headerSize
	for left := n; left > 0; {
		id, off := q.arenaOf(p)
		k := min(left, q.conf.arenaSize-off)
		if copyOut && k >= windowSize && q.windowed(id) {
			// A large piece of an unmapped arena: read it straight into dst.
			if fresh {
				dst, fresh = make([]byte, 0, n), false
			}
			l := len(dst)
			dst = dst[:l+k]
			if err := w.readAt(q.am, id, off, dst[l:]); err != nil {
				return in, 0, 0, err
			}
			if verify {
				crc = crc32.Update(crc, castagnoli, dst[l:])
			}
		} else {
			b, err := q.chunk(w, p, left, limit)
			if err != nil {
				return in, 0, 0, err
			}
			k = len(b)
			if verify {
				crc = crc32.Update(crc, castagnoli, b)
			}
			switch {
			case fresh && k == n:
				// The whole message in one piece: append allocates the
				// copy without zeroing it first, as make would.
				dst, fresh = append([]byte(nil), b...), false
			case fresh:
				dst, fresh = append(make([]byte, 0, n), b...), false
			case copyOut:
				dst = append(dst, b...)
			}
		}
		left -= k
		p += int64(k)
	}
	if verify && crc != h.crc {
		id, _ := q.arenaOf(start)
		return in, 0, 0, errorf("%s: record at position %d: checksum %#08x, want %#08x: %w",
			q.am.path(id), start, crc, h.crc, ErrCorrupt)
	}
	if fresh {
		dst = []byte{} // an empty message
	}
	return dst, p, h.flags, nil
}
