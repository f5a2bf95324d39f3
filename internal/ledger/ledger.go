// Package ledger appends signed change records to the evidence log and
// keeps it consistent across crashes.
//
// Write order, one writer at a time:
//
//  1. the record's signed envelope goes to the blob store under a key that
//     carries its sequence number (records/000000000042-<id>.dsse.json);
//  2. a checkpoint signed over the new tree size and root goes to the blob
//     store (checkpoints/000000000043.note);
//  3. the record's queryable fields go to the SQL index.
//
// The blobs are the truth: the order of the log is the order of the record
// keys, and the index can be rebuilt from them. A crash after step 1 leaves
// a record without a checkpoint; after step 2, one without an index row.
// Open repairs both before the ledger takes a new record, so there is no
// gap, no duplicate and no unsigned record.
package ledger

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/evidence"
)

// Key layout in the blob store.
const (
	RecordPrefix     = "records/"
	CheckpointPrefix = "checkpoints/"
)

// RecordKey is where the record at seq is stored.
func RecordKey(seq uint64, id string) string {
	return fmt.Sprintf("%s%012d-%s.dsse.json", RecordPrefix, seq, id)
}

// CheckpointKey is where the checkpoint of a tree of size is stored.
func CheckpointKey(size uint64) string {
	return fmt.Sprintf("%s%012d.note", CheckpointPrefix, size)
}

// ParseRecordKey returns the sequence number and id in a record key.
func ParseRecordKey(key string) (seq uint64, id string, err error) {
	rest, ok := strings.CutPrefix(key, RecordPrefix)
	if !ok {
		return 0, "", fmt.Errorf("record key %q: no %s prefix", key, RecordPrefix)
	}
	rest, ok = strings.CutSuffix(rest, ".dsse.json")
	if !ok {
		return 0, "", fmt.Errorf("record key %q: no .dsse.json suffix", key)
	}
	num, id, ok := strings.Cut(rest, "-")
	if !ok || len(num) != 12 || id == "" {
		return 0, "", fmt.Errorf("record key %q: want 12-digit sequence, dash, id", key)
	}
	seq, err = strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("record key %q: %w", key, err)
	}
	return seq, id, nil
}

// ParseCheckpointKey returns the tree size in a checkpoint key.
func ParseCheckpointKey(key string) (uint64, error) {
	rest, ok := strings.CutPrefix(key, CheckpointPrefix)
	if !ok {
		return 0, fmt.Errorf("checkpoint key %q: no %s prefix", key, CheckpointPrefix)
	}
	rest, ok = strings.CutSuffix(rest, ".note")
	if !ok || len(rest) != 12 {
		return 0, fmt.Errorf("checkpoint key %q: want 12-digit size and .note", key)
	}
	return strconv.ParseUint(rest, 10, 64)
}

// Index holds the queryable fields of each record.
type Index interface {
	// Has reports whether a record with this id is indexed.
	Has(ctx context.Context, id string) (bool, error)
	// Put indexes the record at seq; it is idempotent.
	Put(ctx context.Context, seq uint64, leafHash string, fields map[string]string) error
	// Size is how many records are indexed.
	Size(ctx context.Context) (uint64, error)
}

// Ledger appends records. It is safe for concurrent use; appends are
// strictly ordered.
type Ledger struct {
	blobs  blob.Store
	index  Index
	signer *evidence.Signer
	origin string

	mu  sync.Mutex
	log *evidence.Log
	ids map[string]uint64 // record id → seq, for the whole log
}

