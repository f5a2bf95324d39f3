package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/ghfake"
)

// TestFanOutStackedPRs: 25 stacked pull requests whose heads each get 32
// check runs. Only the one check the policy counts as staging evidence
// (staging.checks) re-evaluates a pull request; the other 31 cost no
// evaluation and no counted GitHub call (the policy reads answer 304).
// The test reports the calls used against a 5,000/h installation budget.
func TestFanOutStackedPRs(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	gh := a.gh
	gh.SetContent("acme", "api", "main", ".github/changegate.yml", []byte(repoPolicy+"staging:\n  environments: [staging]\n  checks: [staging-smoke]\n"))
	a.jf.SetStatus("PAY-123", "Approved")
	const prs, runs = 25, 32
	heads := make([]string, prs)
	for i := range prs {
		heads[i] = fmt.Sprintf("%040x", 0xf00+i)
		a.compliantPR(200+i, heads[i])
		a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, heads[i]), `"number":51`, fmt.Sprintf(`"number":%d`, 200+i)))
	}
	evaluated := func() int { return strings.Count(a.logs.String(), `"msg":"evaluated"`) }
	eventually(t, "every pull request evaluated once", 60*time.Second, func() bool { return evaluated() >= prs })
	waitIdle(t, a)
	before := evaluated()
	gh.ResetCalls()
	for i, head := range heads {
		for r := range runs {
			name := fmt.Sprintf("ci-%d", r)
			if r == runs-1 {
				name = "staging-smoke"
			}
			gh.AddCheckRun("acme", "api", ghfake.CheckRun{Name: name, HeadSHA: head, Status: "completed", Conclusion: "success", AppSlug: "ci"})
			a.github(t, "check_run", fmt.Sprintf(`{"action":"completed","check_run":{"name":%q,"head_sha":%q,"app":{"id":777},"pull_requests":[{"number":%d}]},%s}`,
				name, head, 200+i, repoJSON))
		}
	}
	waitIdle(t, a)
	calls := gh.Calls()
	counted := 0
	for _, c := range calls {
		if !c.NotModified {
			counted++
		}
	}
	got := evaluated() - before
	t.Logf("%d check runs on %d heads: %d evaluations; %d GitHub requests, %d counted against the 5,000/h budget (%.1f%% of an hour's); %s",
		prs*runs, prs, got, len(calls), counted, float64(counted)/50, callSummary(calls))
	if got > prs {
		t.Errorf("%d evaluations for %d staging check runs, want at most %d", got, prs, prs)
	}
	if got == 0 {
		t.Errorf("the staging check runs evaluated nothing")
	}
}

// waitIdle waits until every acknowledged delivery's jobs ran.
func waitIdle(t *testing.T, a *app) {
	t.Helper()
	db := openReadOnly(t, a.dataDir)
	eventually(t, "every delivery processed", 120*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE processed < jobs`) == 0
	})
}
