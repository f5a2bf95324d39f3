package fs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/changegate/changegate/internal/blob"
)

// Journal layout. Each open Store owns a directory .journal/<random>/ and
// holds an exclusive flock on its "lock" file for as long as it lives; a
// directory whose lock can be taken belongs to a writer that died. Opens are
// serialised by .journal/open.lock, so a directory being set up is never
// mistaken for a dead one.
//
// A journal file holds one batch from its start: journalMagic, the uvarint
// length of the body, the body (for each entry the uvarint length and bytes
// of its key and of its data), then the SHA-256 of everything before. Files
// are reused once flushed, so bytes may follow; they are ignored. A file
// that does not check out was being written when its writer died: its
// PutAll never returned and none of its entries were linked, so it is
// dropped. A reused file still holding a flushed batch replays as a no-op,
// because those blobs are on disk with the same bytes.
const (
	journalDir   = ".journal"
	journalMagic = "changegate blob journal v1\n"
	journalExt   = ".wal"
	lockName     = "lock"
)

// Flush policy: the background flush runs once a second, or sooner when
// this many journals wait, so that the journals stay small.
const (
	flushEvery   = time.Second
	flushPending = 256
)

type journal struct {
	root string // the store's root
	dir  string // this store's journal directory
	lock *os.File

	mu       sync.Mutex
	free     []*os.File // journal files whose batch is on disk, to reuse
	pending  []*os.File // journal files whose entries are linked but maybe not on disk
	flushing bool       // a background flush is running, in bg
	flushed  time.Time
	bg       sync.WaitGroup
}

// openJournal creates the store's own journal directory and replays the
// directories of dead writers.
func openJournal(root string) (*journal, error) {
	base := filepath.Join(root, journalDir)
	if err := mkdirAll(base); err != nil {
		return nil, err
	}
	openLock, err := os.OpenFile(filepath.Join(base, "open.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer openLock.Close() // releases the flock
	if err := syscall.Flock(int(openLock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock journal: %w", err)
	}

	dir, err := os.MkdirTemp(base, "")
	if err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock journal %s: %w", dir, err)
	}
	j := &journal{root: root, dir: dir, lock: lock, flushed: time.Now()}
	if err := syncDir(base); err != nil {
		j.lock.Close()
		return nil, err
	}

	others, err := os.ReadDir(base)
	if err != nil {
		j.lock.Close()
		return nil, err
	}
	for _, d := range others {
		other := filepath.Join(base, d.Name())
		if !d.IsDir() || other == dir {
			continue
		}
		if err := replayDir(root, other); err != nil {
			j.lock.Close()
			return nil, fmt.Errorf("replay journal %s: %w", other, err)
		}
	}
	return j, nil
}

// replayDir restores the blobs of a dead writer's journals and removes its
// directory. A directory whose lock is held belongs to a live writer and is
// left alone.
func replayDir(root, dir string) error {
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		// Its writer died while setting it up (under open.lock), before it
		// could journal anything.
	case err != nil:
		return err
	default:
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil // alive
			}
			return err
		}
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+journalExt))
	if err != nil {
		return err
	}
	slices.Sort(names)
	restored := false
	for _, name := range names {
		entries, err := readJournal(name)
		if err != nil {
			continue // torn: its PutAll never returned and linked nothing
		}
		for _, e := range entries {
			if err := restore(root, e); err != nil {
				return err
			}
		}
		restored = true
	}
	if restored {
		if err := syncFS(root); err != nil {
			return err
		}
	}
	return os.RemoveAll(dir)
}

// restore puts back one journaled entry: linked if missing, replaced if a
// power cut left the file empty or torn (its bytes a prefix of the entry's,
// or zeros where the data did not reach the disk). A file holding other
// bytes is left alone: that PutAll failed with ErrExists, and its journal
// entry records a write that was refused.
func restore(root string, e blob.Entry) error {
	target := filepath.Join(root, filepath.FromSlash(e.Key))
	got, err := readFile(target)
	switch {
	case errors.Is(err, blob.ErrNotFound):
	case err != nil:
		return err
	case bytes.Equal(got, e.Data) || !torn(got, e.Data):
		return nil
	}
	dir := filepath.Dir(target)
	if err := mkdirAll(dir); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, e.Data)
	if err != nil {
		return err
	}
	// Replacing is right only here: the journal proves these bytes were
	// acknowledged under this key.
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func torn(got, want []byte) bool {
	if len(got) > len(want) {
		return false
	}
	for i, b := range got {
		if b != want[i] && b != 0 {
			return false
		}
	}
	return true
}

