package bigqueue

import (
	"os"
	"path/filepath"
	"strings"
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

// listDir lists the queue's files in dir. It changes nothing.
func listDir(dir string) (dirListing, error) {
	var l dirListing
	entries, err := os.ReadDir(dir)
	if err != nil {
		return l, errorf("read directory %s: %w", dir, err)
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
		case isConsumerFile(name):
			l.consumerFiles = append(l.consumerFiles, name)
		default:
			if id, ok := parseArenaName(name); ok {
				l.arenas = append(l.arenas, id)
			}
		}
	}
	return l, nil
}

// isMetaTemp reports whether name is the temporary file of one of the
// queue's meta files.
func isMetaTemp(name string) bool {
	meta, ok := strings.CutSuffix(name, tmpSuffix)
	return ok && (meta == indexName || meta == offsetsName || meta == defaultConsumerFile || isConsumerFile(meta))
}

// removeTemps deletes the temporary meta files a crash left in dir.
func removeTemps(dir string, temps []string) error {
	for _, name := range temps {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			return errorf("remove %s: %w", filepath.Join(dir, name), err)
		}
	}
	return nil
}
