package main

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/jira/jirafake"
	"github.com/changegate/changegate/internal/ledger"
	"github.com/changegate/changegate/internal/webhook"
)

const (
	ghSecret   = "lifecycle-github-secret"
	jiraSecret = "lifecycle-jira-secret"
	sha1       = "1111111111111111111111111111111111111111"
)

// app is a running changegate wired to a fake GitHub and a fake Jira.
type app struct {
	gh      *ghfake.Server
	jf      *jirafake.Server
	base    string
	dataDir string
	client  *http.Client
	logs    *logWatch
	seq     int
	env     map[string]string // the server's environment
	stop    func() int        // stops the server
}

const repoPolicy = `version: 1
ticket:
  projects: [PAY]
  statuses: [Approved]
manager:
  teams: [acme/release-managers]
`

// newFakes starts a fake GitHub with one repository acme/api, its policy
// and a release manager, and a fake Jira holding PAY-123 in status.
func newFakes(t testing.TB, status string) (*ghfake.Server, *jirafake.Server) {
	t.Helper()
	gh := ghfake.New(t)
	inst := gh.AddInstallation(ghfake.Installation{ID: 42, Account: "acme", AccountType: "Organization"})
	gh.AddRepo(inst.ID, ghfake.Repo{ID: 1001, Owner: "acme", Name: "api"})
	gh.SetContent("acme", "api", "main", ".github/changegate.yml", []byte(repoPolicy))
	gh.SetTeamMember("acme", "release-managers", "carol", "active")
	jf := jirafake.New(t)
	jf.AddIssue(jirafake.Issue{Key: "PAY-123", Type: "Story", Status: status, Summary: "Add rate limiting",
		Reporter: jirafake.User{AccountID: "r1", DisplayName: "Pat Reporter"}})
	return gh, jf
}

// startApp starts the real server wiring (run) against the fakes, with one
// repository acme/api whose policy requires an Approved PAY ticket, a
// review, a staging deployment and a release manager's approval.
func startApp(t *testing.T) *app {
	t.Helper()
	return startAppWith(t, nil)
}

// startAppWith is startApp with more server environment.
func startAppWith(t testing.TB, extra map[string]string) *app {
	t.Helper()
	gh, jf := newFakes(t, "In Progress")

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	env := map[string]string{
		"CHANGEGATE_WEBHOOK_SECRET":          ghSecret,
		"CHANGEGATE_GITHUB_APP_ID":           itoa(gh.AppID()),
		"CHANGEGATE_GITHUB_PRIVATE_KEY_FILE": keyFile,
		"CHANGEGATE_GITHUB_API_URL":          gh.URL(),
		"CHANGEGATE_JIRA_URL":                jf.URL(),
		"CHANGEGATE_JIRA_USER":               jf.User(),
		"CHANGEGATE_JIRA_TOKEN":              jf.Token(),
		"CHANGEGATE_JIRA_WEBHOOK_SECRET":     jiraSecret,
		"CHANGEGATE_DATA_DIR":                dataDir,
		"CHANGEGATE_LISTEN":                  "127.0.0.1:0",
		// The periodic completeness jobs run where a test asks for them:
		// their start-up run would race with the history a test builds.
		"CHANGEGATE_RECONCILE_INTERVAL":  "0",
		"CHANGEGATE_REDELIVERY_INTERVAL": "0",
		// Reconciliation judges commits at once; TestReconciliation orders
		// its webhooks so that this does not race.
		"CHANGEGATE_RECONCILE_GRACE": "0",
	}
	maps.Copy(env, extra)
	srv := serveInProcess(t, env)
	return &app{gh: gh, jf: jf, base: srv.base, dataDir: dataDir, client: &http.Client{Timeout: 10 * time.Second}, logs: srv.logs, env: env, stop: srv.stop}
}

// github sends a signed GitHub delivery and returns its ID.
func (a *app) github(t testing.TB, event, body string) string {
	t.Helper()
	a.seq++
	id := fmt.Sprintf("%s-%d", event, a.seq)
	status, err := sendWebhook(t.Context(), a.client, a.base, []byte(ghSecret), event, id, []byte(body))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("%s webhook: %d %v", event, status, err)
	}
	return id
}

