package bigqueue

import (
	"fmt"
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
	putHeader(a.data[off:], recordHeader{flags: flags, crc: crc, length: uint64(len(msg))})
	pos = start + headerSize
	for len(msg) > 0 {
		id, off = q.arenaOf(pos)
		if a.id != id {
			if a, err = q.am.getForWrite(id); err != nil {
				return 0, err
			}
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
	a := q.am.front
	if a == nil || a.id != id {
		if !q.am.exists(id) {
			return
		}
		var err error
		if a, err = q.am.getForWrite(id); err != nil {
			return
		}
	}
	clear(a.data[off : off+headerSize])
}

// readHeader decodes the header of the record at pos, which lies before
// limit, and bounds its length by limit.
func (q *MmapQueue) readHeader(pos, limit int64) (start int64, h recordHeader, err error) {
	start = q.recordStart(pos)
	if start+headerSize > limit {
		return 0, h, fmt.Errorf("record at position %d: header past the tail %d: %w", start, limit, ErrCorrupt)
	}
	id, off := q.arenaOf(start)
	a, err := q.am.get(id)
	if err != nil {
		return 0, h, err
	}
	if h, err = parseHeader(a.data[off:off+headerSize], start); err != nil {
		return 0, h, fmt.Errorf("%s: %w", q.am.path(id), err)
	}
	if h.length > uint64(limit-start-headerSize) {
		return 0, h, fmt.Errorf("%s: record at position %d: length %d past the tail %d: %w",
			q.am.path(id), start, h.length, limit, ErrCorrupt)
	}
	return start, h, nil
}

// readRecord reads the record at pos, which ends at or before limit, and
// verifies its checksum. With dst != nil... the message is appended to dst
// (copy true) or only checked (copy false). It returns the position after
// the record and the record's flags.
func (q *MmapQueue) readRecord(pos, limit int64, dst []byte, copyOut bool) (out []byte, next int64, flags uint16, err error) {
	start, h, err := q.readHeader(pos, limit)
	if err != nil {
		return dst, 0, 0, err
	}
	n := int(h.length)
	if copyOut {
		if dst == nil {
			dst = make([]byte, 0, n)
		} else {
			dst = slices.Grow(dst, n)
		}
	}
	crc := crcStart(&q.crcScratch, start, h.flags, h.length)
	p := start + headerSize
	for left := n; left > 0; {
		id, off := q.arenaOf(p)
		a, err := q.am.get(id)
		if err != nil {
			return dst, 0, 0, err
		}
		chunk := a.data[off:]
		if len(chunk) > left {
			chunk = chunk[:left]
		}
		crc = crc32.Update(crc, castagnoli, chunk)
		if copyOut {
			dst = append(dst, chunk...)
		}
		left -= len(chunk)
		p += int64(len(chunk))
	}
	if crc != h.crc {
		id, _ := q.arenaOf(start)
		return dst[:len(dst)-n*boolInt(copyOut)], 0, 0, fmt.Errorf("%s: record at position %d: checksum %#08x, want %#08x: %w",
			q.am.path(id), start, crc, h.crc, ErrCorrupt)
	}
	return dst, p, h.flags, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
