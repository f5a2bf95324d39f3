package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/ghfake"
	"github.com/changegate/changegate/internal/web"
)

// TestRedeliverySweep: GitHub's delivery log holds deliveries that
// succeeded, failed and were processed anyway, failed and were retried by
// hand, and failed too long ago. Exactly the one that failed and that
// changegate never received is redelivered, once, and processed.
func TestRedeliverySweep(t *testing.T) {
	t.Parallel()
	a := startAppWith(t, map[string]string{"CHANGEGATE_REDELIVERY_INTERVAL": "1s"})
	a.jf.SetStatus("PAY-123", "Approved")
	gh := a.gh
	gh.SetHookTarget(a.base+"/webhooks/github", []byte(ghSecret))
	head := strings.Repeat("9", 40)
	a.compliantPR(95, head)
	missed := []byte(strings.ReplaceAll(strings.ReplaceAll(prEvent("opened", 51), sha1, head), `"number":51`, `"number":95`))
	processed := []byte(strings.ReplaceAll(prEvent("opened", 7), sha1, strings.Repeat("8", 40)))
	// changegate acknowledged this one, though GitHub logged a timeout.
	if status, err := sendWebhook(t.Context(), a.client, a.base, []byte(ghSecret), "pull_request", "g-processed", processed); err != nil || status != http.StatusAccepted {
		t.Fatalf("deliver g-processed: %d %v", status, err)
	}
	now := time.Now()
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-old", Event: "pull_request", Action: "opened", StatusCode: 502, DeliveredAt: now.Add(-100 * time.Hour), Payload: missed})
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-retried", Event: "pull_request", Action: "opened", StatusCode: 502, DeliveredAt: now.Add(-2 * time.Hour), Payload: missed})
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-retried", Event: "pull_request", Action: "opened", StatusCode: 202, Redelivery: true, DeliveredAt: now.Add(-time.Hour), Payload: missed})
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-ok", Event: "pull_request", Action: "opened", StatusCode: 202, DeliveredAt: now.Add(-time.Hour), Payload: missed})
	gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-processed", Event: "pull_request", Action: "opened", StatusCode: 504, DeliveredAt: now.Add(-time.Hour), Payload: processed})
	lost := gh.AddHookDelivery(ghfake.HookDelivery{GUID: "g-lost", Event: "pull_request", Action: "opened", StatusCode: 0, DeliveredAt: now.Add(-time.Minute), Payload: missed})

	eventually(t, "the lost delivery redelivered and evaluated", 30*time.Second, func() bool {
		return len(a.conclusionsOn(head)) > 0
	})
	time.Sleep(3 * time.Second) // a few more sweeps
	if got := gh.Redeliveries(); !slices.Equal(got, []int64{lost.ID}) {
		t.Errorf("redelivered %v, want only g-lost (%d)", got, lost.ID)
	}
	_, metrics := getBody(t, a.base+"/metrics")
	mustContain(t, metrics, "changegate_redelivery_sweep_redelivered_total 1", "changegate_redelivery_sweep_missing_total 1")
}

