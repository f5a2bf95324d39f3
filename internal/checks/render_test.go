package checks_test

import (
	"flag"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/checks"
	"github.com/changegate/changegate/internal/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.md from the current output")

const headSHA = "3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345"

func subject() change.Subject {
	return change.Subject{
		Installation: 7,
		Repo:         change.Repo{Owner: "acme", Name: "payments"},
		Number:       42,
		BaseRef:      "main",
		HeadRef:      "PAY-123-retry-refunds",
		HeadSHA:      headSHA,
	}
}

const digest = "sha256:9b74c9897bac770ffc029102a200c5de9c5c3a3e0a9d5f1d8f2b6c1e0e3d4a5b"

var (
	ticketPass = change.ControlResult{
		Control: change.ControlTicket, Result: change.Pass,
		Evidence: []change.Evidence{{Kind: "ticket", Ref: "PAY-123", Detail: "Story, In Progress: Retry failed refunds", URL: "https://acme.atlassian.net/browse/PAY-123"}},
	}
	reviewPass = change.ControlResult{
		Control: change.ControlPeerReview, Result: change.Pass,
		Evidence: []change.Evidence{{Kind: "review", Ref: "bob", Detail: "approved 3f2c9a1", URL: "https://github.com/acme/payments/pull/42#pullrequestreview-1"}},
	}
	stagingPass = change.ControlResult{
		Control: change.ControlStaging, Result: change.Pass,
		Evidence: []change.Evidence{{Kind: "deployment", Ref: "staging", Detail: "success on 3f2c9a1", URL: "https://github.com/acme/payments/deployments/staging"}},
	}
	managerPass = change.ControlResult{
		Control: change.ControlManagerApproval, Result: change.Pass,
		Evidence: []change.Evidence{{Kind: "team", Ref: "carol", Detail: "acme/payments-managers, approved 3f2c9a1", URL: "https://github.com/acme/payments/pull/42#pullrequestreview-2"}},
	}
	managerFail = change.ControlResult{
		Control: change.ControlManagerApproval, Result: change.Fail,
		Reasons: []string{"No approving review on 3f2c9a1 from a member of acme/payments-managers.", "dave approved an older commit (a1b2c3d); approvals on older commits do not count."},
		Fix:     "Ask a member of acme/payments-managers to approve the current head",
	}
	ticketFail = change.ControlResult{
		Control: change.ControlTicket, Result: change.Fail,
		Reasons: []string{"No Jira key in the title, head branch or body."},
		Fix:     "Add the Jira key (e.g. PAY-123) to the pull request title",
	}
	stagingFail = change.ControlResult{
		Control: change.ControlStaging, Result: change.Fail,
		Reasons: []string{"No successful deployment of 3f2c9a1 to staging, and no check named deploy-staging."},
		Fix:     "Deploy 3f2c9a1 to staging",
	}
	ticketPending = change.ControlResult{
		Control: change.ControlTicket, Result: change.Pending,
		Reasons:  []string{"Jira unreachable (503 Service Unavailable) while reading PAY-123"},
		Evidence: []change.Evidence{{Kind: "ticket", Ref: "PAY-123", Detail: "not read"}},
	}
	managerDue = change.ControlResult{
		Control: change.ControlManagerApproval, Result: change.Pending,
		Reasons: []string{"Emergency change: a manager's approval is owed after the fact."},
		Fix:     "A member of acme/payments-managers approves the pull request",
	}
	stagingSkipped = change.ControlResult{
		Control: change.ControlStaging, Result: change.Pending,
		Reasons: []string{"Not required for an emergency change; no staging run recorded."},
	}
)

func decision(o change.Outcome, cs ...change.ControlResult) change.Decision {
	return change.Decision{Outcome: o, Controls: cs, PolicyDigest: digest, PolicySource: "acme/payments .github/changegate.yml@main"}
}