// Open reads the log from the blob store, repairs what a crash left behind
// (a missing checkpoint or index rows), and returns the ledger.
func Open(ctx context.Context, blobs blob.Store, index Index, signer *evidence.Signer, origin string) (*Ledger, error) {
	l := &Ledger{blobs: blobs, index: index, signer: signer, origin: origin, log: evidence.NewLog(), ids: map[string]uint64{}}
	verifier, err := evidence.NewVerifier(signer.Public())
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := blobs.List(ctx, RecordPrefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	indexed, err := index.Size(ctx)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		seq, id, err := ParseRecordKey(k)
		if err != nil {
			return nil, err
		}
		if seq != uint64(i) {
			return nil, fmt.Errorf("ledger: record %d is missing (found %s next); run changegate audit verify", i, k)
		}
		if prev, dup := l.ids[id]; dup {
			return nil, fmt.Errorf("ledger: record %s appears at %d and %d", id, prev, seq)
		}
		env, err := blobs.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		l.log.Append(env)
		l.ids[id] = seq
		if seq < indexed {
			continue
		}
		// Written to the blob store but not indexed: a crash between the
		// steps. The signature is checked before the record is trusted.
		rec, err := verifier.VerifyEnvelope(env)
		if err != nil {
			return nil, fmt.Errorf("ledger: record %d (%s): %w", seq, k, err)
		}
		if err := index.Put(ctx, seq, hex.EncodeToString(evidence.LeafHash(env)), evidence.IndexFields(rec)); err != nil {
			return nil, err
		}
	}
	if size := l.log.Size(); size > 0 {
		if err := l.checkpoint(ctx, size); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Size is the number of records in the log.
func (l *Ledger) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.log.Size()
}

// ErrDuplicate reports that the record was archived before.
var ErrDuplicate = errors.New("record already archived")

// Append signs r and appends it. r.ID is set from its repository, commit
// and change type; a second record with the same identity is refused with
// ErrDuplicate, so a redelivered merge archives once.
func (l *Ledger) Append(ctx context.Context, r *evidence.Record) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	closes := ""
	if r.Exception != nil {
		closes = r.Exception.Closes
	}
	r.ID = evidence.RecordID(r.Repo.String(), r.Subject.SHA(), r.ChangeType, closes)
	if seq, ok := l.ids[r.ID]; ok {
		return seq, ErrDuplicate
	}
	env, err := l.signer.Sign(r)
	if err != nil {
		return 0, fmt.Errorf("sign record: %w", err)
	}
	seq := l.log.Size()
	if err := l.blobs.Put(ctx, RecordKey(seq, r.ID), env); err != nil {
		return 0, fmt.Errorf("store record %d: %w", seq, err)
	}
	l.log.Append(env)
	l.ids[r.ID] = seq
	if err := l.checkpoint(ctx, seq+1); err != nil {
		return 0, err
	}
	if err := l.index.Put(ctx, seq, hex.EncodeToString(evidence.LeafHash(env)), evidence.IndexFields(r)); err != nil {
		return 0, err
	}
	return seq, nil
}

// checkpoint signs and stores the checkpoint of the tree at size. ed25519
// signatures are deterministic, so storing it again (a repaired crash, a
// retried append) writes identical bytes, which the store accepts.
func (l *Ledger) checkpoint(ctx context.Context, size uint64) error {
	root, err := l.log.Root(size)
	if err != nil {
		return err
	}
	cp, err := l.signer.SignCheckpoint(l.origin, size, root)
	if err != nil {
		return fmt.Errorf("sign checkpoint %d: %w", size, err)
	}
	if err := l.blobs.Put(ctx, CheckpointKey(size), cp); err != nil {
		return fmt.Errorf("store checkpoint %d: %w", size, err)
	}
	return nil
}

// Rebuilder is an index that can be emptied, for Reindex.
type Rebuilder interface {
	Index
	Clear(ctx context.Context) error
}

// Reindex rebuilds the index from the blob store: the blobs are the truth.
// Every record's signature is checked before it is indexed. It returns the
// number of records indexed. The server must not be running.
func Reindex(ctx context.Context, blobs blob.Store, index Rebuilder, pub ed25519.PublicKey) (uint64, error) {
	verifier, err := evidence.NewVerifier(pub)
	if err != nil {
		return 0, err
	}
	if err := index.Clear(ctx); err != nil {
		return 0, err
	}
	var n uint64
	err = blobs.List(ctx, RecordPrefix, func(k string) error {
		seq, _, err := ParseRecordKey(k)
		if err != nil {
			return err
		}
		if seq != n {
			return fmt.Errorf("ledger: record %d is missing (found %s next)", n, k)
		}
		env, err := blobs.Get(ctx, k)
		if err != nil {
			return fmt.Errorf("read %s: %w", k, err)
		}
		rec, err := verifier.VerifyEnvelope(env)
		if err != nil {
			return fmt.Errorf("ledger: record %d (%s): %w", seq, k, err)
		}
		if err := index.Put(ctx, seq, hex.EncodeToString(evidence.LeafHash(env)), evidence.IndexFields(rec)); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
