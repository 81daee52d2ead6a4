package bigqueue

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// dirListing is what open finds in a queue's directory: the files of the
// queue, recognised by name. Any other file is left alone.
type dirListing struct {
	index, defaultConsumer, referenceMetadata bool
	arenas                                    []int64
	consumerFiles                             []string
	// temps are meta files whose creation a crash interrupted
	// (writeMetaFile's name.tmp, for a name of the queue's).
	temps []string
}

// listDir lists the queue's files in d. It changes nothing.
func listDir(d qdir) (dirListing, error) {
	var l dirListing
	entries, err := d.entries()
	if err != nil {
		return l, err
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == indexName:
			l.index = true
		case name == defaultConsumerFile:
			l.defaultConsumer = true
		case name == referenceMetadataName:
			l.referenceMetadata = true
		case isMetaTemp(name) && e.Type().IsRegular():
			l.temps = append(l.temps, name)
		case isConsumerFile(name) && e.Type().IsRegular():
			l.consumerFiles = append(l.consumerFiles, name)
		default:
			if id, ok := parseArenaName(name); ok {
				l.arenas = append(l.arenas, id)
			}
		}
	}
	return l, nil
}

// isQueueFile reports whether name is one of the queue's files.
func isQueueFile(name string) bool {
	switch {
	case name == indexName, name == offsetsName, name == lockName, name == reclaimLockName, name == wakeName,
		name == defaultConsumerFile,
		isConsumerFile(name), isMetaTemp(name):
		return true
	}
	_, ok := parseArenaName(name)
	return ok
}

// isMetaTemp reports whether name is the temporary file of one of the
// queue's meta files.
func isMetaTemp(name string) bool {
	meta, ok := strings.CutSuffix(name, tmpSuffix)
	return ok && (meta == indexName || meta == offsetsName || meta == defaultConsumerFile || isConsumerFile(meta))
}

// removeTemps deletes the temporary meta files a crash left in d.
func removeTemps(d qdir, temps []string) error {
	for _, name := range temps {
		if err := d.remove(name); err != nil {
			return err
		}
	}
	return nil
}

// qdir is a queue's directory, held open: every file of the queue is
// reached through fd, not through path, so that the queue keeps working
// in its own directory if the directory is renamed, and never writes into
// another one that takes its old path. path is for messages only.
type qdir struct {
	path string
	fd   int
}

// openQDir opens the directory at path.
func openQDir(path string) (qdir, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return qdir{path: path, fd: -1}, errorf("open directory %s: %w", path, &fs.PathError{Op: "open", Path: path, Err: err})
		}
		return qdir{path: path, fd: fd}, nil
	}
}

// join names a file of the directory, for messages.
func (d qdir) join(name string) string { return filepath.Join(d.path, name) }

// close closes the directory.
func (d qdir) close() error {
	if d.fd < 0 {
		return nil
	}
	return unix.Close(d.fd)
}

// sync makes the directory's entries (created, renamed and removed files)
// durable.
func (d qdir) sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return errorf("sync directory %s: %w", d.path, err)
	}
	return nil
}

// entries lists the directory, through a new open file description of it
// (a dup would share, and move, the offset of fd).
func (d qdir) entries() ([]fs.DirEntry, error) {
	fd, err := openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, errorf("read directory %s: %w", d.path, err)
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer func() { _ = f.Close() }()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, errorf("read directory %s: %w", d.path, err)
	}
	return entries, nil
}

// readFile returns the content of the file name.
func (d qdir) readFile(name string) ([]byte, error) {
	fd, err := openat(d.fd, name, unix.O_RDONLY)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.join(name), Err: err}
	}
	f := os.NewFile(uintptr(fd), d.join(name))
	defer func() { _ = f.Close() }()
	return io.ReadAll(f)
}

// exists reports whether d holds an entry name.
func (d qdir) exists(name string) bool {
	var sb unix.Stat_t
	return unix.Fstatat(d.fd, name, &sb, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// remove deletes the file name; a file already gone is not an error.
func (d qdir) remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return errorf("remove %s: %w", d.join(name), err)
	}
	return nil
}

// writeFile writes image to the file name through a temporary file,
// synced and renamed into place, and syncs the directory: the file appears
// whole or not at all.
func (d qdir) writeFile(name string, image []byte) error {
	tmp := name + tmpSuffix
	fd, err := openat(d.fd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return errorf("create %s: %w", d.join(tmp), err)
	}
	f := os.NewFile(uintptr(fd), d.join(tmp))
	_, err = f.Write(image)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(d.fd, tmp, d.fd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return errorf("write %s: %w", d.join(name), err)
	}
	return d.sync()
}
