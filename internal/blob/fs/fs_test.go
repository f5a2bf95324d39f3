package fs_test

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/blob/blobtest"
	"github.com/changegate/changegate/internal/blob/fs"
)

func open(t *testing.T) *fs.Store {
	t.Helper()
	s, err := fs.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) blob.Store { return open(t) }, blobtest.Options{})
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	s := open(t)
	if err := s.Put(t.Context(), "records/000000000001-a.dsse.json", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel  string
		want iofs.FileMode
	}{
		{".", iofs.ModeDir | 0o700},
		{"records", iofs.ModeDir | 0o700},
		{"records/000000000001-a.dsse.json", 0o444},
	} {
		fi, err := os.Stat(filepath.Join(s.Dir(), tc.rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != tc.want {
			t.Errorf("mode of %s = %v, want %v", tc.rel, fi.Mode(), tc.want)
		}
	}
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "records"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("records/ holds %d entries, want 1 (no temporary file left)", len(entries))
	}
}

// A blob file cannot be replaced through the store, nor opened for writing by
// a careless process.
func TestNoOverwrite(t *testing.T) {
	t.Parallel()
	s := open(t)
	key := "records/000000000001-a.dsse.json"
	if err := s.Put(t.Context(), key, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), key, []byte("second")); !errors.Is(err, blob.ErrExists) {
		t.Fatalf("Put of other bytes: %v, want ErrExists", err)
	}
	name := filepath.Join(s.Dir(), filepath.FromSlash(key))
	if os.Geteuid() != 0 { // root ignores mode bits
		if f, err := os.OpenFile(name, os.O_WRONLY, 0); err == nil {
			f.Close()
			t.Error("blob file opened for writing, want permission denied")
		}
	}
	got, err := os.ReadFile(name)
	if err != nil || string(got) != "first" {
		t.Errorf("file holds %q (%v), want %q", got, err, "first")
	}
}

// Leftover temporary files from a crash are never listed or read as keys.
func TestTempFilesIgnored(t *testing.T) {
	t.Parallel()
	s := open(t)
	if err := s.Put(t.Context(), "records/a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "records", ".tmp-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(t.Context(), "", func(k string) error { keys = append(keys, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "records/a" {
		t.Errorf("List = %q, want [records/a]", keys)
	}
}

// A key that names a directory of other keys can neither be read nor written.
func TestKeyIsDirectory(t *testing.T) {
	t.Parallel()
	s := open(t)
	if err := s.Put(t.Context(), "a/b", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a", []byte("a")); err == nil {
		t.Error("Put(a) over directory a/ succeeded")
	}
	if err := s.Put(t.Context(), "a/b/c", []byte("c")); err == nil {
		t.Error("Put(a/b/c) under file a/b succeeded")
	}
}
