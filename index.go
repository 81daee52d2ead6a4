package bigqueue

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
)

// The index file, index.dat, is a meta file (see metafile.go) that says
// where the queue is:
//
//	kind's header fields (offset 16): | arena size u64 |
//	live slot:      tail position, tail sequence      (every Enqueue)
//	durable slots:  head pos, head seq, tail pos, tail seq   (every Flush)
//
// A position is a byte offset in the queue's stream, which never restarts:
// arena p / arenaSize holds it. A sequence counts messages: the tail
// sequence is the number of messages ever enqueued, a consumer's the number
// it has dequeued, so that Len is a subtraction. The head is the oldest
// message kept: new consumers start there, and no arena before its arena is
// on disk.
const (
	indexName            = "index.dat"
	indexArenaSizeOffset = 0 // within the kind's header fields

	// referenceMetadataName is the file the reference implementation keeps
	// its state in; finding it means a directory of the other format.
	referenceMetadataName = "metadata.dat"
)

var indexMagic = [8]byte{'B', 'Q', 'I', 'N', 'D', 'E', 'X', 0}

// createIndex writes a new index for an empty queue.
func createIndex(d qdir, arenaSize int) error {
	var fields [8]byte
	binary.LittleEndian.PutUint64(fields[indexArenaSizeOffset:], uint64(arenaSize))
	return d.writeFile(indexName, newMetaImage(indexMagic, fields[:], nil, [4]int64{}))
}

// openIndex maps the index of dir and returns it with the arena size it
// records.
func openIndex(d qdir, readOnly bool) (*metaFile, int, error) {
	m, err := openMetaFile(d, indexName, indexMagic, readOnly)
	if err != nil {
		return nil, 0, err
	}
	size, err := indexArenaSize(m.path, m.field())
	if err != nil {
		_ = m.close()
		return nil, 0, err
	}
	return m, size, nil
}

// indexArenaSize decodes and bounds the arena size of an index.
func indexArenaSize(path string, fields []byte) (int, error) {
	size := binary.LittleEndian.Uint64(fields[indexArenaSizeOffset:])
	if size < uint64(os.Getpagesize()) || size > maxArenaSize {
		return 0, errorf("%s: arena size %d out of range: %w", path, size, ErrCorrupt)
	}
	return int(size), nil
}

// ReadArenaSize returns the arena size recorded in the queue in dir, so that
// a tool can open a queue it did not create. It reads the index without
// locking or changing anything. An error wraps fs.ErrNotExist when dir holds
// no queue, and ErrCorrupt or ErrIncompatibleVersion when the index is
// damaged or of another format.
func ReadArenaSize(dir string) (int, error) {
	path := filepath.Join(dir, indexName)
	f, err := os.Open(path)
	if err != nil {
		return 0, errorf("read index: %w", err)
	}
	defer func() { _ = f.Close() }()
	b := make([]byte, metaSize)
	if _, err := io.ReadFull(f, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, errorf("%s is truncated: %w", path, ErrCorrupt)
		}
		return 0, errorf("read index: %w", err)
	}
	if err := checkMetaImage(path, b, indexMagic); err != nil {
		return 0, err
	}
	size, err := indexArenaSize(path, b[metaFieldsOffset:metaLiveOffset])
	if err != nil {
		return 0, err
	}
	return size, nil
}
