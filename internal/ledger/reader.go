package ledger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/changegate/changegate/internal/blob"
)

// Reader reads the signed bytes of a ledger for the auditor: checkpoints
// and single records. It never writes. It is safe for concurrent use.
type Reader struct {
	blobs blob.Store

	mu   sync.Mutex
	refs []bundleRef // listed once, and again when a record lies beyond
}

// NewReader reads the ledger in blobs.
func NewReader(blobs blob.Store) *Reader { return &Reader{blobs: blobs} }

// ErrNoCheckpoint says the log has no checkpoint of the size asked for.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Checkpoint returns the largest checkpoint of a size at most maxSize, and
// its signed note; with no such checkpoint, size 0 and ErrNoCheckpoint.
func (r *Reader) Checkpoint(ctx context.Context, maxSize uint64) (uint64, []byte, error) {
	var size uint64
	err := r.blobs.List(ctx, CheckpointPrefix, func(k string) error {
		if s, err := ParseCheckpointKey(k); err == nil && s <= maxSize {
			size = max(size, s)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("list checkpoints: %w", err)
	}
	if size == 0 {
		return 0, nil, ErrNoCheckpoint
	}
	data, err := r.blobs.Get(ctx, CheckpointKey(size))
	if err != nil {
		return 0, nil, fmt.Errorf("read checkpoint %d: %w", size, err)
	}
	return size, data, nil
}

// Envelope returns the stored envelope of the record at seq: its line of
// the bundle that holds it.
func (r *Reader) Envelope(ctx context.Context, seq uint64) ([]byte, error) {
	ref, err := r.bundleOf(ctx, seq)
	if err != nil {
		return nil, err
	}
	data, err := r.blobs.Get(ctx, ref.key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref.key, err)
	}
	lines := SplitBundle(data)
	i := seq - ref.first
	if i >= uint64(len(lines)) {
		return nil, fmt.Errorf("record %d: %s holds %d records, not %d", seq, ref.key, len(lines), ref.count())
	}
	return lines[i], nil
}

func (r *Reader) bundleOf(ctx context.Context, seq uint64) (bundleRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ref, ok := findBundle(r.refs, seq); ok {
		return ref, nil
	}
	refs, err := listBundles(ctx, r.blobs)
	if err != nil {
		return bundleRef{}, err
	}
	r.refs = refs
	if ref, ok := findBundle(refs, seq); ok {
		return ref, nil
	}
	return bundleRef{}, fmt.Errorf("record %d: no bundle holds it", seq)
}

func findBundle(refs []bundleRef, seq uint64) (bundleRef, bool) {
	i := sort.Search(len(refs), func(i int) bool { return refs[i].last >= seq })
	if i < len(refs) && refs[i].first <= seq {
		return refs[i], true
	}
	return bundleRef{}, false
}