func renderCases() map[string]change.Decision {
	emergency := decision(change.Compliant, ticketPass, reviewPass, stagingSkipped, managerDue)
	emergency.Emergency = true
	notProd := decision(change.NotProduction)
	notProd.Reason = "base branch feature/x is not a production branch (main)"
	exempt := decision(change.Exempt)
	exempt.Reason = "author dependabot[bot] is exempt (exempt.authors)"
	invalid := change.Decision{
		Outcome:      change.InvalidPolicy,
		Reason:       ".github/changegate.yml:12:3: unknown key \"reveiw\" (did you mean \"review\"?)",
		PolicySource: ".github/changegate.yml",
	}
	malicious := decision(change.NonCompliant,
		change.ControlResult{
			Control: change.ControlTicket, Result: change.Pass,
			Evidence: []change.Evidence{{
				Kind: "ticket", Ref: "PAY-9|x",
				Detail: "Done: Fix | ![img](https://evil.example/x.png) [click](javascript:alert(1)) <script>alert(1)</script> **bold** $x$\n| injected | row |",
				URL:    "javascript:alert(document.cookie)",
			}},
		},
		reviewPass, stagingPass,
		change.ControlResult{
			Control: change.ControlManagerApproval, Result: change.Fail,
			Reasons: []string{"- # heading from [ticket](javascript:alert(1)) see https://evil.example and www.evil.example", "1. `code` ~~strike~~ &lt; \\| back"},
			Fix:     "Ask [admin](https://evil.example) | to approve",
			Evidence: []change.Evidence{{
				Kind: "team", Ref: "mallory](https://evil.example)", Detail: "x", URL: "https://example.com/a b)(",
			}},
		},
	)
	return map[string]change.Decision{
		"compliant":         decision(change.Compliant, ticketPass, reviewPass, stagingPass, managerPass),
		"missing_manager":   decision(change.NonCompliant, ticketPass, reviewPass, stagingPass, managerFail),
		"several_missing":   decision(change.NonCompliant, ticketFail, reviewPass, stagingFail, managerPass),
		"undecided_jira":    decision(change.Undecided, ticketPending, reviewPass, stagingPass, managerPass),
		"not_production":    notProd,
		"exempt":            exempt,
		"invalid_policy":    invalid,
		"emergency":         emergency,
		"malicious_ticket":  malicious,
		"ignored_approvals": ignoredApprovalsDecision(),
	}
}

// ignoredApprovalsDecision is the evaluator's decision on a pull request
// whose approvals mostly do not count: by the author, a committer, a
// co-author, a bot, a login in review.ignore, on an older commit, and by
// someone who is not a manager.
func ignoredApprovalsDecision() change.Decision {
	const head, old = "3f2c9a1e0d4b5c6a7f8e9d0c1b2a3f4e5d6c7b8a", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
	p := policy.Defaults()
	p.Manager.Teams = []string{"acme/payments-managers"}
	p.Review.Ignore = []string{"ci-robot"}
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	approve := func(user, sha string, id int64) change.Review {
		return change.Review{ID: id, User: user, State: change.ReviewApproved, CommitID: sha, SubmittedAt: at.Add(time.Duration(id) * time.Minute)}
	}
	f := &change.Facts{
		Subject: change.Subject{Repo: change.Repo{Owner: "acme", Name: "payments"}, Number: 42, BaseRef: "main", HeadSHA: head},
		PR:      change.PullRequest{Number: 42, Author: "alice", BaseRef: "main", HeadSHA: head, DefaultBranch: "main", Title: "PAY-123 Round totals"},
		Commits: []change.Commit{
			{SHA: old, Author: change.Person{Login: "alice"}, Committer: change.Person{Login: "erin"}},
			{SHA: head, Author: change.Person{Login: "alice"}, Committer: change.Person{Login: "alice"}, CoAuthors: []change.Person{{Login: "carol"}}},
		},
		Reviews: []change.Review{approve("alice", head, 1), approve("erin", head, 2), approve("carol", head, 3),
			approve("renovate[bot]", head, 4), approve("ci-robot", head, 5), approve("dave", old, 6), approve("bob", head, 7)},
		Memberships: []change.Membership{{Team: "acme/payments-managers", User: "dave", Active: true}},
		Tickets:     []change.TicketLookup{{Key: "PAY-123", Result: change.LookupFound, Ticket: &change.Ticket{Key: "PAY-123", Project: "PAY", Type: "Story", Status: "Approved", URL: "https://acme.atlassian.net/browse/PAY-123"}}},
		Deployments: []change.Deployment{{ID: 1, Environment: "staging", SHA: head, CreatedAt: at, Statuses: []change.DeploymentStatus{{State: "success", CreatedAt: at}}}},
	}
	d := policy.Evaluate(p, f)
	d.PolicyDigest, d.PolicySource = digest, "acme/payments .github/changegate.yml@main"
	return d
}

func golden(o checks.Output) string {
	var b strings.Builder
	b.WriteString("<!-- status: " + o.Status + " -->\n")
	b.WriteString("<!-- conclusion: " + o.Conclusion + " -->\n")
	b.WriteString("<!-- title: " + o.Title + " -->\n\n")
	b.WriteString(o.Summary)
	if o.Text != "" {
		b.WriteString("\n<!-- text -->\n\n" + o.Text)
	}
	return b.String()
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	cases := renderCases()
	maps.Copy(cases, promotionCases())
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := golden(checks.Render(subject(), d))
			path := filepath.Join("testdata", name+".golden.md")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/checks -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs (-want +got); run go test ./internal/checks -update if intended:\n%s", path, diff)
			}
		})
	}
}

