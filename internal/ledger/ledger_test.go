package ledger_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/blob"
	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/sqlite"
)

const origin = "changegate.test/ledger"

type env struct {
	dir    string
	blobs  *fs.Store
	store  *sqlite.DB
	signer *evidence.Signer
}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := &env{dir: dir, signer: signer}
	e.reopenStores(t)
	return e
}

func (e *env) reopenStores(t testing.TB) {
	t.Helper()
	if e.store != nil {
		e.store.Close()
	}
	blobs, err := fs.Open(filepath.Join(e.dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(t.Context(), filepath.Join(e.dir, "db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.blobs, e.store = blobs, store
}

func (e *env) open(t testing.TB) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(t.Context(), e.blobs, e.store.Ledger(), e.signer, origin)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func record(n int, t evidence.ChangeType) *evidence.Record {
	sha := fmt.Sprintf("%040x", n+1)
	at := time.Date(2026, 11, 23, 12, n, 0, 0, time.UTC)
	var exc *evidence.Exception
	if t == evidence.Bypass {
		exc = &evidence.Exception{Kind: evidence.ExceptionBypass, Reason: "merged while the check failed", OpenedAt: at}
	}
	return &evidence.Record{
		Exception:  exc,
		Schema:     evidence.Schema,
		Repo:       change.Repo{Owner: "acme", Name: "api"},
		Subject:    evidence.Subject{PR: n, BaseRef: "main", HeadSHA: sha, MergeSHA: sha},
		ChangeType: t,
		Facts:      change.Facts{PR: change.PullRequest{Number: n, Merged: true, MergedAt: at}},
		Decision:   change.Decision{Outcome: change.Compliant, PolicyDigest: "d"},
		Policy:     evidence.Policy{Digest: "d", Source: "test"},
		ObservedAt: at,
		AppVersion: "test",
	}
}

func TestAppendIsOrderedAndIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := e.open(t)
	for i := range 3 {
		seq, err := l.Append(t.Context(), record(i, evidence.Standard))
		if err != nil {
			t.Fatal(err)
		}
		if seq != uint64(i) {
			t.Errorf("seq = %d, want %d", seq, i)
		}
	}
	if seq, err := l.Append(t.Context(), record(1, evidence.Standard)); !errors.Is(err, ledger.ErrDuplicate) || seq != 1 {
		t.Errorf("second archive of the same merge: seq %d, %v; want 1, ErrDuplicate", seq, err)
	}
	// The same commit as a different change type is a different record.
	if _, err := l.Append(t.Context(), record(1, evidence.Deployment)); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.store.Ledger().Size(t.Context()); n != 4 {
		t.Errorf("indexed %d, want 4", n)
	}
	for size := uint64(1); size <= 4; size++ {
		if _, err := e.blobs.Get(t.Context(), ledger.CheckpointKey(size)); err != nil {
			t.Errorf("checkpoint %d: %v", size, err)
		}
	}
	// Reopening finds the same log, and still refuses the duplicate.
	l2 := e.open(t)
	if l2.Size() != 4 {
		t.Errorf("reopened size %d", l2.Size())
	}
	if _, err := l2.Append(t.Context(), record(0, evidence.Standard)); !errors.Is(err, ledger.ErrDuplicate) {
		t.Errorf("after reopen: %v, want ErrDuplicate", err)
	}
}

// TestOpenRepairsACrashBetweenSteps: a record written to the blob store
// without its checkpoint and index row, as a crash between the steps
// leaves it, is completed by Open.
func TestOpenRepairsACrashBetweenSteps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := e.open(t)
	if _, err := l.Append(t.Context(), record(0, evidence.Standard)); err != nil {
		t.Fatal(err)
	}
	// Step 1 only, for the next record.
	r := record(1, evidence.Bypass)
	r.ID = evidence.RecordID(r.Repo.String(), r.Subject.SHA(), r.ChangeType, "")
	envBytes, err := e.signer.Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.blobs.Put(t.Context(), ledger.BundleKey(1, 1), ledger.Bundle([][]byte{envBytes})); err != nil {
		t.Fatal(err)
	}
	l2 := e.open(t)
	if l2.Size() != 2 {
		t.Fatalf("size %d, want 2", l2.Size())
	}
	if n, _ := e.store.Ledger().Size(t.Context()); n != 2 {
		t.Errorf("indexed %d after repair, want 2", n)
	}
	if _, err := e.blobs.Get(t.Context(), ledger.CheckpointKey(2)); err != nil {
		t.Errorf("checkpoint 2 not written by repair: %v", err)
	}
	row, _, ok, err := e.store.Ledger().Row(t.Context(), 1)
	if err != nil || !ok || row["change_type"] != "bypass" || row["id"] != r.ID {
		t.Errorf("repaired row = %v %v %v", row, ok, err)
	}
	// The repaired record is a duplicate of itself.
	if _, err := l2.Append(t.Context(), record(1, evidence.Bypass)); !errors.Is(err, ledger.ErrDuplicate) {
		t.Errorf("re-archiving the repaired record: %v", err)
	}
}

func TestOpenRefusesAGap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	l := e.open(t)
	var ids []string
	for i := range 3 {
		r := record(i, evidence.Standard)
		if _, err := l.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// Appended one at a time, each record is a bundle of one.
	path := filepath.Join(e.dir, "evidence", filepath.FromSlash(ledger.BundleKey(1, 1)))
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err := ledger.Open(context.Background(), e.blobs, e.store.Ledger(), e.signer, origin)
	if err == nil || !strings.Contains(err.Error(), "record 1 is missing") {
		t.Fatalf("open over a gap: %v", err)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	k := ledger.BundleKey(42, 73)
	if err := blob.ValidKey(k); err != nil {
		t.Fatal(err)
	}
	first, last, err := ledger.ParseBundleKey(k)
	if err != nil || first != 42 || last != 73 {
		t.Errorf("ParseBundleKey(%q) = %d %d %v", k, first, last, err)
	}
	for _, bad := range []string{"records/000000000042-abc.dsse.json", ledger.BundleKey(5, 4), "records/x.dsse.jsonl"} {
		if _, _, err := ledger.ParseBundleKey(bad); err == nil {
			t.Errorf("ParseBundleKey(%q) accepted", bad)
		}
	}
	size, err := ledger.ParseCheckpointKey(ledger.CheckpointKey(43))
	if err != nil || size != 43 {
		t.Errorf("ParseCheckpointKey = %d %v", size, err)
	}
	envs := [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}
	if got := ledger.SplitBundle(ledger.Bundle(envs)); len(got) != 2 || string(got[0]) != `{"a":1}` || string(got[1]) != `{"b":2}` {
		t.Errorf("SplitBundle(Bundle(...)) = %q", got)
	}
}
