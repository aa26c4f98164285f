package datadir

import (
	"errors"
	"os"
	"testing"
)

// TestURLFile: the file is written whole, for its owner only, replaces a
// stale one, and is removed only while it holds the remover's URL.
func TestURLFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadURL(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no file: ReadURL = %v, want os.ErrNotExist", err)
	}
	const stale, current = "host=/tmp/epg-1/sock port=5432 dbname=loyalty", "host=/tmp/epg-2/sock port=5432 dbname=loyalty"
	for _, url := range []string{stale, current} {
		if err := WriteURL(dir, url); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := ReadURL(dir); err != nil || got != current {
		t.Fatalf("ReadURL = %q, %v; want the last one written, %q", got, err, current)
	}
	if fi, err := os.Stat(URLPath(dir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v, %v; want mode 0600", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the directory, want the one (no temporary file left)", len(entries))
	}
	// Another run's URL is not this run's to remove.
	if err := RemoveURL(dir, stale); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadURL(dir); err != nil {
		t.Fatalf("RemoveURL of another URL removed the file: %v", err)
	}
	if err := RemoveURL(dir, current); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadURL(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after RemoveURL: %v, want the file gone", err)
	}
	for _, bad := range []string{"", "two\nlines"} {
		if err := WriteURL(dir, bad); err == nil {
			t.Errorf("WriteURL(%q) succeeded, want an error", bad)
		}
	}
}