func TestRenderTitles(t *testing.T) {
	t.Parallel()
	cases := renderCases()
	want := map[string]string{
		"compliant":       "4 of 4 controls met",
		"missing_manager": "3 of 4 controls met: manager approval missing",
		"several_missing": "2 of 4 controls met: ticket and staging missing",
		"undecided_jira":  "Waiting: Jira unreachable (503 Service Unavailable) while reading PAY-123",
		"not_production":  "Not a production change: base branch feature/x is not a production branch (main)",
		"invalid_policy":  "Invalid policy: fix .github/changegate.yml",
		"emergency":       "Emergency change: ticket and review met; manager approval due within 48h",
	}
	for name, title := range want {
		if got := checks.Render(subject(), cases[name]).Title; got != title {
			t.Errorf("%s: title %q, want %q", name, got, title)
		}
	}
	short := cases["emergency"]
	short.EmergencyWindow = 24 * time.Hour
	if got, want := checks.Render(subject(), short).Title, "Emergency change: ticket and review met; manager approval due within 24h"; got != want {
		t.Errorf("policy window: title %q, want %q", got, want)
	}
}

// TestRenderWaivedIsNotMet: the evaluator waives staging and manager
// approval for an emergency as a pass without evidence. The check shows
// them owed and not required, never met.
func TestRenderWaivedIsNotMet(t *testing.T) {
	t.Parallel()
	waived := func(control string) change.ControlResult {
		return change.ControlResult{Control: control, Result: change.Pass,
			Reasons: []string{"waived for an emergency change; a manager must approve within 48h of the merge"}}
	}
	d := decision(change.Compliant, ticketPass, reviewPass, waived(change.ControlStaging), waived(change.ControlManagerApproval))
	d.Emergency = true
	o := checks.Render(subject(), d)
	if want := "Emergency change: ticket and review met; manager approval due within 48h"; o.Title != want || o.Conclusion != "success" {
		t.Errorf("%s %q, want success %q", o.Conclusion, o.Title, want)
	}
	for _, line := range strings.Split(o.Summary, "\n") {
		if strings.HasPrefix(line, "| Staging") && !strings.Contains(line, "not required for an emergency change") ||
			strings.HasPrefix(line, "| Manager approval") && !strings.Contains(line, "due within 48h") {
			t.Errorf("waived control shown as %q", line)
		}
	}
}

// TestRenderFailsClosed: whatever the decision says, success needs every
// required control to have passed.
func TestRenderFailsClosed(t *testing.T) {
	t.Parallel()
	emergencyMissingReview := decision(change.Compliant, ticketPass, change.ControlResult{Control: change.ControlPeerReview, Result: change.Fail}, managerDue)
	emergencyMissingReview.Emergency = true
	emergencyStagingFailed := decision(change.Compliant, ticketPass, reviewPass, stagingFail, managerDue)
	emergencyStagingFailed.Emergency = true
	tests := []struct {
		name                   string
		d                      change.Decision
		status, conclusion     string
		titlePrefix            string
		summaryMustContainText string
	}{
		{"compliant", decision(change.Compliant, ticketPass, reviewPass, stagingPass, managerPass), "completed", "success", "4 of 4", "✅ met"},
		{"compliant but a control failed", decision(change.Compliant, ticketPass, reviewPass, stagingFail, managerPass), "completed", "failure", "3 of 4 controls met: staging missing", "❌ missing"},
		{"compliant but a control pending", decision(change.Compliant, ticketPending, reviewPass, stagingPass, managerPass), "in_progress", "", "Waiting: Jira unreachable", "⏳ pending"},
		{"compliant with no controls", decision(change.Compliant), "completed", "failure", "No controls evaluated", "No control was evaluated"},
		{"undecided with nothing pending", decision(change.Undecided, ticketPass), "in_progress", "", "Waiting:", "✅ met"},
		{"non-compliant and pending", decision(change.NonCompliant, ticketPending, reviewPass, stagingFail, managerPass), "completed", "failure", "2 of 4 controls met: staging missing; ticket pending", "⏳ pending"},
		{"unknown outcome", decision("maybe", ticketPass), "in_progress", "", "Waiting: changegate could not decide", "does not recognise"},
		{"empty decision", change.Decision{}, "in_progress", "", "Waiting:", "does not recognise"},
		{"emergency review missing", emergencyMissingReview, "completed", "failure", "Emergency change: review missing", "❌ missing"},
		{"emergency staging failed is not required", emergencyStagingFailed, "completed", "success", "Emergency change: ticket and review met; manager approval due", "not required for an emergency change"},
		{"invalid policy", change.Decision{Outcome: change.InvalidPolicy, Reason: "org/.github changegate.yml:3: bad"}, "completed", "failure", "Invalid policy", "org/.github changegate.yml:3: bad"},
		{"exempt", change.Decision{Outcome: change.Exempt, Reason: "docs only"}, "completed", "neutral", "Exempt: docs only", "**Exempt:** docs only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := checks.Render(subject(), tt.d)
			if o.Status != tt.status || o.Conclusion != tt.conclusion {
				t.Errorf("status/conclusion = %s/%s, want %s/%s", o.Status, o.Conclusion, tt.status, tt.conclusion)
			}
			if !strings.HasPrefix(o.Title, tt.titlePrefix) {
				t.Errorf("title %q, want prefix %q", o.Title, tt.titlePrefix)
			}
			if !strings.Contains(o.Summary, tt.summaryMustContainText) {
				t.Errorf("summary lacks %q:\n%s", tt.summaryMustContainText, o.Summary)
			}
		})
	}
}

