package ledger_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// countingBlobs counts the record blobs read.
type countingBlobs struct {
	blob.Store
	recordGets atomic.Int64
}

func (c *countingBlobs) Get(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, ledger.RecordPrefix) {
		c.recordGets.Add(1)
	}
	return c.Store.Get(ctx, key)
}

// TestOpenRebuildsFromTheIndex: reopening a ledger whose index is complete
// reads no record blob, because the index's leaf hashes rebuild the tree
// and the signed checkpoint vouches for them. An index row whose leaf hash
// was edited is caught by that check, and the ledger is read from the
// blobs instead, so it still continues the true log.
func TestOpenRebuildsFromTheIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := e.open(t)
	const n = 20
	for i := range n {
		if _, err := l.Append(t.Context(), record(i, evidence.Standard)); err != nil {
			t.Fatal(err)
		}
	}

	blobs := &countingBlobs{Store: e.blobs}
	l2, err := ledger.Open(t.Context(), blobs, e.store.Ledger(), e.signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Size() != n || blobs.recordGets.Load() != 0 {
		t.Errorf("reopen: size %d, %d record blobs read; want %d, 0", l2.Size(), blobs.recordGets.Load(), n)
	}

	if _, err := e.store.SQL().Exec(`UPDATE ledger_records SET leaf_hash = ? WHERE seq = 7`, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	blobs = &countingBlobs{Store: e.blobs}
	l3, err := ledger.Open(t.Context(), blobs, e.store.Ledger(), e.signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	if blobs.recordGets.Load() < n {
		t.Errorf("an edited index was trusted: %d record blobs read, want all %d", blobs.recordGets.Load(), n)
	}
	if _, err := l3.Append(t.Context(), record(n, evidence.Standard)); err != nil {
		t.Fatalf("append after opening from the blobs: %v", err)
	}
	// The blob store, not the edited index, is what the new checkpoint
	// signs: only the index row is reported.
	_, err = evidence.Verify(ledger.Source(t.Context(), e.blobs, sqlite.LedgerRows(e.store.SQL())), e.signer.Public(), origin)
	var bad *evidence.VerifyError
	if !errors.As(err, &bad) || bad.Seq != 7 || !strings.Contains(bad.Problem, "index") {
		t.Errorf("verify after the edit: %v; want the index row of record 7 named", err)
	}
}
