// Package fs is the blob store in a local directory: one read-only file per
// key, written durably and never replaced.
//
// A Put writes a temporary file beside the target, fsyncs it, then publishes
// it with link(2) and fsyncs the directory. rename(2) is not used because it
// silently replaces an existing file; link fails with EEXIST instead, on every
// POSIX file system, so a key can never be overwritten even by a racing
// writer in another process. The name appears atomically with its complete
// content, so a reader never sees a partial blob.
//
// A crash between link and the removal of the temporary file leaves a
// ".tmp-*" file behind. Keys cannot start with ".", so it never collides with
// a key and List skips it.
package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/changegate/changegate/internal/blob"
)

const (
	filePerm = 0o444
	dirPerm  = 0o700
)

// Store keeps blobs under a root directory. It is safe for concurrent use,
// also by several processes sharing the directory.
type Store struct {
	root string // absolute
}

var _ blob.Store = (*Store)(nil)

// Open returns the store rooted at dir, creating dir (0700) if needed.
func Open(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", dir, err)
	}
	if err := mkdirAll(root); err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", root, err)
	}
	return &Store{root: root}, nil
}

// Dir returns the absolute root directory.
func (s *Store) Dir() string { return s.root }

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put stores data under key as a read-only file.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	target := s.path(key)
	dir := filepath.Dir(target)
	// A retried Put finds the file: answer without writing a temporary copy.
	if err := sameContent(target, key, data); !errors.Is(err, blob.ErrNotFound) {
		return err
	}
	if err := mkdirAll(dir); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(tmp) // after link it is only a second name
	if err := os.Link(tmp, target); err != nil {
		if errors.Is(err, iofs.ErrExist) {
			// Another writer won the race: same rule as a retry.
			err := sameContent(target, key, data)
			if errors.Is(err, blob.ErrNotFound) {
				return fmt.Errorf("put %s: a directory has that name (the key is a prefix of other keys)", key)
			}
			return err
		}
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// sameContent compares data with the file at target: nil when equal,
// ErrExists when different, ErrNotFound when there is no file.
func sameContent(target, key string, data []byte) error {
	got, err := readFile(target)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return err
	case err != nil:
		return fmt.Errorf("put %s: %w", key, err)
	case !bytes.Equal(got, data):
		return fmt.Errorf("put %s: %w", key, blob.ErrExists)
	}
	return nil
}

// writeTemp writes data to a new read-only file in dir and fsyncs it.
func writeTemp(dir string, data []byte) (name string, err error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	if err := f.Chmod(filePerm); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// Get returns the exact bytes stored under key.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	data, err := readFile(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return data, nil
}

// readFile reads a blob file. A missing file, a directory (the key is a
// prefix of other keys) or a file where a directory should be all mean that
// no blob has this key.
func readFile(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) {
		return nil, blob.ErrNotFound
	}
	return data, err
}

// List calls fn for each key under prefix in ascending byte order. It reads
// only the directory that holds the prefix and collects the matching keys
// before calling fn, because directory order ("a" before "a-b") is not key
// order ("a-b/x" before "a/x").
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := blob.ValidPrefix(prefix); err != nil {
		return err
	}
	base := path.Dir(prefix + "x") // the directory part of prefix, "." for none
	var keys []string
	err := filepath.WalkDir(filepath.Join(s.root, filepath.FromSlash(base)), func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		switch {
		case key == base:
			return nil
		case strings.HasPrefix(d.Name(), "."):
			// Temporary files, and anything else that cannot be a key.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		case d.IsDir():
			if dk := key + "/"; !strings.HasPrefix(dk, prefix) && !strings.HasPrefix(prefix, dk) {
				return filepath.SkipDir
			}
			return nil
		case d.Type().IsRegular() && strings.HasPrefix(key, prefix):
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAll creates dir and its missing parents with mode 0700, and fsyncs
// the parent of each directory it creates so that the new entry is durable
// before a blob is linked into it.
func mkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirPerm); err != nil {
		if errors.Is(err, iofs.ErrExist) { // a concurrent Put made it
			return syncDir(parent)
		}
		return err
	}
	if err := os.Chmod(dir, dirPerm); err != nil { // whatever the umask
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