// jira sends a signed Jira issue update.
func (a *app) jira(t *testing.T, key string) {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"webhookEvent":"jira:issue_updated","issue":{"key":%q},"changelog":{"items":[{"field":"status"}]}}`, key))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, a.base+"/webhooks/jira", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	a.seq++
	req.Header.Set("X-Atlassian-Webhook-Identifier", fmt.Sprintf("jira-%d", a.seq))
	req.Header.Set("X-Hub-Signature", webhook.Sign([]byte(jiraSecret), body))
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("jira webhook: %d", resp.StatusCode)
	}
}

const repoJSON = `"repository":{"full_name":"acme/api","name":"api","owner":{"login":"acme"}},"installation":{"id":42}`

func prEvent(action string, number int) string {
	return fmt.Sprintf(`{"action":%q,"number":%d,"pull_request":{"number":%d,"head":{"sha":%q}},%s}`, action, number, number, sha1, repoJSON)
}

func reviewEvent(number int) string {
	return fmt.Sprintf(`{"action":"submitted","review":{"state":"approved"},"pull_request":{"number":%d},%s}`, number, repoJSON)
}

func deploymentStatusEvent(sha string) string {
	return fmt.Sprintf(`{"action":"created","deployment_status":{"state":"success"},"deployment":{"sha":%q,"environment":"staging"},%s}`, sha, repoJSON)
}

// conclusions lists what changegate wrote on the head, in order: the
// conclusion, or the status while in progress.
func (a *app) conclusions() []string {
	var out []string
	for _, w := range a.gh.CheckRunWrites("acme", "api") {
		if w.Conclusion != "" {
			out = append(out, w.Conclusion)
		} else {
			out = append(out, w.Status)
		}
	}
	return out
}

func (a *app) waitWrites(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d check-run writes", n), 30*time.Second, func() bool { return len(a.conclusions()) >= n })
}

// waitProcessed waits until a delivery's jobs have all completed.
func (a *app) waitProcessed(t *testing.T, id string) {
	t.Helper()
	db := openReadOnly(t, a.dataDir)
	eventually(t, "delivery "+id+" processed", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE id = ? AND processed = jobs`, id) == 1
	})
}

func (a *app) latest(t *testing.T) ghfake.CheckRunWrite {
	t.Helper()
	ws := a.gh.CheckRunWrites("acme", "api")
	return ws[len(ws)-1]
}

// TestPullRequestLifecycle walks one pull request through its life with
// signed webhooks: opened → reviewed → staging deployment succeeds →
// manager approves → ticket transitioned. It asserts the exact sequence of
// check-run conclusions posted, and that an unchanged decision posts nothing.
func TestPullRequestLifecycle(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	gh := a.gh
	gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 7, Title: "PAY-123 Add rate limiting", Author: "alice",
		HeadRef: "feature/PAY-123", HeadSHA: sha1, BaseRef: "main"})
	gh.AddCommit("acme", "api", 7, ghfake.Commit{SHA: sha1, Message: "Add rate limiting",
		Author: ghfake.Person{Name: "Alice", Email: "alice@example.com", Login: "alice"}})

	step := func(name string, n int, wantTitle string, send func()) {
		t.Helper()
		send()
		a.waitWrites(t, n)
		if got := a.latest(t).Title; got != wantTitle {
			t.Fatalf("%s: title %q, want %q\n%s", name, got, wantTitle, a.latest(t).Summary)
		}
	}
	step("opened", 1, "0 of 4 controls met: ticket, review, staging and manager approval missing", func() {
		a.github(t, "pull_request", prEvent("opened", 7))
	})
	step("reviewed", 2, "1 of 4 controls met: ticket, staging and manager approval missing", func() {
		gh.AddReview("acme", "api", 7, ghfake.Review{User: "bob", State: "APPROVED", CommitID: sha1})
		a.github(t, "pull_request_review", reviewEvent(7))
	})
	step("staged", 3, "2 of 4 controls met: ticket and manager approval missing", func() {
		dep := gh.AddDeployment("acme", "api", ghfake.Deployment{SHA: sha1, Environment: "staging"})
		gh.AddDeploymentStatus("acme", "api", dep.ID, ghfake.DeploymentStatus{State: "success"})
		a.github(t, "deployment_status", deploymentStatusEvent(sha1))
	})
	step("manager approved", 4, "3 of 4 controls met: ticket missing", func() {
		gh.AddReview("acme", "api", 7, ghfake.Review{User: "carol", State: "APPROVED", CommitID: sha1})
		a.github(t, "pull_request_review", reviewEvent(7))
	})
	step("ticket transitioned", 5, "4 of 4 controls met", func() {
		a.jf.SetStatus("PAY-123", "Approved")
		a.jira(t, "PAY-123")
	})
	if diff := cmp.Diff([]string{"failure", "failure", "failure", "failure", "success"}, a.conclusions()); diff != "" {
		t.Errorf("conclusions posted (-want +got):\n%s", diff)
	}
	if runs := gh.CheckRuns("acme", "api", sha1); len(runs) != 1 {
		t.Errorf("%d check runs on the head, want one created and then updated", len(runs))
	}

	// Steady state: a re-evaluation with nothing changed writes nothing.
	gh.ResetCalls()
	jiraBefore := len(a.jf.Calls())
	id := a.github(t, "issue_comment", fmt.Sprintf(`{"action":"created","issue":{"number":7,"pull_request":{}},`+
		`"comment":{"body":"/changegate recheck","author_association":"MEMBER"},%s}`, repoJSON))
	a.waitProcessed(t, id)
	if n := len(a.conclusions()); n != 5 {
		t.Errorf("an unchanged decision wrote: %d writes, want 5", n)
	}
	if w := gh.Writes(); w != 0 {
		t.Errorf("GitHub writes in steady state = %d, want 0", w)
	}
	calls := gh.Calls()
	var notModified int
	var routes []string
	for _, c := range calls {
		if c.NotModified {
			notModified++
		}
		routes = append(routes, fmt.Sprintf("%s %s → %d", c.Method, c.Route, c.Status))
	}
	t.Logf("steady-state re-evaluation: %d GitHub calls (%d answered 304, free of rate limit), %d Jira calls; routes:\n  %s",
		len(calls), notModified, len(a.jf.Calls())-jiraBefore, strings.Join(routes, "\n  "))
	if counted := len(calls) - notModified; counted > 3 {
		t.Errorf("a steady-state re-evaluation made %d counted GitHub calls, want at most 3", counted)
	}
}

