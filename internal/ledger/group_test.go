package ledger_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// verifyLedger runs the offline verifier over what the ledger stored.
func verifyLedger(t *testing.T, e *env) *evidence.Report {
	t.Helper()
	rep, err := evidence.Verify(ledger.Source(t.Context(), e.blobs, sqlite.LedgerRows(e.store.SQL())), e.signer.Public(), origin)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// TestConcurrentAppendsShareCommits: many callers at once get distinct,
// gapless sequence numbers, a redelivered record is still refused once,
// every caller's record is covered by a checkpoint when Append returns, and
// the result verifies.
func TestConcurrentAppendsShareCommits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := e.open(t)
	const n = 200
	seqs := make([]uint64, n)
	var dups atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			seq, err := l.Append(t.Context(), record(i, evidence.Standard))
			if err != nil {
				t.Error(err)
				return
			}
			seqs[i] = seq
			// The checkpoint covering it is already stored.
			if ok, err := hasCheckpointAtLeast(t, e.blobs, seq+1); err != nil || !ok {
				t.Errorf("record %d: Append returned before a checkpoint covered it (%v)", seq, err)
			}
			// The same merge delivered again, at once.
			if _, err := l.Append(t.Context(), record(i, evidence.Standard)); errors.Is(err, ledger.ErrDuplicate) {
				dups.Add(1)
			} else {
				t.Errorf("redelivered record %d: %v, want ErrDuplicate", i, err)
			}
		})
	}
	wg.Wait()
	seen := make(map[uint64]bool)
	for _, s := range seqs {
		if s >= n || seen[s] {
			t.Fatalf("sequence numbers %v are not 0..%d each once", seqs, n-1)
		}
		seen[s] = true
	}
	if dups.Load() != n {
		t.Errorf("%d duplicates refused, want %d", dups.Load(), n)
	}
	bundles := 0
	if err := e.blobs.List(t.Context(), ledger.RecordPrefix, func(string) error { bundles++; return nil }); err != nil {
		t.Fatal(err)
	}
	if bundles >= n {
		t.Errorf("%d bundles for %d records appended at once; want them to share bundles", bundles, n)
	}
	rep := verifyLedger(t, e)
	if rep.Records != n || rep.LatestCheckpoint != n {
		t.Errorf("verified %d records, latest checkpoint %d; want %d, %d", rep.Records, rep.LatestCheckpoint, n, n)
	}
	t.Logf("%d records, %d bundles, %d checkpoints", rep.Records, bundles, rep.Checkpoints)
}

func hasCheckpointAtLeast(t *testing.T, blobs blob.Store, size uint64) (bool, error) {
	found := false
	err := blobs.List(t.Context(), ledger.CheckpointPrefix, func(k string) error {
		s, err := ledger.ParseCheckpointKey(k)
		if err == nil && s >= size {
			found = true
		}
		return err
	})
	return found, err
}

// flakyBlobs fails the next PutAll after storing part of it, as a store
// that goes down mid-batch does.
type flakyBlobs struct {
	blob.Store
	failNext atomic.Bool
	stored   int // entries stored by the failing PutAll
}

func (f *flakyBlobs) PutAll(ctx context.Context, entries []blob.Entry) error {
	if f.failNext.CompareAndSwap(true, false) {
		if err := blob.PutAll(ctx, f.Store, entries[:f.stored]); err != nil {
			return err
		}
		return errors.New("store went away")
	}
	return blob.PutAll(ctx, f.Store, entries)
}

// flakyIndex fails its next Put.
type flakyIndex struct {
	ledger.Index
	failNext atomic.Bool
}

func (f *flakyIndex) Put(ctx context.Context, entries []evidence.IndexEntry) error {
	if f.failNext.CompareAndSwap(true, false) {
		return errors.New("database went away")
	}
	return f.Index.Put(ctx, entries)
}

// TestFailedCommitsAreRepaired: a commit that stored part of its records,
// or stored them all but could not index them, fails its callers; the next
// commit adopts what was stored, checkpoints and indexes it, and the ledger
// verifies with no gap. Retried appends of the failed records are
// duplicates.
func TestFailedCommitsAreRepaired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	blobs := &flakyBlobs{Store: e.blobs, stored: 1}
	index := &flakyIndex{Index: e.store.Ledger()}
	l, err := ledger.Open(t.Context(), blobs, index, e.signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), record(0, evidence.Standard)); err != nil {
		t.Fatal(err)
	}
	// Stored and checkpointed, not indexed.
	index.failNext.Store(true)
	if _, err := l.Append(t.Context(), record(1, evidence.Standard)); err == nil {
		t.Fatal("append over a failing index succeeded")
	}
	// Stored, but not its checkpoint. The commit first indexes record 1.
	blobs.failNext.Store(true)
	if _, err := l.Append(t.Context(), record(2, evidence.Standard)); err == nil {
		t.Fatal("append over a failing store succeeded")
	}
	// The next commit adopts record 2 first.
	seq, err := l.Append(t.Context(), record(3, evidence.Standard))
	if err != nil || seq != 3 {
		t.Fatalf("append after the failures: %d, %v; want 3", seq, err)
	}
	for i := 1; i <= 2; i++ {
		if seq, err := l.Append(t.Context(), record(i, evidence.Standard)); !errors.Is(err, ledger.ErrDuplicate) || seq != uint64(i) {
			t.Errorf("retry of failed record %d: %d, %v; want %d, ErrDuplicate", i, seq, err, i)
		}
	}
	if rep := verifyLedger(t, e); rep.Records != 4 || rep.LatestCheckpoint != 4 {
		t.Errorf("verified %d records, latest checkpoint %d; want 4, 4", rep.Records, rep.LatestCheckpoint)
	}
}