// write journals entries durably and returns the journal file holding
// them. It reuses a flushed file when there is one: overwriting a file that
// exists needs one data sync, where a new file also needs its directory
// synced.
func (j *journal) write(entries []blob.Entry) (*os.File, error) {
	body := make([]byte, 0, len(entries)*64)
	for _, e := range entries {
		body = binary.AppendUvarint(body, uint64(len(e.Key)))
		body = append(body, e.Key...)
		body = binary.AppendUvarint(body, uint64(len(e.Data)))
		body = append(body, e.Data...)
	}
	buf := make([]byte, 0, len(journalMagic)+binary.MaxVarintLen64+len(body)+sha256.Size)
	buf = append(buf, journalMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	buf = append(buf, body...)
	sum := sha256.Sum256(buf)
	buf = append(buf, sum[:]...)

	f, err := j.file()
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		j.release(f)
		return nil, err
	}
	if err := syncData(f); err != nil {
		j.release(f)
		return nil, err
	}
	return f, nil
}

// file returns a free journal file, or a new one made durable in the
// journal directory.
func (j *journal) file() (*os.File, error) {
	j.mu.Lock()
	if n := len(j.free); n > 0 {
		f := j.free[n-1]
		j.free = j.free[:n-1]
		j.mu.Unlock()
		return f, nil
	}
	j.mu.Unlock()
	f, err := os.CreateTemp(j.dir, "*"+journalExt)
	if err != nil {
		return nil, err
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// release returns a journal file whose batch did not happen: its content is
// emptied so that the batch is never replayed.
func (j *journal) release(f *os.File) {
	if err := f.Truncate(0); err != nil {
		f.Close() // keep it out of the pool; Open replays or drops it
		return
	}
	j.mu.Lock()
	j.free = append(j.free, f)
	j.mu.Unlock()
}

// readJournal decodes the batch at the start of a journal file, or fails
// if it is torn or empty.
func readJournal(name string) ([]blob.Entry, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(string(data), journalMagic) {
		return nil, errors.New("not a journal")
	}
	n, k := binary.Uvarint(data[len(journalMagic):])
	start := len(journalMagic) + k
	if k <= 0 || n > uint64(len(data)-start) || uint64(len(data)-start)-n < sha256.Size {
		return nil, errors.New("torn")
	}
	end := start + int(n)
	if got := sha256.Sum256(data[:end]); !bytes.Equal(got[:], data[end:end+sha256.Size]) {
		return nil, errors.New("checksum mismatch")
	}
	rest := data[start:end]
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, errors.New("bad length")
		}
		b := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return b, nil
	}
	var entries []blob.Entry
	for len(rest) > 0 {
		key, err := next()
		if err != nil {
			return nil, err
		}
		val, err := next()
		if err != nil {
			return nil, err
		}
		entries = append(entries, blob.Entry{Key: string(key), Data: val})
	}
	return entries, nil
}

// written records that the journal's entries are linked, and starts a
// flush when one is due.
func (j *journal) written(f *os.File) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pending = append(j.pending, f)
	if !j.flushing && (len(j.pending) >= flushPending || time.Since(j.flushed) >= flushEvery) {
		j.flushing = true
		j.bg.Go(func() { j.flush() })
	}
}

// flush syncs the file system, after which the pending journal files are
// free for reuse. A failure keeps them pending: Open replays them after a
// restart.
func (j *journal) flush() error {
	j.mu.Lock()
	files := j.pending
	j.pending = nil
	j.mu.Unlock()

	err := syncFS(j.root)

	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		j.pending = append(files, j.pending...)
	} else {
		j.free = append(j.free, files...)
	}
	j.flushing = false
	j.flushed = time.Now()
	return err
}

// abandon makes whatever a failed PutAll linked durable and empties its
// journal file, so that a write refused there is never replayed.
func (j *journal) abandon(f *os.File) error {
	if err := syncFS(j.root); err != nil {
		j.mu.Lock()
		j.pending = append(j.pending, f) // replayed if the process dies
		j.mu.Unlock()
		return err
	}
	j.release(f)
	return nil
}

// close waits for a background flush, flushes what is left and removes
// the store's journal directory. No PutAll may run any more.
func (j *journal) close() error {
	j.bg.Wait()
	err := j.flush()
	j.mu.Lock()
	for _, f := range j.free {
		f.Close()
	}
	j.free = nil
	j.mu.Unlock()
	if err == nil {
		err = os.RemoveAll(j.dir)
	}
	return errors.Join(err, j.lock.Close())
}