// compliantPR adds a pull request whose facts satisfy every control.
func (a *app) compliantPR(number int, sha string) {
	gh := a.gh
	gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: number, Title: "PAY-123 Change " + sha[:4], Author: "alice",
		HeadRef: "feature/PAY-123", HeadSHA: sha, BaseRef: "main"})
	gh.AddCommit("acme", "api", number, ghfake.Commit{SHA: sha, Message: "Change",
		Author: ghfake.Person{Name: "Alice", Email: "alice@example.com", Login: "alice"}})
	gh.AddReview("acme", "api", number, ghfake.Review{User: "bob", State: "APPROVED", CommitID: sha})
	gh.AddReview("acme", "api", number, ghfake.Review{User: "carol", State: "APPROVED", CommitID: sha})
	dep := gh.AddDeployment("acme", "api", ghfake.Deployment{SHA: sha, Environment: "staging"})
	gh.AddDeploymentStatus("acme", "api", dep.ID, ghfake.DeploymentStatus{State: "success"})
}

// unreviewedPR is compliantPR without reviews or a staging deployment:
// peer review, the manager's approval and staging are missing.
func (a *app) unreviewedPR(number int, sha string) {
	a.gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: number, Title: "PAY-123 Change " + sha[:4], Author: "alice",
		HeadRef: "feature/PAY-123", HeadSHA: sha, BaseRef: "main"})
	a.gh.AddCommit("acme", "api", number, ghfake.Commit{SHA: sha, Message: "Change",
		Author: ghfake.Person{Name: "Alice", Email: "alice@example.com", Login: "alice"}})
}

// conclusionsOn is what was written on one head commit, in order.
func (a *app) conclusionsOn(sha string) []string {
	var out []string
	for _, w := range a.gh.CheckRunWrites("acme", "api") {
		if w.HeadSHA != sha {
			continue
		}
		if w.Conclusion != "" {
			out = append(out, w.Conclusion)
		} else {
			out = append(out, w.Status)
		}
	}
	return out
}

