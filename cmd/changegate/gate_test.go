package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ghfake"
)

// gateRequest sends a deployment_protection_rule request for sha to env,
// with the callback on the fake GitHub unless callback is given, and
// returns the delivery id.
func (a *app) gateRequest(t *testing.T, runID int64, sha, env, callback string) string {
	t.Helper()
	if callback == "" {
		callback = fmt.Sprintf("%srepos/acme/api/actions/runs/%d/deployment_protection_rule", a.gh.URL(), runID)
	}
	return a.github(t, "deployment_protection_rule", fmt.Sprintf(`{"action":"requested","environment":%q,"event":"push",`+
		`"deployment_callback_url":%q,"deployment":{"id":%d,"sha":%q,"ref":"main","environment":%q},%s}`,
		env, callback, runID, sha, env, repoJSON))
}

// answerOf waits for the answer to run runID.
func (a *app) answerOf(t *testing.T, runID int64) ghfake.GateAnswer {
	t.Helper()
	var got ghfake.GateAnswer
	eventually(t, fmt.Sprintf("the answer to run %d", runID), 30*time.Second, func() bool {
		for _, ans := range a.gh.GateAnswers() {
			if ans.RunID == runID {
				got = ans
				return true
			}
		}
		return false
	})
	return got
}

func (a *app) answersTo(runID int64) int {
	n := 0
	for _, ans := range a.gh.GateAnswers() {
		if ans.RunID == runID {
			n++
		}
	}
	return n
}

// TestDeploymentProtectionRule: changegate answers every request. A SHA
// whose merged pull request meets the policy is approved; one that does
// not is rejected, the comment naming what is missing; a SHA no pull
// request covers is rejected; a non-production environment is approved
// with its reason; a 502 on the answer is retried until it lands; a
// redelivered request gets no second answer; a foreign callback URL is
// never called.
func TestDeploymentProtectionRule(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")

	good, goodMerge := strings.Repeat("a", 40), strings.Repeat("b", 40)
	a.compliantPR(61, good)
	a.gh.MergePullRequest("acme", "api", 61, goodMerge, "alice")
	bad, badMerge := strings.Repeat("c", 40), strings.Repeat("d", 40)
	a.gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 62, Title: "PAY-123 unreviewed", Author: "alice",
		HeadRef: "feature/x", HeadSHA: bad, BaseRef: "main"})
	a.gh.AddCommit("acme", "api", 62, ghfake.Commit{SHA: bad, Message: "x", Author: ghfake.Person{Login: "alice"}})
	a.gh.MergePullRequest("acme", "api", 62, badMerge, "alice")

	// A 502 on the first answer: the job retries until one lands.
	a.gh.FailNext(ghfake.MatchRoute("POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule"), 1, http.StatusBadGateway, nil, "")
	id := a.gateRequest(t, 1001, goodMerge, "production", "")
	if ans := a.answerOf(t, 1001); ans.State != "approved" || ans.Environment != "production" || !strings.Contains(ans.Comment, "#61") {
		t.Errorf("compliant SHA: %+v", ans)
	}

	time.Sleep(300 * time.Millisecond) // let run 1001's job finish before counting
	a.gh.ResetCalls()
	if ans := a.answerOf(t, a.runFor(t, 1002, badMerge, "production")); ans.State != "rejected" ||
		!strings.Contains(ans.Comment, "peer review fail") || !strings.Contains(ans.Comment, "#62") {
		t.Errorf("non-compliant SHA: %+v", ans)
	}
	t.Logf("GitHub calls for one answer (one merged pull request): %s", callSummary(a.gh.Calls()))
	if ans := a.answerOf(t, a.runFor(t, 1003, strings.Repeat("e", 40), "production")); ans.State != "rejected" || !strings.Contains(ans.Comment, "no pull request covers") {
		t.Errorf("uncovered SHA: %+v", ans)
	}
	if ans := a.answerOf(t, a.runFor(t, 1004, strings.Repeat("e", 40), "staging")); ans.State != "approved" || !strings.Contains(ans.Comment, "not a production environment") {
		t.Errorf("staging: %+v", ans)
	}

	// The same delivery again: acknowledged as a duplicate, not answered.
	status, err := sendWebhook(t.Context(), a.client, a.base, []byte(ghSecret), "deployment_protection_rule", id,
		[]byte(fmt.Sprintf(`{"action":"requested","environment":"production","deployment_callback_url":"%srepos/acme/api/actions/runs/1001/deployment_protection_rule","deployment":{"id":1001,"sha":%q},%s}`, a.gh.URL(), goodMerge, repoJSON)))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("redelivery: %d %v", status, err)
	}
	a.gateRequest(t, 1005, goodMerge, "production", "https://evil.example/repos/acme/api/actions/runs/1005/deployment_protection_rule")
	eventually(t, "the foreign callback refused", 30*time.Second, func() bool {
		return strings.Contains(a.logs.String(), "deployment callback URL is not under the GitHub API URL")
	})
	time.Sleep(500 * time.Millisecond)
	if n := a.answersTo(1001); n != 1 {
		t.Errorf("run 1001 answered %d times, want once", n)
	}
	if n := a.answersTo(1005); n != 0 {
		t.Errorf("the foreign callback was answered %d times", n)
	}
}

