package main

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/blob/fs"
	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/sqlite"
)

// TestAuditReindexRepairsAnEditedIndex: verify names an edited index row;
// reindex rebuilds the index from the signed records; verify passes again.
func TestAuditReindexRepairsAnEditedIndex(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	key, _, err := evidence.LoadOrCreateKey(filepath.Join(dataDir, "signing-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := evidence.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := fs.Open(filepath.Join(dataDir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(t.Context(), dataDir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(t.Context(), blobs, store.Ledger(), signer, LedgerOrigin(signer.Public()))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		at := time.Date(2026, 11, 23, 12, n, 0, 0, time.UTC)
		sha := strings.Repeat(string(rune('0'+n)), 40)
		if _, err := l.Append(t.Context(), &evidence.Record{
			Schema: evidence.Schema, Repo: change.Repo{Owner: "acme", Name: "api"},
			Subject:    evidence.Subject{PR: n, BaseRef: "main", HeadSHA: sha, MergeSHA: sha},
			ChangeType: evidence.Standard, ObservedAt: at, AppVersion: "test",
			Facts:    change.Facts{PR: change.PullRequest{Number: n, Merged: true, MergedAt: at}},
			Decision: change.Decision{Outcome: change.Compliant, PolicyDigest: "d"},
			Policy:   evidence.Policy{Digest: "d"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Someone marks record 1 compliant=false in the index.
	if _, err := store.SQL().Exec(`UPDATE ledger_records SET compliant = 'false' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	store.Close()

	audit := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"audit"}, args...), envMap(nil), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, out := audit("verify", "--data-dir", dataDir); code == 0 || !strings.Contains(out, "record 1") || !strings.Contains(out, "compliant") {
		t.Fatalf("verify of an edited index: exit %d, %s", code, out)
	}
	if code, out := audit("reindex", "--data-dir", dataDir); code != 0 || !strings.Contains(out, "reindexed 2 records") {
		t.Fatalf("reindex: exit %d, %s", code, out)
	}
	if code, out := audit("verify", "--data-dir", dataDir); code != 0 || !strings.HasPrefix(out, "ok: 2 records") {
		t.Fatalf("verify after reindex: exit %d, %s", code, out)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var compliant string
	if err := db.QueryRow(`SELECT compliant FROM ledger_records WHERE seq = 1`).Scan(&compliant); err != nil || compliant != "true" {
		t.Errorf("after reindex compliant = %q, %v", compliant, err)
	}
}