// TestFaultsNeverPassAndRecover: with Jira answering 503 or 401, or GitHub
// answering 502 or a secondary rate limit, the check is never success; it
// becomes correct once the fault clears, through the queue's retries.
func TestFaultsNeverPassAndRecover(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	prRoute := ghfake.MatchRoute("GET /repos/{owner}/{repo}/pulls/{pull_number}")
	cases := []struct {
		name   string
		inject func()
		// want is the exact sequence written on the head.
		want []string
	}{
		{"jira 503", func() { a.jf.FailNext(2, http.StatusServiceUnavailable) }, []string{"in_progress", "success"}},
		{"jira 401", func() { a.jf.FailNext(2, http.StatusUnauthorized) }, []string{"in_progress", "success"}},
		{"github 502", func() {
			a.gh.FailNext(prRoute, 2, http.StatusBadGateway, nil, `{"message":"Server Error"}`)
		}, []string{"success"}},
		{"github secondary rate limit", func() {
			a.gh.FailNext(prRoute, 1, http.StatusForbidden, http.Header{"Retry-After": {"1"}}, ghfake.SecondaryRateLimitBody)
		}, []string{"success"}},
	}
	for i, tc := range cases {
		number := 20 + i
		sha := strings.Repeat(fmt.Sprint(i+2), 40)
		a.compliantPR(number, sha)
		tc.inject()
		a.github(t, "pull_request", strings.ReplaceAll(prEvent("opened", number), sha1, sha))
		eventually(t, tc.name+": a correct check after the fault", 45*time.Second, func() bool {
			got := a.conclusionsOn(sha)
			return len(got) > 0 && got[len(got)-1] == "success"
		})
		if diff := cmp.Diff(tc.want, a.conclusionsOn(sha)); diff != "" {
			t.Errorf("%s: writes on the head (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestInvalidPolicyFailsTheCheck: a repository policy that does not parse,
// or that loosens the baseline, fails the check and quotes file and line.
func TestInvalidPolicyFailsTheCheck(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	cases := []struct {
		repo, policy string
		want         []string
	}{
		{"web", "version: 1\nreview:\n  reqired: 2\n", []string{".github/changegate.yml@main:3:", `"review.reqired"`}},
		{"cli", "version: 1\nreview:\n  keep_on_push: true\n", []string{"loosens the baseline", "keep_on_push"}},
	}
	for i, tc := range cases {
		a.gh.AddRepo(42, ghfake.Repo{ID: int64(2000 + i), Owner: "acme", Name: tc.repo})
		a.gh.SetContent("acme", tc.repo, "main", ".github/changegate.yml", []byte(tc.policy))
		sha := strings.Repeat(fmt.Sprint(7+i), 40)
		a.gh.AddPullRequest("acme", tc.repo, ghfake.PullRequest{Number: 1, Title: "PAY-123 x", Author: "alice", HeadSHA: sha, BaseRef: "main"})
		body := strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 1), sha1, sha), `"full_name":"acme/api"`, `"full_name":"acme/`+tc.repo+`"`)
		a.github(t, "pull_request", body)
		var w ghfake.CheckRunWrite
		eventually(t, tc.repo+" check", 30*time.Second, func() bool {
			ws := a.gh.CheckRunWrites("acme", tc.repo)
			if len(ws) == 0 {
				return false
			}
			w = ws[len(ws)-1]
			return true
		})
		if w.Conclusion != "failure" || !strings.HasPrefix(w.Title, "Invalid policy") {
			t.Errorf("%s: %s %q", tc.repo, w.Conclusion, w.Title)
		}
		for _, s := range tc.want {
			if !strings.Contains(w.Summary, s) {
				t.Errorf("%s: summary lacks %q:\n%s", tc.repo, s, w.Summary)
			}
		}
		if strings.Contains(w.Summary, ".github/changegate.yml@main: .github/changegate.yml@main") {
			t.Errorf("%s: the summary names the file twice:\n%s", tc.repo, w.Summary)
		}
	}
}

// TestMergesAreArchived: a compliant merge gives a standard record, a merge
// the decision did not allow a bypass record with an open exception, an
// emergency merge an emergency record with its due date, and redelivering
// a merge archives nothing more.
func TestMergesAreArchived(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	db := openReadOnly(t, a.dataDir)

	compliant := strings.Repeat("c", 40)
	a.compliantPR(31, compliant)
	bypass := strings.Repeat("d", 40)
	a.gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 32, Title: "no ticket", Author: "alice", HeadSHA: bypass, BaseRef: "main"})
	a.gh.AddCommit("acme", "api", 32, ghfake.Commit{SHA: bypass, Message: "x", Author: ghfake.Person{Login: "alice"}})
	emergency := strings.Repeat("e", 40)
	a.gh.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 33, Title: "PAY-123 hotfix", Author: "alice", HeadSHA: emergency,
		BaseRef: "main", Labels: []string{"emergency"}})
	a.gh.AddCommit("acme", "api", 33, ghfake.Commit{SHA: emergency, Message: "x", Author: ghfake.Person{Login: "alice"}})
	a.gh.AddReview("acme", "api", 33, ghfake.Review{User: "bob", State: "APPROVED", CommitID: emergency})

	for _, n := range []int{31, 32, 33} {
		merge := fmt.Sprintf("%040d", n)
		a.gh.MergePullRequest("acme", "api", n, merge, "alice")
		closed := strings.ReplaceAll(prEvent("closed", n), sha1, merge)
		a.github(t, "pull_request", closed)
		a.github(t, "pull_request", closed) // a second delivery of the same merge
	}
	eventually(t, "three records", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) == 3
	})
	type row struct{ Type, Compliant, Exception, State, PR, SHA string }
	rows, err := db.Query(`SELECT change_type, compliant, exception, exception_state, pr, sha FROM ledger_records ORDER BY pr`)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.Type, &r.Compliant, &r.Exception, &r.State, &r.PR, &r.SHA); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	rows.Close()
	want := []row{
		{"standard", "true", "", "", "31", fmt.Sprintf("%040d", 31)},
		{"bypass", "false", "bypass", "open", "32", fmt.Sprintf("%040d", 32)},
		{"emergency", "true", "emergency", "open", "33", fmt.Sprintf("%040d", 33)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ledger index (-want +got):\n%s", diff)
	}
	// Every record is on disk signed, and so is a checkpoint of all three
	// (merges archived at once share a bundle and a checkpoint).
	if recs := storedRecords(t, a.dataDir); len(recs) != 3 {
		t.Errorf("%d records stored, want 3", len(recs))
	}
	if _, err := os.Stat(filepath.Join(a.dataDir, "evidence", "checkpoints", "000000000003.note")); err != nil {
		t.Errorf("checkpoint of the 3 records: %v", err)
	}
}