// runFor sends a request and returns its run id.
func (a *app) runFor(t *testing.T, runID int64, sha, env string) int64 {
	t.Helper()
	a.gateRequest(t, runID, sha, env, "")
	return runID
}

// callSummary counts calls by route, for the log.
func callSummary(calls []ghfake.Call) string {
	counts := map[string]int{}
	var order []string
	for _, c := range calls {
		k := c.Method + " " + c.Route
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%s ×%d", k, counts[k])
	}
	return fmt.Sprintf("%d calls: %s", len(calls), strings.Join(parts, ", "))
}

// TestDeploymentRecordsCarryTheGate: a production deployment's record
// carries changegate's answer. Deploying what changegate rejected, or
// deploying to an environment that names changegate's rule without its
// approval (an admin bypassed it), is an exception.
func TestDeploymentRecordsCarryTheGate(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	a.gh.SetProtectionRules("acme", "api", "production", a.gh.AppID())
	good, goodMerge := strings.Repeat("a", 40), strings.Repeat("b", 40)
	a.compliantPR(71, good)
	a.gh.MergePullRequest("acme", "api", 71, goodMerge, "alice")
	a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", 71), sha1, goodMerge))
	bad, badMerge := strings.Repeat("c", 40), strings.Repeat("d", 40)
	a.gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 72, Title: "PAY-123 unreviewed", Author: "alice", HeadRef: "feature/y", HeadSHA: bad, BaseRef: "main"})
	a.gh.AddCommit("acme", "api", 72, ghfake.Commit{SHA: bad, Message: "y", Author: ghfake.Person{Login: "alice"}})
	a.gh.MergePullRequest("acme", "api", 72, badMerge, "alice")
	a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", 72), sha1, badMerge))
	third, thirdMerge := strings.Repeat("e", 40), strings.Repeat("f", 40)
	a.compliantPR(73, third)
	a.gh.MergePullRequest("acme", "api", 73, thirdMerge, "alice")
	a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", 73), sha1, thirdMerge))
	db := openReadOnly(t, a.dataDir)
	eventually(t, "the three merge records", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) == 3
	})

	deployed := func(id int64, sha string) {
		a.gh.AddDeployment("acme", "api", ghfake.Deployment{SHA: sha, Environment: "production"})
		a.github(t, "deployment_status", fmt.Sprintf(`{"action":"created","deployment_status":{"state":"success"},`+
			`"deployment":{"id":%d,"sha":%q,"environment":"production"},%s}`, id, sha, repoJSON))
	}
	a.answerOf(t, a.runFor(t, 3001, goodMerge, "production"))
	review := a.github(t, "deployment_review", fmt.Sprintf(`{"action":"approved","approver":{"login":"olivia"},"comment":"go",`+
		`"since":"2026-03-01T10:00:00Z","workflow_run":{"id":9,"head_sha":%q},"workflow_job_runs":[{"id":1,"environment":"production"}],%s}`, goodMerge, repoJSON))
	a.waitProcessed(t, review)
	deployed(3001, goodMerge) // approved, then deployed
	a.answerOf(t, a.runFor(t, 3002, badMerge, "production"))
	deployed(3002, badMerge)   // rejected, deployed anyway
	deployed(3003, thirdMerge) // no request at all: the rule was bypassed
	eventually(t, "three deployment records", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE change_type = 'deployment'`) == 3
	})
	got := map[int64]string{}
	for _, rec := range a.records(t) {
		if rec.ChangeType != evidence.Deployment {
			continue
		}
		id := rec.Facts.Deployments[0].ID
		state := "no answer"
		if rec.Gate != nil {
			state = rec.Gate.State
			id = rec.Gate.DeploymentID
		}
		exc := "none"
		if rec.Exception != nil {
			exc = rec.Exception.Reason
		}
		got[id] = state + " / " + exc
		if id == 3001 && (len(rec.DeploymentReviews) != 1 || rec.DeploymentReviews[0].Reviewer != "olivia" || rec.DeploymentReviews[0].State != "approved") {
			t.Errorf("deployment 3001's reviews: %+v", rec.DeploymentReviews)
		}
	}
	for id, want := range map[int64][]string{
		3001: {"approved / none"},
		3002: {"rejected / ", "although changegate's protection rule rejected it"},
	} {
		if s := got[id]; !strings.HasPrefix(s, want[0]) || len(want) > 1 && !strings.Contains(s, want[1]) {
			t.Errorf("deployment %d: %q, want %q", id, s, want)
		}
	}
	bypassed := false
	for _, s := range got {
		bypassed = bypassed || strings.HasPrefix(s, "no answer / ") && strings.Contains(s, "its rules were bypassed")
	}
	if !bypassed {
		t.Errorf("no record of the bypassed deployment: %v", got)
	}
}

// TestFreezeWindows: during a freeze the gate rejects a compliant
// deployment, saying why, and lets an emergency change through.
func TestFreezeWindows(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	a.gh.SetContent("acme", "api", "main", ".github/changegate.yml",
		[]byte(repoPolicy+"freeze: [\"2000-01-01T00:00:00Z/2100-01-01T00:00:00Z\"]\n"))
	good, goodMerge := strings.Repeat("a", 40), strings.Repeat("b", 40)
	a.compliantPR(81, good)
	a.gh.MergePullRequest("acme", "api", 81, goodMerge, "alice")
	hot, hotMerge := strings.Repeat("c", 40), strings.Repeat("d", 40)
	a.gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 82, Title: "PAY-123 hotfix", Author: "alice",
		HeadRef: "hotfix/PAY-123", HeadSHA: hot, BaseRef: "main", Labels: []string{"emergency"}})
	a.gh.AddCommit("acme", "api", 82, ghfake.Commit{SHA: hot, Message: "fix", Author: ghfake.Person{Name: "Alice", Email: "alice@example.com", Login: "alice"}})
	a.gh.AddReview("acme", "api", 82, ghfake.Review{User: "bob", State: "APPROVED", CommitID: hot})
	a.gh.MergePullRequest("acme", "api", 82, hotMerge, "alice")

	if ans := a.answerOf(t, a.runFor(t, 4001, goodMerge, "production")); ans.State != "rejected" || !strings.Contains(ans.Comment, "frozen (2000-01-01T00:00:00Z/2100-01-01T00:00:00Z)") {
		t.Errorf("compliant change during a freeze: %+v", ans)
	}
	if ans := a.answerOf(t, a.runFor(t, 4002, hotMerge, "production")); ans.State != "approved" {
		t.Errorf("emergency change during a freeze: %+v", ans)
	}
}

// TestBypassRecordsWhoAndWhy: a merge made while the check failed is a
// bypass record that names who merged and quotes the justification GitHub
// keeps in the merge commit's message.
func TestBypassRecordsWhoAndWhy(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	head, merge := strings.Repeat("c", 40), strings.Repeat("d", 40)
	a.gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 95, Title: "PAY-123 hotfix", Author: "alice", HeadRef: "hotfix", HeadSHA: head, BaseRef: "main"})
	a.gh.AddCommit("acme", "api", 95, ghfake.Commit{SHA: head, Message: "x", Author: ghfake.Person{Login: "alice"}})
	a.gh.MergePullRequest("acme", "api", 95, merge, "root-admin")
	a.gh.SetCommitMessage("acme", "api", merge, "Merge pull request #95 from acme/hotfix\n\nBypassing: INC-42 outage, approved on the bridge by the CTO")
	a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", 95), sha1, merge))
	db := openReadOnly(t, a.dataDir)
	eventually(t, "the bypass record", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE change_type = 'bypass'`) == 1
	})
	rec := a.records(t)[0]
	if e := rec.Exception; e == nil || e.By != "root-admin" || e.Justification != "Bypassing: INC-42 outage, approved on the bridge by the CTO" || !strings.Contains(e.Reason, "merged by root-admin") {
		t.Errorf("bypass exception: %+v", rec.Exception)
	}
}

