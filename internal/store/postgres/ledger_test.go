package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/testenv"
)

const origin = "changegate.test/ledger"

func record(n int) *evidence.Record {
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	sha := fmt.Sprintf("%040x", n)
	return &evidence.Record{
		Schema: evidence.Schema, Repo: change.Repo{Owner: "acme", Name: "api"},
		Subject:    evidence.Subject{PR: n, BaseRef: "main", HeadSHA: sha, MergeSHA: sha},
		ChangeType: evidence.Standard, ObservedAt: at, AppVersion: "test",
		Facts:    change.Facts{PR: change.PullRequest{Number: n, Merged: true, MergedAt: at}},
		Decision: change.Decision{Outcome: change.Compliant, PolicyDigest: "d"},
		Policy:   evidence.Policy{Digest: "d"},
	}
}

// TestReplicaLedgers: three replicas' ledgers share one blob store and one
// PostgreSQL index, and append at once. The writer lock orders their
// commits, each follows what the others appended, and the result is one
// log: every record once, no sequence number twice, and it verifies.
// Group commit still batches what waits in each replica.
func TestReplicaLedgers(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresDatabase(t)
	key, _, err := evidence.LoadOrCreateKey(filepath.Join(t.TempDir(), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := fs.Open(filepath.Join(t.TempDir(), "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	const replicas, each = 3, 60
	var ls []*ledger.Ledger
	var pg *postgres.DB
	for range replicas {
		s := open0(t, url, postgres.Options{})
		pg = s
		l, err := ledger.Open(t.Context(), blobs, s.Ledger(), signer, origin)
		if err != nil {
			t.Fatal(err)
		}
		l.Share(s.LedgerWriters())
		ls = append(ls, l)
	}
	var wg sync.WaitGroup
	seqs := make(chan uint64, replicas*each)
	for r, l := range ls {
		for i := range each {
			wg.Go(func() {
				seq, err := l.Append(t.Context(), record(r*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			})
		}
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Errorf("sequence number %d given twice", s)
		}
		seen[s] = true
	}
	// A record a replica archived is a duplicate for every other one.
	if _, err := ls[2].Append(t.Context(), record(5)); err != ledger.ErrDuplicate {
		t.Errorf("the same record from another replica: %v, want ErrDuplicate", err)
	}
	rep, err := evidence.Verify(ledger.Source(t.Context(), blobs, pg.Ledger().Rows), signer.Public(), origin)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != replicas*each || len(seen) != replicas*each {
		t.Errorf("the log holds %d records (%d sequence numbers given), want %d", rep.Records, len(seen), replicas*each)
	}
	t.Logf("%d records from %d replicas in %d checkpoints", rep.Records, replicas, rep.Checkpoints)
}

// failingIndex is an index whose writes fail: a replica that dies after
// storing its records and before indexing them.
type failingIndex struct{ *postgres.LedgerIndex }

func (failingIndex) Put(context.Context, []evidence.IndexEntry) error { return errors.New("killed") }

// TestReplicaTakesOverADeadWritersRecords: a replica stores a record and
// dies before indexing it. The next replica to write adopts the record
// (its signature checked), indexes it, and continues after it.
func TestReplicaTakesOverADeadWritersRecords(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresDatabase(t)
	key, _, err := evidence.LoadOrCreateKey(filepath.Join(t.TempDir(), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := evidence.NewSigner(key)
	blobs, err := fs.Open(filepath.Join(t.TempDir(), "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	dying := open0(t, url, postgres.Options{})
	a, err := ledger.Open(t.Context(), blobs, failingIndex{dying.Ledger()}, signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	a.Share(dying.LedgerWriters())
	if _, err := a.Append(t.Context(), record(1)); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the dying replica's append: %v", err)
	}
	live := open0(t, url, postgres.Options{})
	b, err := ledger.Open(t.Context(), blobs, live.Ledger(), signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	b.Share(live.LedgerWriters())
	// b opened after the death, so start-up adopted the record; a replica
	// that was already running finds it when it next writes.
	c, err := ledger.Open(t.Context(), blobs, live.Ledger(), signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	c.Share(live.LedgerWriters())
	if _, err := a.Append(t.Context(), record(2)); err == nil {
		t.Fatal("the dying replica appended again")
	}
	seq, err := b.Append(t.Context(), record(3))
	if err != nil {
		t.Fatal(err)
	}
	if seq != 2 {
		t.Errorf("the next record got %d, want 2 (after the dead replica's two)", seq)
	}
	if _, err := c.Append(t.Context(), record(1)); !errors.Is(err, ledger.ErrDuplicate) {
		t.Errorf("the dead replica's record again: %v, want ErrDuplicate", err)
	}
	rep, err := evidence.Verify(ledger.Source(t.Context(), blobs, live.Ledger().Rows), signer.Public(), origin)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 3 {
		t.Errorf("the log holds %d records, want 3", rep.Records)
	}
}