// TestReconciliation: main's history holds a merge changegate saw, a
// direct push and a merge made while it was down (no webhook for either).
// Exactly the last two become unrecorded exceptions; later runs add
// nothing. An open pull request whose events were lost is evaluated.
func TestReconciliation(t *testing.T) {
	t.Parallel()
	a := startAppWith(t, map[string]string{"CHANGEGATE_RECONCILE_INTERVAL": "1s"})
	a.jf.SetStatus("PAY-123", "Approved")
	gh := a.gh
	db := openReadOnly(t, a.dataDir)
	// The first run sees an empty history: from then on, reconciliation.
	eventually(t, "the first reconciliation", 30*time.Second, func() bool { return strings.Contains(a.logs.String(), "reconciled every repository") })
	push := func(sha, who string) {
		date := time.Now()
		if sha[0] == '1' {
			date = date.Add(-100 * time.Hour) // before the window: not reconciled
		}
		gh.Push("acme", "api", "main", "", ghfake.GitCommit{SHA: sha, Message: "change " + sha[:4], Date: date,
			Author: ghfake.Person{Name: who, Email: who + "@example.com", Login: who}, Files: map[string][]byte{"src/" + sha[:4]: []byte(sha)}})
	}
	push(strings.Repeat("1", 40), "alice")
	// A merge changegate saw: its webhook archived it.
	seenHead, seenMerge := strings.Repeat("a", 40), strings.Repeat("2", 40)
	a.compliantPR(101, seenHead)
	gh.MergePullRequest("acme", "api", 101, seenMerge, "alice")
	a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("closed", 51), sha1, seenHead), `"number":51`, `"number":101`))
	eventually(t, "the seen merge's record", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE pr = '101'`) == 1
	})
	// On main only now: with no grace, a walk between the push and the
	// webhook would call the merge unrecorded (in production, the grace
	// covers that gap).
	push(seenMerge, "alice")
	// A direct push, and a merge while changegate was down: no webhooks.
	direct := strings.Repeat("3", 40)
	push(direct, "mallory")
	downHead, downMerge := strings.Repeat("b", 40), strings.Repeat("4", 40)
	a.compliantPR(102, downHead)
	gh.MergePullRequest("acme", "api", 102, downMerge, "alice")
	push(downMerge, "alice")

	// An open pull request whose opened event was lost.
	missedHead := strings.Repeat("c", 40)
	a.compliantPR(103, missedHead)

	eventually(t, "the open pull request evaluated", 30*time.Second, func() bool { return len(a.conclusionsOn(missedHead)) > 0 })
	eventually(t, "two unrecorded exceptions", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE exception = 'unrecorded'`) == 2
	})
	time.Sleep(3 * time.Second) // more runs
	if n := queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE change_type != 'control_config'`); n != 3 {
		t.Errorf("%d records, want the seen merge and two unrecorded changes", n)
	}
	got := map[string]string{}
	for _, rec := range a.records(t) {
		if rec.Exception != nil && rec.ChangeType != evidence.ControlConfig {
			got[rec.Subject.HeadSHA[:4]] = string(rec.ChangeType) + " " + rec.Exception.Kind + ": " + rec.Exception.Reason
		}
	}
	if s := got["3333"]; !strings.HasPrefix(s, "direct_push unrecorded: commit 3333333 (author mallory, committer mallory)") || !strings.Contains(s, "found by reconciliation") {
		t.Errorf("the direct push: %q", s)
	}
	if s := got["bbbb"]; !strings.HasPrefix(s, "standard unrecorded: merged with no webhook seen by changegate; found by reconciliation of main") {
		t.Errorf("the merge while down: %q (all: %v)", s, got)
	}
}

// TestReconcileCommand: `changegate reconcile` queues the runs for a
// server that holds the data dir and waits for them, and runs them itself
// when none does. A second run adds nothing; bad flags exit 2.
func TestReconcileCommand(t *testing.T) {
	t.Parallel()
	a := startAppWith(t, map[string]string{"CHANGEGATE_RECONCILE_INTERVAL": "0"})
	push := func(sha string) {
		a.gh.Push("acme", "api", "main", "", ghfake.GitCommit{SHA: sha, Author: ghfake.Person{Name: "Mallory", Email: "m@example.com", Login: "mallory"},
			Files: map[string][]byte{"src/" + sha[:4]: []byte(sha)}})
	}
	cli := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(t.Context(), append([]string{"reconcile"}, args...), envMap(a.env), &out, &out)
		return code, out.String()
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--repo", "nope"}, {"--repo", "acme/unknown"}} {
		if code, out := cli(bad...); code != 2 {
			t.Errorf("reconcile %v: exit %d, want 2: %s", bad, code, out)
		}
	}
	db := openReadOnly(t, a.dataDir)
	eventually(t, "the inventory", 30*time.Second, func() bool { return queryInt(t, db, `SELECT COUNT(*) FROM repositories`) > 0 })
	// The first run backfills what came before changegate watched.
	push(strings.Repeat("4", 40))
	if code, out := cli(); code != 0 || !strings.Contains(out, "backfilled: acme/api 4444444 (direct_push)") || !strings.Contains(out, "done: 0 unrecorded, 1 backfilled") {
		t.Fatalf("the first run: exit %d:\n%s", code, out)
	}
	push(strings.Repeat("5", 40))
	code, out := cli()
	if code != 0 || !strings.Contains(out, "queued 1 reconciliation run") || !strings.Contains(out, "unrecorded: acme/api 5555555 (direct_push)") || !strings.Contains(out, "done: 1 unrecorded, 0 backfilled") {
		t.Fatalf("with the server running: exit %d:\n%s", code, out)
	}
	if code, out := cli(); code != 0 || !strings.Contains(out, "done: 0 unrecorded, 0 backfilled") {
		t.Errorf("a second run: exit %d:\n%s", code, out)
	}
	a.stop()
	push(strings.Repeat("6", 40))
	a.gh.ResetCalls()
	code, out = cli()
	t.Logf("GitHub calls for a reconciliation run that finds one unrecorded commit: %s", callSummary(a.gh.Calls()))
	if code != 0 || !strings.Contains(out, "acme/api: main: 1 commits checked, 1 archived (6666666)") {
		t.Errorf("with no server: exit %d:\n%s", code, out)
	}
	var verify bytes.Buffer
	if code := run(t.Context(), []string{"audit", "verify", "--data-dir", a.dataDir}, envMap(nil), &verify, &verify); code != 0 || !strings.HasPrefix(verify.String(), "ok: 3 records") {
		t.Errorf("verify: %d %s", code, verify.String())
	}
	// A commit younger than the grace waits for the next walk: its webhook
	// may be on the way.
	push(strings.Repeat("7", 40))
	a.env["CHANGEGATE_RECONCILE_GRACE"] = "1h"
	if code, out := cli(); code != 0 || !strings.Contains(out, "0 commits checked, 0 archived") {
		t.Errorf("within the grace: exit %d:\n%s", code, out)
	}
}

// TestJiraWriteBack: with jira.write_back on, a merge and its production
// deployment each leave a remote link to their record's page and a
// verdict comment on the ticket. A Jira failure is retried, and the record
// stands either way.
func TestJiraWriteBack(t *testing.T) {
	t.Parallel()
	a := startAppWith(t, map[string]string{"CHANGEGATE_JIRA_WRITE_BACK": "true", "CHANGEGATE_PUBLIC_URL": "https://changegate.example"})
	a.jf.SetStatus("PAY-123", "Approved")
	a.jf.FailNextOn("/rest/api/2/issue/{key}/remotelink", 1, http.StatusServiceUnavailable)
	head, merge := strings.Repeat("a", 40), strings.Repeat("b", 40)
	a.compliantPR(111, head)
	a.gh.MergePullRequest("acme", "api", 111, merge, "alice")
	a.github(t, "pull_request", strings.ReplaceAll(strings.ReplaceAll(prEvent("closed", 51), sha1, head), `"number":51`, `"number":111`))
	eventually(t, "the merge's link on PAY-123", 30*time.Second, func() bool { return len(a.jf.RemoteLinks("PAY-123")) == 1 })
	recs := a.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	link := a.jf.RemoteLinks("PAY-123")[0]
	if link.URL != "https://changegate.example/audit/changes/"+recs[0].ID || link.GlobalID != "changegate:record:"+recs[0].ID {
		t.Errorf("link %+v, record %s", link, recs[0].ID)
	}
	dep := a.gh.AddDeployment("acme", "api", ghfake.Deployment{SHA: merge, Environment: "production"})
	a.gh.AddDeploymentStatus("acme", "api", dep.ID, ghfake.DeploymentStatus{State: "success"})
	a.github(t, "deployment_status", fmt.Sprintf(`{"action":"created","deployment_status":{"state":"success"},`+
		`"deployment":{"id":%d,"sha":%q,"environment":"production"},%s}`, dep.ID, merge, repoJSON))
	eventually(t, "the deployment's link", 30*time.Second, func() bool { return len(a.jf.RemoteLinks("PAY-123")) == 2 })
	eventually(t, "two comments", 30*time.Second, func() bool { return len(a.jf.Comments("PAY-123")) == 2 })
	comments := strings.Join(a.jf.Comments("PAY-123"), "\n")
	mustContain(t, comments, "changegate archived acme/api #111: standard, compliant", "deployment of bbbbbbb: deployment, compliant")
	failed := 0
	for _, c := range a.jf.Calls() {
		if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/remotelink") && c.Status == http.StatusServiceUnavailable {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("%d remote-link calls failed, want the one injected (then retried)", failed)
	}
}

// TestControlWatch: the watch sees the changegate check required from this
// App on main, then pinned to another App, then removed, then restored,
// and the production environment's protection rule; audit coverage shows
// each state and since when.
func TestControlWatch(t *testing.T) {
	t.Parallel()
	token, tokens := auditorTokens(t, "auditor")
	a := startAppWith(t, map[string]string{"CHANGEGATE_RECONCILE_INTERVAL": "1s", "CHANGEGATE_AUDITOR_TOKENS_FILE": tokens})
	gh := a.gh
	gh.SetRequiredChecks("acme", "api", "main", ghfake.RequiredCheck{Context: "changegate", IntegrationID: gh.AppID()})
	gh.SetProtectionRules("acme", "api", "production", gh.AppID())
	coverage := func() string {
		var out bytes.Buffer
		if code := run(t.Context(), []string{"audit", "coverage", "--data-dir", a.dataDir}, envMap(nil), &out, &out); code != 0 {
			t.Fatalf("coverage: exit %d: %s", code, out.String())
		}
		return out.String()
	}
	seen := func(what string, want ...string) {
		t.Helper()
		eventually(t, what, 30*time.Second, func() bool {
			c := coverage()
			for _, w := range want {
				if !strings.Contains(c, w) {
					return false
				}
			}
			return true
		})
	}
	seen("both enforced", "branch:main", "yes", "a rule requires the changegate check from this App", "environment:production")
	gh.SetRequiredChecks("acme", "api", "main", ghfake.RequiredCheck{Context: "changegate", IntegrationID: 999})
	seen("the check pinned to another App", "NO", "required from App 999, not from this App")
	gh.SetRequiredChecks("acme", "api", "main")
	seen("the check removed", "no rule in force requires the changegate check")
	gh.SetRequiredChecks("acme", "api", "main", ghfake.RequiredCheck{Context: "changegate", IntegrationID: gh.AppID()})
	seen("the check restored", "a rule requires the changegate check from this App")
	// Without administration, GitHub hides a ruleset's bypass list: the
	// state says what could not be seen.
	gh.SetBypassActors("acme", "api", ghfake.BypassActor{Type: "User", ID: 42, Mode: "always"})
	seen("the bypass list hidden", "the bypass list of ruleset 1 is not visible to the App")
	if !strings.Contains(a.logs.String(), `"msg":"changegate enforcement"`) {
		t.Error("no log line for the enforcement changes")
	}
	// The ledger holds each change: both first seen enforced, the loss
	// (an open control_off exception, closed by the restore).
	db := openReadOnly(t, a.dataDir)
	eventually(t, "four control records", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE change_type = 'control_config'`) >= 4
	})
	if n := queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE exception = 'control_off' AND closes = '' AND exception_state = 'closed'`); n != 1 {
		t.Errorf("%d closed losses of enforcement, want 1", n)
	}
	var loss *evidence.Record
	for _, r := range a.records(t) {
		if r.Exception != nil && r.Exception.Kind == evidence.ExceptionControlOff && r.Exception.Closes == "" {
			loss = r
		}
	}
	if loss == nil || loss.Control == nil || loss.Control.Target != "branch:main" || loss.Control.WasEnforced == nil || !*loss.Control.WasEnforced ||
		!strings.Contains(loss.Control.Detail, "App 999") {
		t.Errorf("the loss record: %+v", loss)
	}
	var verify bytes.Buffer
	if code := run(t.Context(), []string{"audit", "verify", "--data-dir", a.dataDir}, envMap(nil), &verify, &verify); code != 0 {
		t.Errorf("verify: %s", verify.String())
	}
	t.Logf("audit coverage:\n%s", coverage())
	// The same, through the audit API and its UI page.
	req, _ := http.NewRequest(http.MethodGet, a.base+"/api/v1/coverage", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var api struct{ Targets []web.Coverage }
	err = json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if err != nil || len(api.Targets) != 2 || api.Targets[0].Target != "branch:main" || !api.Targets[0].Enforced {
		t.Errorf("GET /api/v1/coverage: %v %+v", err, api)
	}
	page := uiPage(t, a.base, token, "/audit/coverage")
	mustContain(t, page, "2</strong> enforced", "environment:production", "a rule requires the changegate check from this App")

	// Without a rule, classic branch protection counts where the App may
	// read it; where it may not, the state says so.
	gh.SetRequiredChecks("acme", "api", "main")
	seen("classic protection unreadable", "classic branch protection cannot be read: the App needs administration: read")
	gh.SetClassicProtection("acme", "api", "main", ghfake.RequiredCheck{Context: "changegate", IntegrationID: gh.AppID()})
	seen("classic protection read", "classic branch protection requires the changegate check from this App")
	// Whoever may merge past the check is a loss of enforcement:
	// administrators left out of classic protection, or a ruleset's
	// bypass list, which the App sees now that it may administer.
	gh.SetClassicAdminsExempt("acme", "api", "main", true)
	seen("administrators exempt", "NO", "these may merge without it: repository administrators")
	gh.SetClassicAdminsExempt("acme", "api", "main", false)
	gh.SetRequiredChecks("acme", "api", "main", ghfake.RequiredCheck{Context: "changegate", IntegrationID: gh.AppID()})
	seen("a user on the bypass list", "these may merge without it: User 42 (always)")
	gh.SetBypassActors("acme", "api")
	seen("the bypass list emptied", "yes", "a rule requires the changegate check from this App (")
	eventually(t, "three losses, each closed", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE exception = 'control_off' AND closes = '' AND exception_state = 'closed'`) == 3 &&
			queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE exception = 'control_off' AND closes = '' AND exception_state = 'open'`) == 0
	})
	gh.ResetCalls()
	eventually(t, "one more run", 30*time.Second, func() bool {
		return strings.Count(a.logs.String(), "reconciled every repository") > 0 && len(gh.Calls()) > 0
	})
	time.Sleep(500 * time.Millisecond)
	t.Logf("GitHub calls of one periodic run (reconciliation and control watch of one repository): %s", callSummary(gh.Calls()))
}

// uiPage signs in to the audit UI with token and returns a page.
func uiPage(t *testing.T, base, token, path string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, base+"/audit/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, base+path, nil)
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	page, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(page.Body)
	if page.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", path, page.Status)
	}
	return b.String()
}

// TestBackfillOnInstall: a repository the App gains is walked at once,
// in the transaction that adds it to the inventory: what it merged and
// pushed before changegate watched is archived, marked backfilled, with
// no command run and no wait for the periodic walk.
func TestBackfillOnInstall(t *testing.T) {
	t.Parallel()
	a := startAppWith(t, map[string]string{"CHANGEGATE_RECONCILE_INTERVAL": "1h"})
	gh := a.gh
	eventually(t, "the start-up reconciliation", 30*time.Second, func() bool { return strings.Contains(a.logs.String(), "reconciled every repository") })
	gh.AddRepo(42, ghfake.Repo{ID: 1002, Owner: "acme", Name: "web"})
	gh.SetContent("acme", "web", "main", ".github/changegate.yml", []byte(repoPolicy))
	before := strings.Repeat("8", 40)
	gh.Push("acme", "web", "main", "", ghfake.GitCommit{SHA: before, Message: "before the install", Date: time.Now().Add(-48 * time.Hour),
		Author: ghfake.Person{Name: "Mallory", Email: "m@example.com", Login: "mallory"}, Files: map[string][]byte{"src/x": []byte("x")}})
	a.github(t, "installation_repositories", string(repoAddedBody(42, 1002, "acme/web")))
	db := openReadOnly(t, a.dataDir)
	eventually(t, "the backfilled push", 30*time.Second, func() bool {
		return queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE sha = ? AND json_extract(summary, '$.backfilled') = 1`, before) == 1
	})
	if n := queryInt(t, db, `SELECT COUNT(*) FROM river_job WHERE kind = 'reconcile' AND json_extract(args, '$.reason') = 'installation_repositories.added'`); n != 1 {
		t.Errorf("%d walks queued by the installation, want 1", n)
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM ledger_records WHERE exception = 'unrecorded'`); n != 0 {
		t.Errorf("%d unrecorded exceptions: a change before the install is backfilled, not unrecorded", n)
	}
}
