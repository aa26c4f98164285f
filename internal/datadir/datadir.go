// Package datadir is how the operator's tools find the database that
// loyaltyd runs itself in embedded mode (`make run`): the default data
// directory both programs share, and the file in it where loyaltyd leaves
// the database's connection string while it runs. The embedded server's
// socket directory changes on every start, so nothing else could name it.
package datadir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Default is the embedded PostgreSQL's data directory when none is given,
// relative to the working directory (the repository's root for `make run`).
const Default = ".data/postgres"

// URLFile is the name, inside the data directory, of the file that holds
// the running embedded database's connection string.
const URLFile = "database-url"

// maxURLBytes bounds what ReadURL reads: a connection string is short.
const maxURLBytes = 4 << 10

// URLPath is the connection-string file of the data directory dir.
func URLPath(dir string) string { return filepath.Join(dir, URLFile) }

// WriteURL leaves url in dir's connection-string file, readable by its
// owner only (it grants the database's superuser). The file is replaced
// atomically (a temporary file renamed over it), so a reader never sees a
// half-written one, and a stale one left by a killed process is
// overwritten.
func WriteURL(dir, url string) error {
	if url == "" || len(url) > maxURLBytes || strings.ContainsAny(url, "\r\n") {
		return fmt.Errorf("write %s: not a one-line connection string of at most %d bytes", URLPath(dir), maxURLBytes)
	}
	f, err := os.CreateTemp(dir, "."+URLFile+"-*") // mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", URLPath(dir), err)
	}
	_, err = f.WriteString(url + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), URLPath(dir))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", URLPath(dir), err)
	}
	return nil
}

// ReadURL returns the connection string in dir's file. An error wrapping
// os.ErrNotExist means no embedded loyaltyd runs on dir (or has ever run
// there and stopped cleanly).
func ReadURL(dir string) (string, error) {
	f, err := os.Open(URLPath(dir))
	if err != nil {
		return "", fmt.Errorf("read the database's address: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxURLBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", URLPath(dir), err)
	}
	url := string(bytes.TrimSpace(data))
	if url == "" || len(data) > maxURLBytes || strings.ContainsAny(url, "\r\n") {
		return "", fmt.Errorf("read %s: not a one-line connection string of at most %d bytes", URLPath(dir), maxURLBytes)
	}
	return url, nil
}

// RemoveURL removes dir's file if it still holds url: on a clean shutdown
// the file goes, but never one that another start has written since.
func RemoveURL(dir, url string) error {
	have, err := ReadURL(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && have != url) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(URLPath(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", URLPath(dir), err)
	}
	return nil
}