// TestGateWaitsAndGivesUp: while Jira cannot be read the gate does not
// answer, and answers once it can; a 422 on the answer is not retried, and
// nothing is approved by default.
func TestGateWaitsAndGivesUp(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	good, goodMerge := strings.Repeat("a", 40), strings.Repeat("b", 40)
	a.compliantPR(98, good)
	a.gh.MergePullRequest("acme", "api", 98, goodMerge, "alice")

	a.jf.FailNext(3, http.StatusServiceUnavailable)
	a.gateRequest(t, 5001, goodMerge, "production", "")
	eventually(t, "the gate waiting on Jira", 30*time.Second, func() bool {
		return strings.Contains(a.logs.String(), "deployment gate: a control is pending")
	})
	if n := a.answersTo(5001); n != 0 {
		t.Fatalf("answered %d times while a control was pending", n)
	}
	if ans := a.answerOf(t, 5001); ans.State != "approved" {
		t.Errorf("after Jira came back: %+v", ans)
	}

	a.gh.FailNext(ghfake.MatchRoute("POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule"), 5, http.StatusUnprocessableEntity, nil, `{"message":"Validation Failed"}`)
	a.gateRequest(t, 5002, goodMerge, "production", "")
	eventually(t, "the 422 given up on", 30*time.Second, func() bool {
		return strings.Contains(a.logs.String(), "job failed permanently") && strings.Contains(a.logs.String(), "5002")
	})
	time.Sleep(300 * time.Millisecond)
	if n := a.gh.CountCalls("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule"); n > 3 {
		t.Errorf("the 422 was retried: %d answer calls in all", n)
	}
	if n := a.answersTo(5002); n != 0 {
		t.Errorf("run 5002 answered %d times", n)
	}
}

// records are the app's records, each checked against its key, in log
// order.
func (a *app) records(t *testing.T) []*evidence.Record {
	t.Helper()
	pub, err := readPublicKey("", a.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []*evidence.Record
	for _, r := range storedRecords(t, a.dataDir) {
		rec, err := evidence.VerifyEnvelope(r.env, pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}
