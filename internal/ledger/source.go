package ledger

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/evidence"
)

// Rows yields the index rows in sequence order.
type Rows func(ctx context.Context) iter.Seq2[evidence.IndexRow, error]

// Source reads a ledger for evidence.Verify: the record envelopes in log
// order, line by line from the bundles (a sequence number no bundle holds
// is reported missing), the checkpoints by size, and the index rows. Blobs
// are read ahead in parallel.
func Source(ctx context.Context, blobs blob.Store, rows Rows) evidence.Source {
	return &source{ctx: ctx, blobs: blobs, rows: rows}
}

// SourceFrom is Source for evidence.VerifySince: the records from sequence
// number from on, the checkpoints of size from or larger, and the index
// rows rows yields, which must start at from. Bundles wholly before from
// are not read.
func SourceFrom(ctx context.Context, blobs blob.Store, rows Rows, from uint64) evidence.Source {
	return &source{ctx: ctx, blobs: blobs, rows: rows, from: from}
}

type source struct {
	ctx   context.Context
	blobs blob.Store
	rows  Rows
	from  uint64 // the first sequence number and checkpoint size read
}

func (s *source) keys(prefix string) ([]string, error) {
	var keys []string
	err := s.blobs.List(s.ctx, prefix, func(k string) error { keys = append(keys, k); return nil })
	return keys, err
}

func (s *source) Records() iter.Seq2[evidence.StoredRecord, error] {
	return func(yield func(evidence.StoredRecord, error) bool) {
		refs, err := listBundles(s.ctx, s.blobs)
		if err != nil {
			yield(evidence.StoredRecord{}, err)
			return
		}
		refs = slices.DeleteFunc(refs, func(b bundleRef) bool { return b.last < s.from })
		keys := make([]string, len(refs))
		for i, b := range refs {
			keys[i] = b.key
		}
		blobs, stop := s.prefetch(keys)
		defer stop()
		// A bundle is read as it is, damaged or not: its lines are the
		// records from its first sequence number on. Fewer lines than its
		// key names leave the rest missing; more run into the next bundle,
		// which Verify reports as records out of sequence.
		next := s.from
		for _, b := range refs {
			for ; next < b.first; next++ {
				if !yield(evidence.StoredRecord{Seq: int64(next), Missing: true}, nil) {
					return
				}
			}
			r := <-blobs
			if r.err != nil {
				yield(evidence.StoredRecord{}, fmt.Errorf("read %s: %w", b.key, r.err))
				return
			}
			lines := SplitBundle(r.data)
			for i, env := range lines {
				if seq := b.first + uint64(i); seq < s.from {
					continue // in a bundle that spans the trusted checkpoint
				}
				if !yield(evidence.StoredRecord{Seq: int64(b.first) + int64(i), Envelope: env}, nil) {
					return
				}
			}
			next = max(s.from, b.first+uint64(len(lines)))
		}
	}
}

// readAhead is how many blobs a listing reads ahead of the one it yields,
// with readers at a time reading them. A local disk serves files faster in
// parallel, and S3 needs many requests in flight.
const (
	readAhead = 32
	readers   = 16
)

type fetched struct {
	data []byte
	err  error
}

// prefetch reads the blobs of keys in parallel and delivers them in key
// order. stop ends the reading early.
func (s *source) prefetch(keys []string) (<-chan fetched, func()) {
	ctx, cancel := context.WithCancel(s.ctx)
	order := make(chan chan fetched, readAhead)
	go func() {
		defer close(order)
		sem := make(chan struct{}, readers)
		for _, k := range keys {
			c := make(chan fetched, 1)
			select {
			case order <- c:
			case <-ctx.Done():
				return
			}
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				data, err := s.blobs.Get(ctx, k)
				c <- fetched{data, err}
			}()
		}
	}()
	out := make(chan fetched)
	go func() {
		defer close(out)
		for c := range order {
			select {
			case out <- <-c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, cancel
}

func (s *source) Checkpoints() iter.Seq2[evidence.StoredCheckpoint, error] {
	return func(yield func(evidence.StoredCheckpoint, error) bool) {
		keys, err := s.keys(CheckpointPrefix)
		if err != nil {
			yield(evidence.StoredCheckpoint{}, fmt.Errorf("list checkpoints: %w", err))
			return
		}
		var sizes []uint64
		var from []string
		for _, k := range keys {
			size, err := ParseCheckpointKey(k)
			if err != nil {
				yield(evidence.StoredCheckpoint{}, err)
				return
			}
			if size >= s.from {
				sizes, from = append(sizes, size), append(from, k)
			}
		}
		keys = from
		blobs, stop := s.prefetch(keys)
		defer stop()
		for i, k := range keys {
			r := <-blobs
			if r.err != nil {
				yield(evidence.StoredCheckpoint{}, fmt.Errorf("read %s: %w", k, r.err))
				return
			}
			if !yield(evidence.StoredCheckpoint{Size: sizes[i], Data: r.data}, nil) {
				return
			}
		}
	}
}

func (s *source) IndexRows() iter.Seq2[evidence.IndexRow, error] { return s.rows(s.ctx) }
