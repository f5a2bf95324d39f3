package main

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLedgerSurvivesKill: merges are archived while the built binary is
// killed with SIGKILL; after a restart every merge has exactly one record
// and the ledger verifies: no gap, no duplicate, no unsigned record.
func TestLedgerSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and crashes the binary; skipped in -short mode")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	gh, jf := newFakes(t, "Approved")
	env := fakesEnv(t, dir, gh, jf)
	a := &app{gh: gh, jf: jf, dataDir: filepath.Join(dir, "data"), client: &http.Client{Timeout: 10 * time.Second}}

	const merges = 40
	for n := 1; n <= merges; n++ {
		sha := fmt.Sprintf("%040x", n)
		a.compliantPR(100+n, sha)
		gh.MergePullRequest("acme", "api", 100+n, fmt.Sprintf("%040x", 1000+n), "alice")
	}
	srv := startBinary(t, bin, a.dataDir, []byte(ghSecret), env...)
	a.base = srv.base
	db := openReadOnly(t, a.dataDir)
	for n := 1; n <= merges; n++ {
		a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", 100+n), sha1, fmt.Sprintf("%040x", 1000+n)))
	}
	// Kill while records are being archived.
	eventually(t, "some records", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) >= 5
	})
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.wait()
	atKill := queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`)
	t.Logf("records indexed at kill: %d of %d", atKill, merges)

	srv = startBinary(t, bin, a.dataDir, []byte(ghSecret), env...)
	eventually(t, "every merge archived", 60*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) == merges
	})
	time.Sleep(300 * time.Millisecond)
	if n := queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`); n != merges {
		t.Errorf("%d records for %d merges", n, merges)
	}
	if n := queryInt(t, db, `SELECT COUNT(DISTINCT sha) FROM ledger_records`); n != merges {
		t.Errorf("%d distinct merges recorded, want %d", n, merges)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"audit", "verify", "--data-dir", a.dataDir}, envMap(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("verify after the crash: %s%s", stdout.String(), stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), fmt.Sprintf("ok: %d records", merges)) {
		t.Errorf("verify: %s", stdout.String())
	}
}
