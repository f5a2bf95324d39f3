package fs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/blob/fs"
)

// TestJournalReplay: after a writer dies, Open restores every blob a power
// cut could have lost or torn from its journal, drops a journal that was
// being written, and leaves a file holding other bytes alone.
func TestJournalReplay(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "blobs")
	a, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	batch := []blob.Entry{
		{Key: "records/1", Data: []byte("first record")},
		{Key: "records/2", Data: []byte("second record")},
		{Key: "records/3", Data: []byte("third record")},
		{Key: "checkpoints/3", Data: []byte("checkpoint")},
	}
	if err := a.PutAll(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	journal := a.JournalDir()
	a.Die()

	// What a power cut can leave: a link that did not reach the disk, a
	// file without its data, a file whose data is partly zeros.
	path := func(key string) string { return filepath.Join(dir, filepath.FromSlash(key)) }
	must(t, os.Remove(path("records/1")))
	replace(t, path("records/2"), nil)
	replace(t, path("records/3"), []byte("third\x00\x00\x00\x00\x00\x00\x00"))
	// Not a torn write: other bytes, as when the PutAll failed with
	// ErrExists. They stay.
	replace(t, path("checkpoints/3"), []byte("another writer"))
	// A journal its writer died writing.
	must(t, os.WriteFile(filepath.Join(journal, "zz.wal"), []byte("changegate blob journal v1\n\x09records/9"), 0o600))

	b, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, e := range batch[:3] {
		got, err := b.Get(t.Context(), e.Key)
		if err != nil || !bytes.Equal(got, e.Data) {
			t.Errorf("%s after replay = %q, %v; want %q", e.Key, got, err, e.Data)
		}
	}
	if got, _ := b.Get(t.Context(), "checkpoints/3"); string(got) != "another writer" {
		t.Errorf("a file with other bytes was replaced: %q", got)
	}
	if _, err := b.Get(t.Context(), "records/9"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("an entry of a torn journal was restored: %v", err)
	}
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Errorf("the dead writer's journal is still there: %v", err)
	}
}

// TestJournalOfALiveWriterIsLeftAlone: a second Open of the directory, as
// changegate audit does beside a running server, does not touch the
// server's journal.
func TestJournalOfALiveWriterIsLeftAlone(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "blobs")
	a, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Put(t.Context(), "records/1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	b, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := os.Stat(a.JournalDir()); err != nil {
		t.Errorf("a live writer's journal was removed: %v", err)
	}
}

// TestCloseFlushes: Close leaves no journal behind.
func TestCloseFlushes(t *testing.T) {
	t.Parallel()
	s := open(t)
	if err := s.Put(t.Context(), "records/1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.JournalDir()); !os.IsNotExist(err) {
		t.Errorf("journal left after Close: %v", err)
	}
}

func replace(t *testing.T, name string, data []byte) {
	t.Helper()
	must(t, os.Remove(name))
	must(t, os.WriteFile(name, data, 0o444))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestJournalFilesAreReused: after a flush the next batch overwrites a
// journal file in place, and a replay of that file (a shorter batch over a
// longer one) restores the new batch only.
func TestJournalFilesAreReused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "blobs")
	a, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	long := []blob.Entry{{Key: "records/1", Data: bytes.Repeat([]byte("a"), 4096)}, {Key: "records/2", Data: []byte("b")}}
	if err := a.PutAll(t.Context(), long); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(t.Context(), "records/3", []byte("c")); err != nil {
		t.Fatal(err)
	}
	wals, _ := filepath.Glob(filepath.Join(a.JournalDir(), "*.wal"))
	if len(wals) != 1 {
		t.Fatalf("%d journal files after two batches with a flush between, want 1 (reused)", len(wals))
	}
	a.Die()
	must(t, os.Remove(filepath.Join(dir, "records", "3")))
	b, err := fs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, e := range append(long, blob.Entry{Key: "records/3", Data: []byte("c")}) {
		if got, err := b.Get(t.Context(), e.Key); err != nil || !bytes.Equal(got, e.Data) {
			t.Errorf("%s = %.10q, %v", e.Key, got, err)
		}
	}
}
