package bigqueue

import (
	"encoding/binary"
	"hash/crc32"
)

// A record is one message as it lies in the arenas: a header, then the
// message bytes. Records follow each other with no gap, except that a
// header is never split across two arenas: when fewer than headerSize bytes
// are left in an arena, the writer leaves them unused and the record starts
// at the beginning of the next arena. The message bytes may span any number
// of arenas, so a message can be larger than an arena.
//
//	 0       2       4               8                              16
//	+-------+-------+---------------+-------------------------------+------------
//	| magic | flags |    crc32c     |            length             | message...
//	+-------+-------+---------------+-------------------------------+------------
//	  uint16  uint16     uint32                  uint64               length bytes
//
// All integers are little endian. The checksum is CRC-32C (Castagnoli) over,
// in this order: the record's position in the queue (its byte offset from
// the start of the queue's life, 8 bytes), the flags (2 bytes), the length
// (8 bytes) and the message. The position makes a stale record left in a
// reused arena, or a record copied to another place, fail its check. A
// region of zeros never parses: its magic is wrong.
//
// flagBatchMore marks every record of an EnqueueBatch but the last, so that
// recovery after a crash keeps a batch whole or drops it whole.
//
// These constants are the on-disk format: they change only together with
// formatVersion.
const (
	recordMagic      = 0x5142 // "BQ" as little-endian bytes
	headerSize       = 16
	hdrMagicOffset   = 0
	hdrFlagsOffset   = 2
	hdrCRCOffset     = 4
	hdrLengthOffset  = 8
	flagBatchMore    = 1 << 0
	knownRecordFlags = flagBatchMore
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordHeader is a decoded header.
type recordHeader struct {
	flags  uint16
	crc    uint32
	length uint64
}

// putHeader writes h into b, which has room for headerSize bytes.
func putHeader(b []byte, h recordHeader) {
	binary.LittleEndian.PutUint16(b[hdrMagicOffset:], recordMagic)
	binary.LittleEndian.PutUint16(b[hdrFlagsOffset:], h.flags)
	binary.LittleEndian.PutUint32(b[hdrCRCOffset:], h.crc)
	binary.LittleEndian.PutUint64(b[hdrLengthOffset:], h.length)
}

// parseHeader decodes the header in b (at least headerSize bytes) of the
// record at position pos. It checks what a header alone can tell: the magic
// and the flags. The caller bounds the length.
func parseHeader(b []byte, pos int64) (recordHeader, error) {
	if magic := binary.LittleEndian.Uint16(b[hdrMagicOffset:]); magic != recordMagic {
		return recordHeader{}, errorf("record at position %d: bad magic %#04x: %w", pos, magic, ErrCorrupt)
	}
	h := recordHeader{
		flags:  binary.LittleEndian.Uint16(b[hdrFlagsOffset:]),
		crc:    binary.LittleEndian.Uint32(b[hdrCRCOffset:]),
		length: binary.LittleEndian.Uint64(b[hdrLengthOffset:]),
	}
	if h.flags&^knownRecordFlags != 0 {
		return recordHeader{}, errorf("record at position %d: unknown flags %#04x: %w", pos, h.flags, ErrCorrupt)
	}
	return h, nil
}

// crcPrefixSize is the size of what the checksum covers before the message.
const crcPrefixSize = 18

// crcStart begins the checksum of a record at pos with the given flags and
// length, using b as scratch space (crc32.Update's argument escapes, so a
// caller on the hot path passes memory it owns); the message bytes are added
// with crc32.Update(crc, castagnoli, ...).
func crcStart(b *[crcPrefixSize]byte, pos int64, flags uint16, length uint64) uint32 {
	binary.LittleEndian.PutUint64(b[0:], uint64(pos))
	binary.LittleEndian.PutUint16(b[8:], flags)
	binary.LittleEndian.PutUint64(b[10:], length)
	return crc32.Update(0, castagnoli, b[:])
}

// decodeRecord decodes one record that lies whole in buf, at queue position
// pos, and returns its message (a sub-slice of buf) and the record's size.
// The queue reads records in pieces from arenas; this is the same check on
// one buffer, used by tests and the fuzz target.
func decodeRecord(buf []byte, pos int64) (msg []byte, size int, err error) {
	if len(buf) < headerSize {
		return nil, 0, errorf("record at position %d: %d bytes, header needs %d: %w", pos, len(buf), headerSize, ErrCorrupt)
	}
	h, err := parseHeader(buf, pos)
	if err != nil {
		return nil, 0, err
	}
	if h.length > uint64(len(buf)-headerSize) {
		return nil, 0, errorf("record at position %d: length %d past the end of the data: %w", pos, h.length, ErrCorrupt)
	}
	msg = buf[headerSize : headerSize+int(h.length)]
	if crc := crc32.Update(crcStart(new([crcPrefixSize]byte), pos, h.flags, h.length), castagnoli, msg); crc != h.crc {
		return nil, 0, errorf("record at position %d: checksum %#08x, want %#08x: %w", pos, crc, h.crc, ErrCorrupt)
	}
	return msg, headerSize + int(h.length), nil
}

// encodeRecord appends the record of msg at position pos to dst. It is the
// one-buffer twin of the queue's writer, used by tests.
func encodeRecord(dst []byte, pos int64, flags uint16, msg []byte) []byte {
	var hdr [headerSize]byte
	putHeader(hdr[:], recordHeader{
		flags:  flags,
		crc:    crc32.Update(crcStart(new([crcPrefixSize]byte), pos, flags, uint64(len(msg))), castagnoli, msg),
		length: uint64(len(msg)),
	})
	return append(append(dst, hdr[:]...), msg...)
}