func TestAuditVerifyAndTamper(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	db := openReadOnly(t, a.dataDir)
	for i, n := range []int{41, 42, 43} {
		sha := strings.Repeat(fmt.Sprint(i+4), 40)
		a.compliantPR(n, sha)
		a.gh.MergePullRequest("acme", "api", n, fmt.Sprintf("%040d", n), "alice")
		a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", n), sha1, fmt.Sprintf("%040d", n)))
	}
	eventually(t, "three records", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) == 3
	})
	audit := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"audit"}, args...), envMap(nil), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := audit("pubkey", "--data-dir", a.dataDir)
	if code != 0 || !strings.Contains(out, "BEGIN PUBLIC KEY") || !strings.Contains(out, "fingerprint: SHA256:") {
		t.Fatalf("pubkey: %d %s %s", code, out, errOut)
	}
	pubFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pubFile, []byte(out[:strings.Index(out, "fingerprint")]), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = audit("verify", "--data-dir", a.dataDir, "--pubkey", pubFile)
	if code != 0 || !strings.HasPrefix(out, "ok: 3 records") {
		t.Fatalf("verify: %d %q %q", code, out, errOut)
	}
	// One byte flipped in the second record.
	recs := storedRecords(t, a.dataDir)
	if len(recs) != 3 {
		t.Fatalf("%d records stored, want 3", len(recs))
	}
	r := recs[1]
	b, err := os.ReadFile(r.file)
	if err != nil {
		t.Fatal(err)
	}
	b[(r.start+r.end)/2] ^= 0x01
	if err := os.Chmod(r.file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = audit("verify", "--data-dir", a.dataDir, "--pubkey", pubFile)
	if code == 0 || !strings.Contains(errOut, "record 1") {
		t.Errorf("tampered ledger: exit %d, stderr %q; want non-zero naming record 1", code, errOut)
	}
}

