package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
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
// appendTestRecords opens dataDir's ledger and archives the merges of pull
// requests first..last, returning the store still open.
func appendTestRecords(t *testing.T, dataDir string, first, last int) *sqlite.DB {
	t.Helper()
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
	for n := first; n <= last; n++ {
		at := time.Date(2026, 11, 23, 12, n, 0, 0, time.UTC)
		sha := fmt.Sprintf("%040x", n)
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
	return store
}

func TestAuditReindexRepairsAnEditedIndex(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	store := appendTestRecords(t, dataDir, 1, 2)
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

// TestAuditVerifySince is an auditor's routine: verify the whole ledger
// once and keep its checkpoint, then verify only what was added since,
// which also proves the log still extends what was verified.
func TestAuditVerifySince(t *testing.T) {
	t.Parallel()
	dataDir, work := t.TempDir(), t.TempDir()
	appendTestRecords(t, dataDir, 1, 3).Close()
	audit := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"audit"}, args...), envMap(nil), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	first, second := filepath.Join(work, "first.note"), filepath.Join(work, "second.note")
	if code, out := audit("verify", "--data-dir", dataDir, "--save-checkpoint", first); code != 0 || !strings.HasPrefix(out, "ok: 3 records") {
		t.Fatalf("full verify: exit %d, %s", code, out)
	}
	if b, err := os.ReadFile(first); err != nil || !bytes.Contains(b, []byte("\n3\n")) {
		t.Fatalf("saved checkpoint: %q, %v", b, err)
	}
	appendTestRecords(t, dataDir, 4, 5).Close()
	code, out := audit("verify", "--data-dir", dataDir, "--since", first, "--save-checkpoint", second)
	if code != 0 || !strings.HasPrefix(out, "ok: 2 records after trusted checkpoint 3") || !strings.Contains(out, "tree size 5") {
		t.Fatalf("verify --since: exit %d, %s", code, out)
	}
	if code, out := audit("verify", "--data-dir", dataDir, "--since", second); code != 0 || !strings.HasPrefix(out, "ok: 0 records after trusted checkpoint 5") {
		t.Fatalf("verify --since the latest: exit %d, %s", code, out)
	}

	// The same checkpoint as GET /api/v1/checkpoint serves it.
	note, _ := os.ReadFile(first)
	api := filepath.Join(work, "checkpoint.json")
	body, _ := json.Marshal(map[string]any{"checkpoint": map[string]any{"size": 3, "note": string(note)}})
	if err := os.WriteFile(api, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := audit("verify", "--data-dir", dataDir, "--since", api); code != 0 || !strings.HasPrefix(out, "ok: 2 records after trusted checkpoint 3") {
		t.Fatalf("verify --since the API's JSON: exit %d, %s", code, out)
	}

	// Bad input: a package with ledger flags is a usage error, and writes
	// nothing; an unreadable or foreign checkpoint is refused.
	saved := filepath.Join(work, "never.note")
	if code, out := audit("verify", filepath.Join(work, "x.zip"), "--since", first, "--save-checkpoint", saved); code != 2 || !strings.Contains(out, "--since") {
		t.Errorf("package with --since: exit %d, %s", code, out)
	}
	if code, out := audit("verify", "--data-dir", dataDir, "--since", filepath.Join(work, "absent")); code != 1 || !strings.Contains(out, "--since") {
		t.Errorf("missing checkpoint file: exit %d, %s", code, out)
	}
	other := t.TempDir()
	appendTestRecords(t, other, 1, 3).Close()
	foreign := filepath.Join(work, "foreign.note")
	if code, out := audit("verify", "--data-dir", other, "--save-checkpoint", foreign); code != 0 {
		t.Fatalf("other ledger: exit %d, %s", code, out)
	}
	if code, out := audit("verify", "--data-dir", dataDir, "--since", foreign, "--save-checkpoint", saved); code != 1 || !strings.Contains(out, "not signed by") {
		t.Errorf("checkpoint of another ledger: exit %d, %s", code, out)
	}

	// The company rewrites record 2 and rebuilds the index: the leaves no
	// longer give the root the auditor trusted.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE ledger_leaves SET hashes = CAST(randomblob(length(hashes)) AS BLOB) WHERE first = 1`); err != nil {
		t.Fatal(err)
	}
	if code, out := audit("verify", "--data-dir", dataDir, "--since", first, "--save-checkpoint", saved); code != 1 || !strings.Contains(out, "does not extend the trusted checkpoint") {
		t.Errorf("rewritten history: exit %d, %s", code, out)
	}
	if _, err := os.Stat(saved); !os.IsNotExist(err) {
		t.Errorf("a checkpoint was saved by a failed verify: %v", err)
	}
}
