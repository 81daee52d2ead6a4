// Command pack writes modules of this repository into a directory laid out
// as a module proxy serves them (GOPROXY=file://DIR), at one version, so that
// the release check can `go get` and `go install` them from an empty module
// exactly as a user would from the public proxy.
//
// Usage:
//
//	go run . -version v0.1.0 -out DIR MODULE_DIR...
//
// A module's files are those git would archive: tracked or new files that
// are not ignored, without those marked export-ignore in .gitattributes
// (the go command builds a module zip from `git archive`, which honours
// export-ignore). Content comes from the working tree, so a change can be
// checked before it is committed. golang.org/x/mod/zip then applies the
// module zip rules: no nested modules, no vendor directories, size limits.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	version := flag.String("version", "", "version to pack the modules at (vX.Y.Z)")
	out := flag.String("out", "", "directory to write the proxy layout into")
	flag.Parse()
	if *version == "" || *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: pack -version vX.Y.Z -out DIR MODULE_DIR...")
		os.Exit(2)
	}
	for _, dir := range flag.Args() {
		path, err := pack(dir, *version, *out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pack %s: %v\n", dir, err)
			os.Exit(1)
		}
		fmt.Printf("packed %s@%s\n", path, *version)
	}
}

// pack writes the module in dir at version into the proxy directory out and
// returns its module path.
func pack(dir, version, out string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	path := modfile.ModulePath(gomod)
	if path == "" {
		return "", errors.New("go.mod has no module line")
	}
	m := module.Version{Path: path, Version: version}
	if err := module.Check(m.Path, m.Version); err != nil {
		return "", err
	}
	files, err := archivedFiles(dir)
	if err != nil {
		return "", err
	}
	escPath, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	escVersion, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	vdir := filepath.Join(out, escPath, "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := zip.Create(&buf, m, files); err != nil {
		return "", err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return "", err
	}
	for name, data := range map[string][]byte{
		escVersion + ".zip":  buf.Bytes(),
		escVersion + ".mod":  gomod,
		escVersion + ".info": info,
		"list":               []byte(version + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return path, nil
}

// archivedFiles lists the files of the module rooted at dir that git would
// put in an archive of it.
func archivedFiles(dir string) ([]zip.File, error) {
	listed, err := git(dir, nil, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, name := range strings.Split(string(listed), "\x00") {
		if name == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		names = append(names, name)
	}
	ignored, err := exportIgnored(dir, names)
	if err != nil {
		return nil, err
	}
	var files []zip.File
	for _, name := range names {
		if !ignored[name] {
			files = append(files, dirFile{root: dir, name: name})
		}
	}
	return files, nil
}

// exportIgnored returns the names that carry the export-ignore attribute.
func exportIgnored(dir string, names []string) (map[string]bool, error) {
	in := strings.Join(names, "\x00") + "\x00"
	outb, err := git(dir, strings.NewReader(in), "check-attr", "-z", "--stdin", "export-ignore")
	if err != nil {
		return nil, err
	}
	// Output: NUL-separated triples of path, attribute, value.
	fields := strings.Split(string(outb), "\x00")
	ignored := make(map[string]bool)
	for i := 0; i+2 < len(fields); i += 3 {
		if fields[i+2] == "set" {
			ignored[fields[i]] = true
		}
	}
	return ignored, nil
}

func git(dir string, stdin *strings.Reader, args ...string) ([]byte, error) {
	// The checkout may belong to another user than the one running the
	// check (CI runs the tests as root); git refuses such a repository
	// unless it is named safe. Nothing here writes to it.
	cmd := exec.Command("git", append([]string{"-c", "safe.directory=*"}, args...)...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// dirFile is a file of the working tree, as zip.File.
type dirFile struct{ root, name string }

func (f dirFile) Path() string { return filepath.ToSlash(f.name) }

func (f dirFile) Lstat() (os.FileInfo, error) { return os.Lstat(filepath.Join(f.root, f.name)) }

func (f dirFile) Open() (io.ReadCloser, error) {
	return os.Open(filepath.Join(f.root, f.name))
}
