package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
)

// TestBackfillResumesAfterKill backfills 200 merged pull requests (the
// commit list takes pages). The first run is killed with SIGKILL halfway;
// the second meets a rate limit, waits it out, and finishes. Every merge is
// archived once, marked backfilled.
func TestBackfillResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; -short skips it")
	}
	t.Parallel()
	a := startAppWith(t, map[string]string{"CHANGEGATE_RECONCILE_INTERVAL": "0", "CHANGEGATE_REDELIVERY_INTERVAL": "0"})
	a.jf.SetStatus("PAY-123", "Approved")
	db := openReadOnly(t, a.dataDir)
	eventually(t, "the inventory", 30*time.Second, func() bool { return queryInt(t, db, `SELECT COUNT(*) FROM repositories`) > 0 })
	a.stop()
	const n = 200
	old := time.Now().Add(-10 * 24 * time.Hour)
	for i := 1; i <= n; i++ {
		head, merge := fmt.Sprintf("%040x", 0xa0000+i), fmt.Sprintf("%040x", 0xb0000+i)
		a.compliantPR(1000+i, head)
		a.gh.MergePullRequest("acme", "api", 1000+i, merge, "alice")
		a.gh.Push("acme", "api", "main", "", ghfake.GitCommit{SHA: merge, Date: old.Add(time.Duration(i) * time.Minute),
			Author: ghfake.Person{Name: "Alice", Email: "alice@example.com", Login: "alice"}, Files: map[string][]byte{fmt.Sprintf("f%d", i): {1}}})
	}
	bin := buildBinary(t, t.TempDir())
	backfill := func() *exec.Cmd {
		cmd := exec.Command(bin, "backfill", "--since", old.Add(-time.Hour).Format(time.DateOnly))
		for k, v := range a.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
		return cmd
	}
	records := func() int { return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) }

	first := backfill()
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "half the merges archived", 2*time.Minute, func() bool { return records() >= n/2 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	killedAt := records()

	// Three: a read is tried three times before the limit reaches the run.
	a.gh.FailNext(ghfake.MatchRoute("GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls"), 3, http.StatusForbidden,
		http.Header{"Retry-After": {"1"}}, ghfake.SecondaryRateLimitBody)
	a.gh.ResetCalls()
	out, err := backfill().CombinedOutput()
	t.Logf("GitHub calls of the second run (%d merges archived): %s", n-killedAt, callSummary(a.gh.Calls()))
	if err != nil {
		t.Fatalf("the second run: %v\n%s", err, out)
	}
	mustContain(t, string(out), "rate limited by GitHub; waiting", "commits checked")
	t.Logf("killed after %d records; second run:\n%s", killedAt, lastLines(string(out), 3))
	if got := records(); got != n {
		t.Errorf("%d records, want %d", got, n)
	}
	if dup := queryInt(t, db, `SELECT COUNT(*) - COUNT(DISTINCT sha) FROM ledger_records`); dup != 0 {
		t.Errorf("%d duplicate records", dup)
	}
	if b := queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE json_extract(summary, '$.backfilled') = 1`); b != n {
		t.Errorf("%d records marked backfilled, want %d", b, n)
	}
	var verify bytes.Buffer
	if code := run(t.Context(), []string{"audit", "verify", "--data-dir", a.dataDir}, envMap(nil), &verify, &verify); code != 0 {
		t.Errorf("verify: %s", verify.String())
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