// linkRE finds link targets: "](" where the bracket is not escaped.
var linkRE = regexp.MustCompile(`(?:^|[^\\])\]\(([^)\s]*)`)

func TestRenderEscapesUserText(t *testing.T) {
	t.Parallel()
	o := checks.Render(subject(), renderCases()["malicious_ticket"])
	for _, bad := range []string{"<script>", "https://evil", "www.evil", " [admin](", "![img]"} {
		if strings.Contains(o.Summary, bad) || strings.Contains(o.Text, bad) {
			t.Errorf("output contains %q unescaped", bad)
		}
	}
	// The only links are the ones Render makes, to http(s) URLs.
	for _, m := range linkRE.FindAllStringSubmatch(o.Summary+o.Text, -1) {
		if !strings.HasPrefix(m[1], "https://") {
			t.Errorf("link to %q", m[1])
		}
	}
	// Every table row keeps exactly the four cells: no pipe from user text
	// survives unescaped.
	for _, line := range strings.Split(o.Summary, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		if n := strings.Count(line, "|") - strings.Count(line, `\|`); n != 5 {
			t.Errorf("table row has %d unescaped pipes, want 5: %s", n, line)
		}
	}
}

func TestRenderTruncatesWithinGitHubLimits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a very long reason é ", 40)
	var reasons []string
	for range 5000 {
		reasons = append(reasons, long)
	}
	var ev []change.Evidence
	for range 3000 {
		ev = append(ev, change.Evidence{Kind: "review", Ref: strings.Repeat("reviewer", 40), Detail: long, URL: "https://github.com/acme/payments/pull/42"})
	}
	var cs []change.ControlResult
	for i, c := range change.Controls {
		cs = append(cs, change.ControlResult{Control: c, Result: change.Fail, Reasons: reasons, Evidence: ev, Fix: long})
		if i == 0 {
			cs[0].Control = strings.Repeat("x", 10000)
		}
	}
	for name, d := range map[string]change.Decision{
		"controls": decision(change.NonCompliant, cs...),
		"invalid":  {Outcome: change.InvalidPolicy, Reason: strings.Repeat("line\n", 50000)},
		"exempt":   {Outcome: change.Exempt, Reason: strings.Repeat("x", 100000)},
	} {
		o := checks.Render(subject(), d)
		for field, s := range map[string]string{"summary": o.Summary, "text": o.Text} {
			if len(s) > checks.MaxOutput || !utf8.ValidString(s) {
				t.Errorf("%s: %s is %d bytes (valid UTF-8: %v), want at most %d", name, field, len(s), utf8.ValidString(s), checks.MaxOutput)
			}
		}
		if !strings.Contains(o.Summary, "<sub>changegate") {
			t.Errorf("%s: the footer did not survive truncation", name)
		}
		if utf8.RuneCountInString(o.Title) > 200 {
			t.Errorf("%s: title is %d characters", name, utf8.RuneCountInString(o.Title))
		}
	}
	if o := checks.Render(subject(), decision(change.NonCompliant, cs...)); !strings.Contains(o.Text, "truncated") {
		t.Errorf("truncation of the text is not announced")
	}
	var many []change.ControlResult
	for range 200 {
		many = append(many, change.ControlResult{Control: "custom", Result: change.Fail, Reasons: reasons[:30]})
	}
	if o := checks.Render(subject(), decision(change.NonCompliant, many...)); len(o.Summary) > checks.MaxOutput || !strings.Contains(o.Summary, "truncated") {
		t.Errorf("summary of %d bytes, truncation announced: %v", len(o.Summary), strings.Contains(o.Summary, "truncated"))
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	for name, d := range renderCases() {
		if a, b := checks.Render(subject(), d), checks.Render(subject(), d); a != b {
			t.Errorf("%s: two renders differ", name)
		}
	}
}
