package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/blob/s3"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/store/postgres"
	"github.com/changegate/changegate/internal/testenv"
)

// TestPostgresLifecycle runs the server on PostgreSQL with its evidence in
// S3, as the scale-out configuration does: a compliant pull request gets
// its check, its merge is archived once (the merge delivered twice), and
// the ledger, read from S3 and the PostgreSQL index, verifies.
func TestPostgresLifecycle(t *testing.T) {
	t.Parallel()
	dbURL, evidenceURL := testenv.PostgresDatabase(t), testenv.S3Evidence(t)
	a := startAppWith(t, map[string]string{"CHANGEGATE_DATABASE_URL": dbURL, "CHANGEGATE_EVIDENCE_URL": evidenceURL})
	a.jf.SetStatus("PAY-123", "Approved")
	// /readyz reports the database and the evidence bucket.
	resp, err := a.client.Get(a.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || ready.Checks["store"] != "ok" || ready.Checks["evidence"] != "ok" || ready.Checks["queue"] != "ok" {
		t.Errorf("readyz: %d %v, want 200 with store, queue and evidence ok", resp.StatusCode, ready.Checks)
	}
	head, merge := strings.Repeat("e", 40), fmt.Sprintf("%040d", 61)
	a.compliantPR(61, head)
	a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, head), `"number":51`, `"number":61`))
	eventually(t, "the check passes", 30*time.Second, func() bool {
		c, _ := a.gh.LatestCheckRun("acme", "api", head, "changegate")
		return c.Conclusion == "success"
	})
	a.gh.MergePullRequest("acme", "api", 61, merge, "alice")
	closed := strings.ReplaceAll(strings.ReplaceAll(prEvent("closed", 51), sha1, merge), `"number":51`, `"number":61`)
	a.github(t, "pull_request", closed)
	a.github(t, "pull_request", closed)

	pg, err := postgres.Open(t.Context(), dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	eventually(t, "the merge archived", 30*time.Second, func() bool {
		n, err := pg.LedgerReader().Size(t.Context())
		return err == nil && n == 1
	})
	waitIdlePG(t, pg)
	blobs, err := s3.Open(t.Context(), evidenceURL, s3.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := readPublicKey("", a.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := evidence.Verify(ledger.Source(t.Context(), blobs, pg.Ledger().Rows), pub, LedgerOrigin(pub))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 1 {
		t.Errorf("the ledger holds %d records, want 1", rep.Records)
	}
}

// waitIdlePG waits until every delivery the PostgreSQL store holds is
// processed.
func waitIdlePG(t *testing.T, pg *postgres.DB) {
	t.Helper()
	eventually(t, "every delivery processed", 60*time.Second, func() bool {
		ds, err := pg.Deliveries(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Processed < d.Jobs {
				return false
			}
		}
		return true
	})
}
