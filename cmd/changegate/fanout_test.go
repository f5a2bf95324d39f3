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

// TestLatestEventWinsUnderBudget: the installation's rate budget runs low
// while 8 heads each get 12 check runs that all count as staging evidence.
// Intake still answers 202 to every delivery; the evaluations wait in the
// durable queue until the reset; then, per commit, only the most recent
// job that counts evaluates: the earlier ones find it waiting and step
// aside.
func TestLatestEventWinsUnderBudget(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	gh := a.gh
	const heads, runs = 8, 12
	names := make([]string, runs)
	for r := range runs {
		names[r] = fmt.Sprintf("smoke-%d", r)
	}
	gh.SetContent("acme", "api", "main", ".github/changegate.yml",
		[]byte(repoPolicy+"staging:\n  environments: [staging]\n  checks: ["+strings.Join(names, ", ")+"]\n"))
	a.jf.SetStatus("PAY-123", "Approved")
	shas := make([]string, heads)
	for i := range heads {
		shas[i] = fmt.Sprintf("%040x", 0xbee+i)
		a.compliantPR(300+i, shas[i])
		a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, shas[i]), `"number":51`, fmt.Sprintf(`"number":%d`, 300+i)))
	}
	evaluated := func() int { return strings.Count(a.logs.String(), `"msg":"evaluated"`) }
	eventually(t, "every pull request evaluated once", 60*time.Second, func() bool { return evaluated() >= heads })
	waitIdle(t, a)
	before := evaluated()

	// 4% of the hour's budget is left, under the 5% reserve, for 4 seconds.
	reset := time.Now().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	gh.SetRateUsed(42, ghfake.RateLimit-ghfake.RateLimit*4/100, reset)
	// Each commit's last check run is one the policy does not count: the
	// staging jobs before it must not step aside for it.
	for i, sha := range shas {
		for _, name := range append(names, "lint") {
			gh.AddCheckRun("acme", "api", ghfake.CheckRun{Name: name, HeadSHA: sha, Status: "completed", Conclusion: "success", AppSlug: "ci"})
			a.github(t, "check_run", fmt.Sprintf(`{"action":"completed","check_run":{"name":%q,"head_sha":%q,"app":{"id":777},"pull_requests":[{"number":%d}]},%s}`,
				name, sha, 300+i, repoJSON))
		}
	}
	if time.Now().After(reset) {
		t.Skip("the deliveries took longer than the budget's reset: the machine is too slow for this test")
	}
	waitIdle(t, a)
	got := evaluated() - before
	t.Logf("%d staging check runs and %d others on %d heads under a low budget: %d evaluations; %s", heads*runs, heads, heads, got, callSummary(gh.Calls()))
	if got != heads {
		t.Errorf("%d evaluations, want %d: one per commit, by its most recent job", got, heads)
	}
	if n := strings.Count(a.logs.String(), `"msg":"job waits"`); n == 0 {
		t.Errorf("no job waited for the budget")
	}
	for _, sha := range shas {
		if c, ok := gh.LatestCheckRun("acme", "api", sha, "changegate"); !ok || c.Conclusion != "success" {
			t.Errorf("check on %s = %+v, want success", sha[:8], c)
		}
	}
}

// TestManagerLeavesTeam: the release manager who approved leaves the team.
// The membership event re-evaluates the open pull request, whose check
// turns from success to failure before anyone merges it; rejoining turns
// it back.
func TestManagerLeavesTeam(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	head := fmt.Sprintf("%040x", 0xca201)
	a.compliantPR(400, head)
	a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, head), `"number":51`, `"number":400`))
	conclusion := func() string {
		c, _ := a.gh.LatestCheckRun("acme", "api", head, "changegate")
		return c.Conclusion
	}
	eventually(t, "the check passes", 30*time.Second, func() bool { return conclusion() == "success" })
	// The team's event finds the pull requests in the index, which the
	// evaluation's commit, just after its check, writes.
	waitIdle(t, a)

	membership := func(action string) {
		a.github(t, "membership", fmt.Sprintf(`{"action":%q,"scope":"team","member":{"login":"carol"},"team":{"slug":"release-managers"},`+
			`"organization":{"login":"acme"},"installation":{"id":42}}`, action))
	}
	a.gh.SetTeamMember("acme", "release-managers", "carol", "")
	membership("removed")
	eventually(t, "the check fails once carol left the team", 30*time.Second, func() bool { return conclusion() == "failure" })
	if c, _ := a.gh.LatestCheckRun("acme", "api", head, "changegate"); !strings.Contains(strings.ToLower(c.OutputTitle+c.OutputSummary), "manager") {
		t.Errorf("the failing check does not say the manager's approval is missing: %q %q", c.OutputTitle, c.OutputSummary)
	}
	waitIdle(t, a)
	a.gh.SetTeamMember("acme", "release-managers", "carol", "active")
	membership("added")
	eventually(t, "the check passes once carol is back", 30*time.Second, func() bool { return conclusion() == "success" })
}
