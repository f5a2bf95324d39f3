// Package fs is the blob store in a local directory: one read-only file per
// key, written durably and never replaced.
//
// A blob is published with link(2) from a temporary file beside the target.
// rename(2) is not used because it silently replaces an existing file; link
// fails with EEXIST instead, on every POSIX file system, so a key can never
// be overwritten even by a racing writer in another process. The name
// appears atomically with its complete content, so a reader never sees a
// partial blob.
//
// Durability comes from a journal rather than a sync per blob: a PutAll
// first writes all its blobs to one journal file and syncs it (one
// sequential write and one data sync, the file being reused), then links
// the blobs without syncing them. A background flush syncs the file system,
// after which the journal files it covered are reused. After a crash, Open replays the journals of dead writers: a blob
// that is missing, or that a power cut left empty or torn, is restored from
// the journal. So a PutAll that returned is durable, and a batch costs about
// as much as a single blob.
//
// A crash between link and the removal of the temporary file leaves a
// ".tmp-*" file behind. Keys cannot start with ".", so it never collides with
// a key and List skips it, and the ".journal" directory.
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
	"sync"
	"syscall"

	"github.com/changegate/changegate/internal/blob"
)

const (
	filePerm = 0o444
	dirPerm  = 0o700
)

// Store keeps blobs under a root directory. It is safe for concurrent use,
// also by several processes sharing the directory. Close it to flush its
// journal; a store that is not closed is recovered by the next Open.
type Store struct {
	root string // absolute
	j    *journal
}

var _ blob.Batcher = (*Store)(nil)

// Open returns the store rooted at dir, creating dir (0700) if needed, and
// replays the journals of writers that died before flushing them.
func Open(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", dir, err)
	}
	if err := mkdirAll(root); err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", root, err)
	}
	j, err := openJournal(root)
	if err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", root, err)
	}
	return &Store{root: root, j: j}, nil
}

// OpenReadOnly returns the store rooted at an existing dir for reading, as
// the audit commands use it: it writes nothing, not even a journal, and
// leaves a dead writer's journal for the writer's next Open to replay.
func OpenReadOnly(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", dir, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("blob dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("blob dir %s: not a directory", root)
	}
	return &Store{root: root}, nil
}

// ErrReadOnly is returned by writes to a store opened with OpenReadOnly.
var ErrReadOnly = errors.New("blob store opened read-only")

// Close makes every blob stored durable without the journal, and releases
// the store's journal.
func (s *Store) Close() error {
	if s.j == nil {
		return nil
	}
	return s.j.close()
}

// Dir returns the absolute root directory.
func (s *Store) Dir() string { return s.root }

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put stores data under key as a read-only file.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	return s.PutAll(ctx, []blob.Entry{{Key: key, Data: data}})
}

// PutAll stores the entries as Put does, durably, for the price of one: the
// entries go to one journal file, synced, and are then linked in order
// without a sync of their own (see the package comment). A crash of the
// process leaves a prefix of the entries linked, and the next Open restores
// the rest from the journal.
func (s *Store) PutAll(ctx context.Context, entries []blob.Entry) error {
	for _, e := range entries {
		if err := blob.ValidKey(e.Key); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if s.j == nil {
		return ErrReadOnly
	}
	// A retried Put finds its file: it is answered without writing, and a
	// key holding other bytes fails the batch before anything is written.
	var todo []blob.Entry
	for _, e := range entries {
		err := sameContent(s.path(e.Key), e.Key, e.Data)
		switch {
		case errors.Is(err, blob.ErrNotFound):
			todo = append(todo, e)
		case err != nil:
			return err
		}
	}
	if len(todo) == 0 {
		return nil
	}
	for _, e := range todo {
		if err := mkdirAll(filepath.Dir(s.path(e.Key))); err != nil {
			return fmt.Errorf("put %s: %w", e.Key, err)
		}
	}
	jf, err := s.j.write(todo)
	if err != nil {
		return fmt.Errorf("put: journal: %w", err)
	}
	temps, err := writeTemps(s, todo)
	defer func() {
		for _, t := range temps {
			if t != "" {
				os.Remove(t) // after link it is only a second name
			}
		}
	}()
	if err == nil {
		for i, e := range todo {
			if err = link(temps[i], s.path(e.Key), e); err != nil {
				break
			}
		}
	}
	if err != nil {
		// What was linked is made durable now and the journal dropped,
		// so that a write refused here is never replayed.
		return errors.Join(err, s.j.abandon(jf))
	}
	s.j.written(jf)
	return nil
}

// writers bounds the temporary files a PutAll creates at once. Creating
// files one after another waits on the file system's inode allocation in
// turn; in parallel the waits overlap.
const writers = 16

// writeTemps writes each entry to a temporary file beside its target, up to
// writers at a time, and returns the names in entry order. On error the
// names of the files written are still returned, for removal.
func writeTemps(s *Store, entries []blob.Entry) ([]string, error) {
	temps := make([]string, len(entries))
	errs := make([]error, len(entries))
	sem := make(chan struct{}, writers)
	var wg sync.WaitGroup
	for i, e := range entries {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			temps[i], errs[i] = writeTemp(filepath.Dir(s.path(e.Key)), e.Data)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("put %s: %w", e.Key, errs[i])
			}
		})
	}
	wg.Wait()
	return temps, errors.Join(errs...)
}

// link publishes the temporary file tmp as target, the file of entry e.
func link(tmp, target string, e blob.Entry) error {
	if err := os.Link(tmp, target); err != nil {
		if !errors.Is(err, iofs.ErrExist) {
			return fmt.Errorf("put %s: %w", e.Key, err)
		}
		// Another writer won the race: same rule as a retry.
		err := sameContent(target, e.Key, e.Data)
		if errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("put %s: a directory has that name (the key is a prefix of other keys)", e.Key)
		}
		return err
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

// writeTemp writes data to a new read-only file in dir. It does not sync:
// the journal holds the data until the file system is synced.
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