// TestDeploymentsAndDirectPushesAreArchived: a production deployment of a
// merged change links to its change record; a deployment of a commit with
// no record, and a push to main outside any pull request, are exceptions.
func TestDeploymentsAndDirectPushesAreArchived(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	db := openReadOnly(t, a.dataDir)
	head, merge := strings.Repeat("f", 40), fmt.Sprintf("%040d", 51)
	a.compliantPR(51, head)
	a.gh.MergePullRequest("acme", "api", 51, merge, "alice")
	a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", 51), sha1, merge))
	eventually(t, "the merge record", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE change_type = 'standard'`) == 1
	})

	deploy := func(sha, env string) {
		dep := a.gh.AddDeployment("acme", "api", ghfake.Deployment{SHA: sha, Environment: env})
		a.gh.AddDeploymentStatus("acme", "api", dep.ID, ghfake.DeploymentStatus{State: "success"})
		a.github(t, "deployment_status", fmt.Sprintf(`{"action":"created","deployment_status":{"state":"success"},`+
			`"deployment":{"id":%d,"sha":%q,"environment":%q},%s}`, dep.ID, sha, env, repoJSON))
	}
	deploy(merge, "production")
	rogue := strings.Repeat("9", 40)
	deploy(rogue, "production")
	deploy(strings.Repeat("8", 40), "staging") // not production: no record

	// A push to main: the merge commit is covered by its pull request; the
	// other commit was pushed directly.
	direct := strings.Repeat("7", 40)
	a.github(t, "push", fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q,"commits":[{"id":%q},{"id":%q}],`+
		`"pusher":{"name":"mallory"},"repository":{"full_name":"acme/api","default_branch":"main"},"installation":{"id":42}}`,
		merge, direct, merge, direct))
	a.github(t, "push", fmt.Sprintf(`{"ref":"refs/heads/main","before":"%040d","after":%q,"commits":[{"id":%q}],`+
		`"pusher":{"name":"alice"},"repository":{"full_name":"acme/api","default_branch":"main"},"installation":{"id":42}}`,
		0, merge, merge)) // covered: no record

	eventually(t, "four records", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) == 4
	})
	time.Sleep(500 * time.Millisecond) // nothing else may follow
	type row struct{ Type, SHA, Exception, Compliant string }
	rows, err := db.Query(`SELECT change_type, sha, exception, compliant FROM ledger_records ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]row{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.Type, &r.SHA, &r.Exception, &r.Compliant); err != nil {
			t.Fatal(err)
		}
		got[r.Type+" "+r.SHA[:4]] = r
	}
	rows.Close()
	want := map[string]row{
		"standard 0000":    {"standard", merge, "", "true"},
		"deployment 0000":  {"deployment", merge, "", "true"},
		"deployment 9999":  {"deployment", rogue, "bypass", "false"},
		"direct_push 7777": {"direct_push", direct, "direct_push", "false"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	// The deployment record links the change record of the commit it shipped.
	pub, err := readPublicKey("", a.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var standardID string
	var links []string
	for _, r := range storedRecords(t, a.dataDir) {
		rec, err := evidence.VerifyEnvelope(r.env, pub)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case rec.ChangeType == evidence.Standard:
			standardID = rec.ID
		case rec.ChangeType == evidence.Deployment && rec.Subject.SHA() == merge:
			links = rec.Links
		}
	}
	if standardID == "" || !slices.Equal(links, []string{standardID}) {
		t.Errorf("deployment links %v, want the change record %q", links, standardID)
	}
	var code int
	var out bytes.Buffer
	code = run(t.Context(), []string{"audit", "verify", "--data-dir", a.dataDir}, envMap(nil), &out, &out)
	if code != 0 {
		t.Errorf("verify: %s", out.String())
	}
}

// TestEmergencyExceptionsCloseInTimeOrStayOpen: a manager's approval after
// an emergency merge closes the exception with a new record when it comes
// within the window; a late one leaves the exception open.
func TestEmergencyExceptionsCloseInTimeOrStayOpen(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	db := openReadOnly(t, a.dataDir)
	emergencyPR := func(n int, mergedAt time.Time) (head, merge string) {
		head, merge = fmt.Sprintf("%040x", 0xe000+n), fmt.Sprintf("%040x", 0xf000+n)
		pr := ghfake.PullRequest{Number: n, Title: "PAY-123 hotfix", Author: "alice", HeadSHA: head, BaseRef: "main",
			Labels: []string{"emergency"}}
		if !mergedAt.IsZero() {
			pr.State, pr.Merged, pr.MergeCommitSHA, pr.MergedBy, pr.MergedAt, pr.ClosedAt = "closed", true, merge, "alice", mergedAt, mergedAt
		}
		a.gh.AddPullRequest("acme", "api", pr)
		a.gh.AddCommit("acme", "api", n, ghfake.Commit{SHA: head, Message: "x", Author: ghfake.Person{Login: "alice"}})
		a.gh.AddReview("acme", "api", n, ghfake.Review{User: "bob", State: "APPROVED", CommitID: head})
		if mergedAt.IsZero() {
			a.gh.MergePullRequest("acme", "api", n, merge, "alice")
		}
		a.github(t, "pull_request", strings.ReplaceAll(prEvent("closed", n), sha1, merge))
		return head, merge
	}
	inTimeHead, inTime := emergencyPR(61, time.Time{})
	lateHead, late := emergencyPR(62, time.Now().Add(-72*time.Hour))
	eventually(t, "two emergency records", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE change_type = 'emergency'`) == 2
	})
	// The manager approves both after the fact.
	for n, head := range map[int]string{61: inTimeHead, 62: lateHead} {
		a.gh.AddReview("acme", "api", n, ghfake.Review{User: "carol", State: "APPROVED", CommitID: head})
		a.github(t, "pull_request_review", reviewEvent(n))
	}
	eventually(t, "the closing record", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE closes != ''`) == 1
	})
	time.Sleep(500 * time.Millisecond)
	state := func(sha, closes string) string {
		var s string
		if err := db.QueryRow(`SELECT exception_state FROM ledger_records WHERE sha = ? AND (closes != '') = ?`, sha, closes != "").Scan(&s); err != nil {
			t.Fatalf("%s: %v", sha, err)
		}
		return s
	}
	if got := state(inTime, ""); got != "closed" {
		t.Errorf("approved in time: exception %q, want closed", got)
	}
	if got := state(inTime, "x"); got != "closing" {
		t.Errorf("the closing record: %q, want closing", got)
	}
	if got := state(late, ""); got != "open" {
		t.Errorf("approved late: exception %q, want open", got)
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`); n != 3 {
		t.Errorf("%d records, want 2 emergencies and 1 closing", n)
	}
	var out bytes.Buffer
	if code := run(t.Context(), []string{"audit", "verify", "--data-dir", a.dataDir}, envMap(nil), &out, &out); code != 0 {
		t.Errorf("verify: %s", out.String())
	}
}

// storedRecord is one record in the evidence directory: its envelope and
// where it sits in its bundle file.
type storedRecord struct {
	seq        uint64
	env        []byte
	file       string
	start, end int // byte offsets of the envelope in file
}

