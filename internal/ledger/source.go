package ledger

import (
	"context"
	"fmt"
	"iter"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/evidence"
)

// Rows yields the index rows in sequence order.
type Rows func(ctx context.Context) iter.Seq2[evidence.IndexRow, error]

// Source reads a ledger for evidence.Verify: the record envelopes in the
// order of their keys (a sequence number with no blob is reported missing),
// the checkpoints by size, and the index rows.
func Source(ctx context.Context, blobs blob.Store, rows Rows) evidence.Source {
	return &source{ctx: ctx, blobs: blobs, rows: rows}
}

type source struct {
	ctx   context.Context
	blobs blob.Store
	rows  Rows
}

func (s *source) keys(prefix string) ([]string, error) {
	var keys []string
	err := s.blobs.List(s.ctx, prefix, func(k string) error { keys = append(keys, k); return nil })
	return keys, err
}

func (s *source) Records() iter.Seq2[evidence.StoredRecord, error] {
	return func(yield func(evidence.StoredRecord, error) bool) {
		keys, err := s.keys(RecordPrefix)
		if err != nil {
			yield(evidence.StoredRecord{}, fmt.Errorf("list records: %w", err))
			return
		}
		var next uint64
		for _, k := range keys {
			seq, _, err := ParseRecordKey(k)
			if err != nil {
				yield(evidence.StoredRecord{}, err)
				return
			}
			for ; next < seq; next++ {
				if !yield(evidence.StoredRecord{Seq: int64(next), Missing: true}, nil) {
					return
				}
			}
			env, err := s.blobs.Get(s.ctx, k)
			if err != nil {
				yield(evidence.StoredRecord{}, fmt.Errorf("read %s: %w", k, err))
				return
			}
			if !yield(evidence.StoredRecord{Seq: int64(seq), Envelope: env}, nil) {
				return
			}
			next = seq + 1
		}
	}
}

func (s *source) Checkpoints() iter.Seq2[evidence.StoredCheckpoint, error] {
	return func(yield func(evidence.StoredCheckpoint, error) bool) {
		keys, err := s.keys(CheckpointPrefix)
		if err != nil {
			yield(evidence.StoredCheckpoint{}, fmt.Errorf("list checkpoints: %w", err))
			return
		}
		for _, k := range keys {
			size, err := ParseCheckpointKey(k)
			if err != nil {
				yield(evidence.StoredCheckpoint{}, err)
				return
			}
			data, err := s.blobs.Get(s.ctx, k)
			if err != nil {
				yield(evidence.StoredCheckpoint{}, fmt.Errorf("read %s: %w", k, err))
				return
			}
			if !yield(evidence.StoredCheckpoint{Size: size, Data: data}, nil) {
				return
			}
		}
	}
}

func (s *source) IndexRows() iter.Seq2[evidence.IndexRow, error] { return s.rows(s.ctx) }