// storedRecords reads every record bundle of a data dir, in log order.
func storedRecords(t *testing.T, dataDir string) []storedRecord {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "evidence", "records", "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []storedRecord
	for _, f := range files {
		first, last, err := ledger.ParseBundleKey(ledger.RecordPrefix + filepath.Base(f))
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		start := 0
		for i, env := range ledger.SplitBundle(data) {
			out = append(out, storedRecord{seq: first + uint64(i), env: env, file: f, start: start, end: start + len(env)})
			start += len(env) + 1
		}
		if n := uint64(len(out)); n == 0 || out[n-1].seq != last {
			t.Fatalf("%s does not hold the records its name says", f)
		}
	}
	return out
}

// TestInvalidPolicyKeepsProductionScope: with an invalid policy on the
// default branch, its baseline says what production is. A push to a
// feature branch and a staging deployment write no record; a direct push
// to the default branch writes one that quotes the policy error.
func TestInvalidPolicyKeepsProductionScope(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.gh.AddRepo(42, ghfake.Repo{ID: 3001, Owner: "acme", Name: "gitops"})
	a.gh.SetContent("acme", "gitops", "main", ".github/changegate.yml", []byte("version: 1\nreview:\n  reqired: 2\n"))
	db := openReadOnly(t, a.dataDir)
	const repo = `"repository":{"full_name":"acme/gitops","default_branch":"main"},"installation":{"id":42}`
	push := func(branch, sha string) {
		a.github(t, "push", fmt.Sprintf(`{"ref":"refs/heads/%s","before":"%040d","after":%q,"commits":[{"id":%q}],"pusher":{"name":"mallory"},%s}`,
			branch, 0, sha, sha, repo))
	}
	push("feature/x", strings.Repeat("1", 40))
	staging := strings.Repeat("2", 40)
	dep := a.gh.AddDeployment("acme", "gitops", ghfake.Deployment{SHA: staging, Environment: "staging"})
	a.gh.AddDeploymentStatus("acme", "gitops", dep.ID, ghfake.DeploymentStatus{State: "success"})
	a.github(t, "deployment_status", fmt.Sprintf(`{"action":"created","deployment_status":{"state":"success"},`+
		`"deployment":{"id":%d,"sha":%q,"environment":"staging"},%s}`, dep.ID, staging, repo))
	direct := strings.Repeat("3", 40)
	push("main", direct)

	eventually(t, "the direct push's record", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`) >= 1
	})
	time.Sleep(500 * time.Millisecond) // nothing else may follow
	if n := queryInt(t, db, `SELECT COUNT(*) FROM ledger_records`); n != 1 {
		t.Fatalf("%d records, want only the direct push to main", n)
	}
	rec := a.records(t)[0]
	if rec.ChangeType != evidence.DirectPush || rec.Subject.SHA() != direct {
		t.Errorf("record: %s of %s, want the direct push of %s", rec.ChangeType, rec.Subject.SHA(), direct)
	}
	if !strings.Contains(rec.Policy.Invalid, ".github/changegate.yml@main:3:") || !strings.Contains(rec.Policy.Invalid, "review.reqired") || rec.Policy.Digest == "" {
		t.Errorf("record policy %+v: want the baseline's digest and the quoted error", rec.Policy)
	}
}

// TestGitOpsPolicy: over the built-in default, a GitOps repository says
// what production is. A pull request touching only staging is not a
// production change; one that edits only the policy file gets the full
// check.
func TestGitOpsPolicy(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.gh.AddRepo(42, ghfake.Repo{ID: 3101, Owner: "acme", Name: "deploys"})
	a.gh.SetContent("acme", "deploys", "main", ".github/changegate.yml", []byte("version: 1\nproduction:\n  paths: [overlays/production/**]\n"))
	const repo = `"repository":{"full_name":"acme/deploys","name":"deploys","owner":{"login":"acme"}},"installation":{"id":42}`
	open := func(n int, sha, file string) {
		a.gh.AddPullRequest("acme", "deploys", ghfake.PullRequest{Number: n, Title: "PAY-123 change", Author: "alice", HeadSHA: sha, BaseRef: "main"})
		a.gh.AddCommit("acme", "deploys", n, ghfake.Commit{SHA: sha, Message: "x", Author: ghfake.Person{Login: "alice"}})
		a.gh.AddFile("acme", "deploys", n, ghfake.File{Filename: file})
		body := strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", n), sha1, sha), repoJSON, repo)
		a.github(t, "pull_request", body)
	}
	staging, policyEdit := strings.Repeat("4", 40), strings.Repeat("5", 40)
	open(1, staging, "overlays/staging/app.yaml")
	open(2, policyEdit, ".github/changegate.yml")
	latest := func(sha string) ghfake.CheckRunWrite {
		var w ghfake.CheckRunWrite
		for _, x := range a.gh.CheckRunWrites("acme", "deploys") {
			if x.HeadSHA == sha {
				w = x
			}
		}
		return w
	}
	eventually(t, "both checks", 30*time.Second, func() bool {
		return latest(staging).Conclusion != "" && latest(policyEdit).Title != ""
	})
	if w := latest(staging); w.Conclusion != "neutral" {
		t.Errorf("a staging-only change: %s %q", w.Conclusion, w.Title)
	}
	if w := latest(policyEdit); w.Conclusion == "neutral" || strings.HasPrefix(w.Title, "Invalid policy") {
		t.Errorf("a change to the policy file: %s %q", w.Conclusion, w.Title)
	}
}

// TestOrgBaselineIsCached: the organisation's baseline costs one GitHub
// call per organisation until a push to its .github repository, not one
// per evaluation.
func TestOrgBaselineIsCached(t *testing.T) {
	t.Parallel()
	a := startApp(t)
	a.jf.SetStatus("PAY-123", "Approved")
	orgReads := func() int {
		n := 0
		for _, c := range a.gh.Calls() {
			if c.Path == "/repos/acme/.github/contents/changegate.yml" {
				n++
			}
		}
		return n
	}
	for i, n := range []int{101, 102, 103} {
		sha := strings.Repeat(fmt.Sprint(i+1), 40)
		a.compliantPR(n, sha)
		a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, sha), `"number":51`, fmt.Sprintf(`"number":%d`, n)))
		eventually(t, fmt.Sprintf("the check of #%d", n), 30*time.Second, func() bool { return len(a.conclusionsOn(sha)) > 0 })
	}
	if got := orgReads(); got != 1 {
		t.Errorf("the organisation's baseline was read %d times for three evaluations, want once", got)
	}
	// The installation does not cover acme/.github: the check says whose
	// policy applied, and how to bring in the organisation's.
	if w := a.latest(t); !strings.Contains(w.Summary, "the App cannot read acme/.github") {
		t.Errorf("the check does not say the organisation's baseline cannot be read:\n%s", w.Summary)
	}
	if !strings.Contains(a.logs.String(), "the App cannot read the organisation's .github repository") {
		t.Error("no warning that the organisation's .github repository cannot be read")
	}
	a.github(t, "push", fmt.Sprintf(`{"ref":"refs/heads/main","before":"%040d","after":"%s","commits":[{"id":"%s"}],"pusher":{"name":"alice"},`+
		`"repository":{"full_name":"acme/.github","default_branch":"main"},"installation":{"id":42}}`, 0, strings.Repeat("e", 40), strings.Repeat("e", 40)))
	time.Sleep(500 * time.Millisecond)
	sha := strings.Repeat("9", 40)
	a.compliantPR(104, sha)
	a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, sha), `"number":51`, `"number":104`))
	eventually(t, "the check of #104", 30*time.Second, func() bool { return len(a.conclusionsOn(sha)) > 0 })
	if got := orgReads(); got != 2 {
		t.Errorf("after a push to acme/.github the baseline was read %d times in all, want twice", got)
	}
}

// TestDeliveriesWaitForCredentials: a pull request delivered to a server
// without App credentials is kept, and evaluated once a restart brings
// them.
func TestDeliveriesWaitForCredentials(t *testing.T) {
	t.Parallel()
	gh, jf := newFakes(t, "Approved")
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	bare := serveInProcess(t, map[string]string{"CHANGEGATE_WEBHOOK_SECRET": ghSecret, "CHANGEGATE_DATA_DIR": dataDir, "CHANGEGATE_LISTEN": "127.0.0.1:0"})
	sha := strings.Repeat("a", 40)
	a := &app{gh: gh, jf: jf, base: bare.base, dataDir: dataDir, client: &http.Client{Timeout: 10 * time.Second}, logs: bare.logs}
	a.compliantPR(61, sha)
	a.github(t, "pull_request", strings.ReplaceAll(prEvent("opened", 61), sha1, sha))
	eventually(t, "the job to wait", 30*time.Second, func() bool { return strings.Contains(bare.logs.String(), "job waits") })
	if code := bare.stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}

	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	second := serveInProcess(t, map[string]string{
		"CHANGEGATE_WEBHOOK_SECRET": ghSecret, "CHANGEGATE_DATA_DIR": dataDir, "CHANGEGATE_LISTEN": "127.0.0.1:0",
		"CHANGEGATE_GITHUB_APP_ID": itoa(gh.AppID()), "CHANGEGATE_GITHUB_PRIVATE_KEY_FILE": keyFile, "CHANGEGATE_GITHUB_API_URL": gh.URL(),
		"CHANGEGATE_JIRA_URL": jf.URL(), "CHANGEGATE_JIRA_USER": jf.User(), "CHANGEGATE_JIRA_TOKEN": jf.Token(),
	})
	defer func() {
		if t.Failed() {
			t.Log(second.logs.String())
		}
	}()
	eventually(t, "the check after the restart", 30*time.Second, func() bool { return len(a.conclusionsOn(sha)) > 0 })
}
