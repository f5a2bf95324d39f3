package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/changegate/changegate/internal/change"
)

const (
	head = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
	old  = "9f8e7d6c5b4a39281706f5e4d3c2b1a098f7e6d5"
)

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func at(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }

func review(user, state, sha string, minute int) change.Review {
	return change.Review{ID: int64(minute), User: user, State: state, CommitID: sha, SubmittedAt: at(minute),
		URL: fmt.Sprintf("https://github.com/acme/pay/pull/42#review-%d", minute)}
}

func commit(sha, author, committer string, coAuthors ...string) change.Commit {
	c := change.Commit{SHA: sha, Author: change.Person{Login: author}, Committer: change.Person{Login: committer}}
	for _, co := range coAuthors {
		c.CoAuthors = append(c.CoAuthors, change.Person{Login: co})
	}
	return c
}

func found(key, project, typ, status string) change.TicketLookup {
	return change.TicketLookup{Key: key, Result: change.LookupFound, Ticket: &change.Ticket{
		Key: key, URL: "https://acme.atlassian.net/browse/" + key, Project: project, Type: typ, Status: status,
		Summary: "Fix rounding", Reporter: "Paula", Created: at(-600)}}
}

func deployment(env, sha string, states ...string) change.Deployment {
	d := change.Deployment{ID: 7, Environment: env, SHA: sha, CreatedAt: at(1), URL: "https://github.com/acme/pay/deployments/7"}
	for i, s := range states {
		d.Statuses = append(d.Statuses, change.DeploymentStatus{State: s, CreatedAt: at(2 + i), URL: fmt.Sprintf("https://ci/%d", i)})
	}
	return d
}

// compliantFacts is a change that satisfies testPolicy: alice wrote it,
// bob reviewed it, dave (a release manager) approved it, it ran in staging
// and it names an approved ticket.
func compliantFacts() *change.Facts {
	return &change.Facts{
		Subject: change.Subject{Repo: change.Repo{Owner: "acme", Name: "pay"}, Number: 42, BaseRef: "main", HeadSHA: head},
		PR: change.PullRequest{Number: 42, Title: "PAY-1: fix rounding", Author: "alice", State: "open",
			BaseRef: "main", HeadRef: "feature/PAY-1-fix", HeadSHA: head, DefaultBranch: "main"},
		Files:       []string{"src/pay.go"},
		Commits:     []change.Commit{commit(head, "alice", "alice")},
		Reviews:     []change.Review{review("bob", change.ReviewApproved, head, 10), review("dave", change.ReviewApproved, head, 20)},
		Deployments: []change.Deployment{deployment("staging", head, "in_progress", "success")},
		Memberships: []change.Membership{{Team: "acme/release-managers", User: "dave", Active: true}},
		Tickets:     []change.TicketLookup{found("PAY-1", "PAY", "Story", "Approved")},
	}
}

func testPolicy() *Policy {
	p := Defaults()
	p.Manager.Teams = []string{"acme/release-managers"}
	return p
}

const (
	notAuthor   = "1 of 1 required approval on the head 1a2b3c4 from people who did not author or commit to this change"
	noneOnHead  = "0 of 1 required approval on the head 1a2b3c4 from people who did not author or commit to this change"
	askReviewer = "Ask someone who did not commit to this change to approve the latest commit 1a2b3c4"
	askManager  = "Ask a member of acme/release-managers to approve the latest commit 1a2b3c4"
	noManager   = "no approval from a member of acme/release-managers"
)

var (
	ticketPass = change.ControlResult{Control: change.ControlTicket, Result: change.Pass,
		Reasons: []string{`PAY-1 is a Story in status "Approved"`},
		Evidence: []change.Evidence{{Kind: "ticket", Ref: "PAY-1", URL: "https://acme.atlassian.net/browse/PAY-1",
			Detail: "Fix rounding; type Story; status Approved; reporter Paula; created 2025-03-01T00:00:00Z"}}}
	stagingPass = change.ControlResult{Control: change.ControlStaging, Result: change.Pass,
		Reasons:  []string{"staging succeeded on the head 1a2b3c4"},
		Evidence: []change.Evidence{{Kind: "deployment", Ref: "staging", Detail: "success on 1a2b3c4 at 2025-03-01T10:03:00Z", URL: "https://ci/1"}}}
	managerPass = change.ControlResult{Control: change.ControlManagerApproval, Result: change.Pass,
		Reasons: []string{"approved by a manager who did not author or commit to this change"},
		Evidence: []change.Evidence{{Kind: "team", Ref: "acme/release-managers", URL: "https://github.com/acme/pay/pull/42#review-20",
			Detail: "APPROVED by dave on 1a2b3c4 at 2025-03-01T10:20:00Z"}}}
	waived = []string{"waived for an emergency change; a manager must approve within 48h of the merge"}
)

func TestEvaluate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  func(p *Policy)
		facts   func(f *change.Facts)
		outcome change.Outcome
		reason  string                          // for not_production and exempt
		want    map[string]change.ControlResult // the controls the case is about
		emerg   bool
	}{
		{
			name:    "fully compliant",
			outcome: change.Compliant,
			want: map[string]change.ControlResult{
				change.ControlTicket: ticketPass,
				change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Pass,
					Reasons: []string{"2 of 1 required approval on the head 1a2b3c4 from people who did not author or commit to this change"},
					Evidence: []change.Evidence{
						{Kind: "review", Ref: "bob", Detail: "APPROVED by bob on 1a2b3c4 at 2025-03-01T10:10:00Z", URL: "https://github.com/acme/pay/pull/42#review-10"},
						{Kind: "review", Ref: "dave", Detail: "APPROVED by dave on 1a2b3c4 at 2025-03-01T10:20:00Z", URL: "https://github.com/acme/pay/pull/42#review-20"},
					}},
				change.ControlStaging:         stagingPass,
				change.ControlManagerApproval: managerPass,
			},
		},

		// Peer review and segregation of duties.
		{
			name:    "the author approves their own PR",
			facts:   func(f *change.Facts) { f.Reviews = []change.Review{review("Alice", change.ReviewApproved, head, 10)} },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead, "Alice approved but opened this pull request; authors and committers cannot approve their own change"},
				Fix:     askReviewer,
				Ignored: []change.Ignored{{User: "Alice", Why: "opened this pull request; authors and committers cannot approve their own change"}}}},
		},
		{
			name: "a co-author (Co-authored-by) approves",
			facts: func(f *change.Facts) {
				f.Commits = []change.Commit{commit(head, "alice", "alice", "carol")}
				f.Reviews = []change.Review{review("carol", change.ReviewApproved, head, 10)}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead, "carol approved but is a co-author (Co-authored-by) of commit 1a2b3c4; authors and committers cannot approve their own change"},
				Fix:     askReviewer,
				Ignored: []change.Ignored{{User: "carol", Why: "is a co-author (Co-authored-by) of commit 1a2b3c4; authors and committers cannot approve their own change"}}}},
		},
		{
			name: "a committer of any commit approves",
			facts: func(f *change.Facts) {
				f.Commits = []change.Commit{commit(old, "alice", "erin"), commit(head, "alice", "web-flow")}
				f.Reviews = []change.Review{review("erin", change.ReviewApproved, head, 10)}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead, "erin approved but committed 9f8e7d6; authors and committers cannot approve their own change"},
				Fix:     askReviewer,
				Ignored: []change.Ignored{{User: "erin", Why: "committed 9f8e7d6; authors and committers cannot approve their own change"}}}},
		},
		{
			name: "a bot's approval never counts",
			facts: func(f *change.Facts) {
				f.Reviews = []change.Review{review("renovate[bot]", change.ReviewApproved, head, 10)}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead, "renovate[bot] approved but is a bot or GitHub App; their approvals never count"},
				Fix:     askReviewer,
				Ignored: []change.Ignored{{User: "renovate[bot]", Why: "is a bot or GitHub App; their approvals never count"}}}},
		},
		{
			name:   "a login in review.ignore never counts",
			policy: func(p *Policy) { p.Review.Ignore = []string{"Bob"} },
			facts: func(f *change.Facts) {
				f.Reviews = []change.Review{review("bob", change.ReviewApproved, head, 10)}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead, "bob approved but is listed in review.ignore, whose approvals never count"},
				Fix:     askReviewer,
				Ignored: []change.Ignored{{User: "bob", Why: "is listed in review.ignore, whose approvals never count"}}}},
		},
		{
			name: "a pull request a coding agent opened: its assignee is an author",
			facts: func(f *change.Facts) {
				f.PR.Author, f.PR.Assignees = "copilot-swe-agent[bot]", []string{"bob"}
				f.Commits = []change.Commit{commit(head, "copilot-swe-agent[bot]", "web-flow")}
				f.Reviews = []change.Review{review("bob", change.ReviewApproved, head, 10)}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead, "bob approved but is assigned to this pull request, which copilot-swe-agent[bot] opened; authors and committers cannot approve their own change"},
				Fix:     askReviewer,
				Ignored: []change.Ignored{{User: "bob", Why: "is assigned to this pull request, which copilot-swe-agent[bot] opened; authors and committers cannot approve their own change"}}}},
		},
		{
			name: "the web-flow committer is not a person",
			facts: func(f *change.Facts) {
				f.Commits = []change.Commit{commit(head, "alice", "web-flow")}
				f.Reviews = []change.Review{review("web-flow", change.ReviewApproved, head, 10), review("dave", change.ReviewApproved, head, 20)}
			},
			outcome: change.Compliant,
		},
		{
			name: "an approval on an older SHA after a new push",
			facts: func(f *change.Facts) {
				f.Reviews = []change.Review{review("bob", change.ReviewApproved, old, 10)}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead, "approval by bob is on an older commit 9f8e7d6"},
				Fix:     "Ask bob to approve the latest commit 1a2b3c4 again",
				Ignored: []change.Ignored{{User: "bob", Why: "approved an older commit 9f8e7d6, not the head 1a2b3c4"}}}},
		},
		{
			name:   "an approval on an older SHA after a new push, with keep_on_push",
			policy: func(p *Policy) { p.Review.KeepOnPush = true },
			facts: func(f *change.Facts) {
				f.Reviews = []change.Review{review("bob", change.ReviewApproved, old, 10), f.Reviews[1]}
			},
			outcome: change.Compliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Pass,
				Reasons: []string{"2 of 1 required approval on any commit from people who did not author or commit to this change"},
				Evidence: []change.Evidence{
					{Kind: "review", Ref: "bob", Detail: "APPROVED by bob on 9f8e7d6 at 2025-03-01T10:10:00Z", URL: "https://github.com/acme/pay/pull/42#review-10"},
					{Kind: "review", Ref: "dave", Detail: "APPROVED by dave on 1a2b3c4 at 2025-03-01T10:20:00Z", URL: "https://github.com/acme/pay/pull/42#review-20"},
				}}},
		},
		{
			name: "approval followed by changes requested from the same reviewer",
			facts: func(f *change.Facts) {
				f.Reviews = append(f.Reviews, review("bob", change.ReviewCommented, head, 25), review("bob", change.ReviewChangesRequested, head, 30))
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{"changes requested by bob"},
				Fix:     "Address the changes bob requested, then ask bob to review again"}},
		},
		{
			name: "changes requested, then approved by the same reviewer",
			facts: func(f *change.Facts) {
				f.Reviews = append([]change.Review{review("bob", change.ReviewChangesRequested, old, 5)}, f.Reviews...)
			},
			outcome: change.Compliant,
		},
		{
			name: "a dismissed review",
			facts: func(f *change.Facts) {
				f.Reviews = []change.Review{review("bob", change.ReviewDismissed, head, 10), review("carol", change.ReviewCommented, head, 11)}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead, "the review by bob was dismissed"},
				Fix:     askReviewer,
				Ignored: []change.Ignored{{User: "bob", Why: "the review was dismissed"}}}},
		},
		{
			name:    "two reviews required, one given",
			policy:  func(p *Policy) { p.Review.Required = 2 },
			facts:   func(f *change.Facts) { f.Reviews = f.Reviews[:1] },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{"1 of 2 required approvals on the head 1a2b3c4 from people who did not author or commit to this change"},
				Evidence: []change.Evidence{{Kind: "review", Ref: "bob", Detail: "APPROVED by bob on 1a2b3c4 at 2025-03-01T10:10:00Z",
					URL: "https://github.com/acme/pay/pull/42#review-10"}},
				Fix: askReviewer}},
		},
		{
			name:    "reviews gap is pending",
			facts:   func(f *change.Facts) { f.Gaps = []change.Gap{{Source: "reviews", Reason: "GitHub answered 502"}} },
			outcome: change.Undecided,
			want: map[string]change.ControlResult{
				change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Pending,
					Reasons: []string{"reviews could not be read: GitHub answered 502"}, Fix: "Nothing to do: changegate reads the reviews again"},
				change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Pass,
					Reasons: managerPass.Reasons, Evidence: managerPass.Evidence},
			},
		},
		{
			name: "251 commits (truncated) fails closed",
			facts: func(f *change.Facts) {
				f.Gaps = []change.Gap{{Source: "commits", Reason: "GitHub lists at most 250 commits", Truncated: true}}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{
				change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
					Reasons: []string{"authorship cannot be verified: the pull request has more than 250 commits, more than GitHub lists"},
					Fix:     "Split the change into pull requests of at most 250 commits"},
				change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Fail,
					Reasons: []string{"authorship cannot be verified: the pull request has more than 250 commits, more than GitHub lists"},
					Fix:     "Split the change into pull requests of at most 250 commits"},
			},
		},
		{
			name:    "commits gap that is not truncation is pending",
			facts:   func(f *change.Facts) { f.Gaps = []change.Gap{{Source: "commits", Reason: "timeout"}} },
			outcome: change.Undecided,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Pending,
				Reasons: []string{"authorship cannot be verified: commits could not be read: timeout"},
				Fix:     "Nothing to do: changegate reads the commits again"}},
		},

		// Manager approval.
		{
			name: "manager is the author",
			facts: func(f *change.Facts) {
				f.PR.Author = "dave"
				f.Commits = []change.Commit{commit(head, "dave", "dave")}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Fail,
				Reasons: []string{noManager, "bob approved but is not an active member of acme/release-managers", "dave is in acme/release-managers but opened this pull request"},
				Fix:     askManager,
				Ignored: []change.Ignored{{User: "bob", Why: "not a manager: not a member of acme/release-managers"}, {User: "dave", Why: "a manager who opened this pull request; authors and committers cannot approve their own change"}}}},
		},
		{
			name: "manager is a committer",
			facts: func(f *change.Facts) {
				f.Commits = []change.Commit{commit(old, "alice", "dave"), commit(head, "alice", "alice")}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Fail,
				Reasons: []string{noManager, "bob approved but is not an active member of acme/release-managers", "dave is in acme/release-managers but committed 9f8e7d6"},
				Fix:     askManager,
				Ignored: []change.Ignored{{User: "bob", Why: "not a manager: not a member of acme/release-managers"}, {User: "dave", Why: "a manager who committed 9f8e7d6; authors and committers cannot approve their own change"}}}},
		},
		{
			name: "manager not in the team",
			facts: func(f *change.Facts) {
				f.Reviews = append(f.Reviews[:1], review("carol", change.ReviewApproved, head, 20), review("dave", change.ReviewApproved, head, 21))
				f.Memberships = []change.Membership{{Team: "acme/release-managers", User: "dave", Active: false}}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Fail,
				Reasons: []string{noManager,
					"bob approved but is not an active member of acme/release-managers",
					"carol approved but is not an active member of acme/release-managers",
					"dave approved but is not an active member of acme/release-managers (membership pending)"},
				Fix: askManager,
				Ignored: []change.Ignored{{User: "bob", Why: "not a manager: not a member of acme/release-managers"}, {User: "carol", Why: "not a manager: not a member of acme/release-managers"},
					{User: "dave", Why: "not a manager: the membership of acme/release-managers is pending"}}}},
		},
		{
			name:    "manager approved an older commit",
			facts:   func(f *change.Facts) { f.Reviews[1].CommitID = old },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Fail,
				Reasons: []string{noManager, "bob approved but is not an active member of acme/release-managers",
					"approval by dave (acme/release-managers) is on an older commit 9f8e7d6"},
				Fix:     askManager,
				Ignored: []change.Ignored{{User: "bob", Why: "not a manager: not a member of acme/release-managers"}, {User: "dave", Why: "a manager's approval of an older commit 9f8e7d6, not the head 1a2b3c4"}}}},
		},
		{
			name: "teams gap is pending",
			facts: func(f *change.Facts) {
				f.Memberships = nil
				f.Gaps = []change.Gap{{Source: "teams", Reason: "403 from GitHub"}}
			},
			outcome: change.Undecided,
			want: map[string]change.ControlResult{change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Pending,
				Reasons: []string{"team memberships could not be read: 403 from GitHub",
					"bob approved but is not an active member of acme/release-managers",
					"dave approved but is not an active member of acme/release-managers"},
				Fix:     "Nothing to do: changegate evaluates again when the missing facts can be read",
				Ignored: []change.Ignored{{User: "bob", Why: "not a manager: not a member of acme/release-managers"}, {User: "dave", Why: "not a manager: not a member of acme/release-managers"}}}},
		},
		{
			name:    "no manager team configured",
			policy:  func(p *Policy) { p.Manager.Teams = nil },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Fail,
				Reasons: []string{"the policy names no manager team and no Jira approval"},
				Fix:     "Configure manager.teams (org/team-slug) in the policy"}},
		},
		{
			name:   "manager approval recorded in Jira",
			policy: func(p *Policy) { p.Manager = Manager{JiraApproval: true, JiraGroup: "change-managers"} },
			facts: func(f *change.Facts) {
				f.Tickets[0].Ticket.Approvals = []change.Approval{
					{Decision: "approved", Approvers: []string{"Alice Smith"}, Groups: []string{"change-managers"}, Completed: at(30)},
					{Decision: "approved", Approvers: []string{"Mallory"}, Groups: []string{"jira-users"}, Completed: at(31)},
					{Decision: "approved", Approvers: []string{"Frank"}, Groups: []string{"Change-Managers"}, Completed: at(32)},
				}
				f.Commits[0].Author.Name = "Alice Smith"
			},
			outcome: change.Compliant,
			want: map[string]change.ControlResult{change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Pass,
				Reasons: managerPass.Reasons,
				Evidence: []change.Evidence{{Kind: "jira_approval", Ref: "PAY-1", URL: "https://acme.atlassian.net/browse/PAY-1",
					Detail: "approved by Frank (Jira group change-managers) at 2025-03-01T10:32:00Z"}}}},
		},
		{
			name:   "Jira approval by an author or outside the group does not count",
			policy: func(p *Policy) { p.Manager = Manager{JiraApproval: true, JiraGroup: "change-managers"} },
			facts: func(f *change.Facts) {
				f.Tickets[0].Ticket.Approvals = []change.Approval{
					{Decision: "approved", Approvers: []string{"alice"}, Groups: []string{"change-managers"}},
					{Decision: "approved", Approvers: []string{"Mallory"}, Groups: []string{"jira-users"}},
					{Decision: "pending", Approvers: []string{"Frank"}, Groups: []string{"change-managers"}},
				}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Fail,
				Reasons: []string{"no approval from the Jira group change-managers",
					"PAY-1 was approved in Jira by alice, who worked on this change",
					"PAY-1 was approved in Jira by Mallory, who is not in the Jira group change-managers",
					"the Jira approval on PAY-1 is pending"},
				Fix: "Ask a member of the Jira group change-managers to approve PAY-1 in Jira"}},
		},

		// Staging.
		{
			name:    "staging succeeded on a different SHA",
			facts:   func(f *change.Facts) { f.Deployments = []change.Deployment{deployment("staging", old, "success")} },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Fail,
				Reasons: []string{"staging succeeded on 9f8e7d6, not on the head 1a2b3c4"},
				Fix:     "Deploy 1a2b3c4 to staging"}},
		},
		{
			name: "staging failure after an earlier success (latest status wins)",
			facts: func(f *change.Facts) {
				f.Deployments = []change.Deployment{deployment("Staging", head, "success", "failure")}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Fail,
				Reasons: []string{"the latest deployment of 1a2b3c4 to Staging is failure (after an earlier success; the latest counts)"},
				Fix:     "Deploy 1a2b3c4 to staging"}},
		},
		{
			name: "staging redeploy of the head that failed wins over the earlier deployment",
			facts: func(f *change.Facts) {
				again := deployment("staging", head, "failure")
				again.ID, again.CreatedAt = 8, at(10)
				f.Deployments = append(f.Deployments, again)
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Fail,
				Reasons: []string{"the latest deployment of 1a2b3c4 to staging is failure (after an earlier success; the latest counts)"},
				Fix:     "Deploy 1a2b3c4 to staging"}},
		},
		{
			name: "staging success later marked inactive by a newer deployment still counts",
			facts: func(f *change.Facts) {
				f.Deployments = []change.Deployment{deployment("staging", head, "in_progress", "success", "inactive")}
			},
			outcome: change.Compliant,
			want:    map[string]change.ControlResult{change.ControlStaging: stagingPass},
		},
		{
			name: "staging deployment still running is pending",
			facts: func(f *change.Facts) {
				f.Deployments = []change.Deployment{deployment("staging", head, "queued", "in_progress")}
			},
			outcome: change.Undecided,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Pending,
				Reasons: []string{"the deployment of 1a2b3c4 to staging is in_progress"},
				Fix:     "Nothing to do: changegate evaluates again when staging reports"}},
		},
		{
			name:   "staging via check run",
			policy: func(p *Policy) { p.Staging = Staging{Checks: []string{"argocd/*-staging"}} },
			facts: func(f *change.Facts) {
				f.Deployments = nil
				f.CheckRuns = []change.CheckRun{
					{Name: "argocd/pay-staging", HeadSHA: head, Status: "completed", Conclusion: "failure", CompletedAt: at(3)},
					{Name: "argocd/pay-staging", HeadSHA: head, Status: "completed", Conclusion: "success", CompletedAt: at(5), URL: "https://argo/run/2"},
					{Name: "argocd/pay-staging", HeadSHA: head, Status: "in_progress"},
					{Name: "unit tests", HeadSHA: head, Status: "completed", Conclusion: "failure", CompletedAt: at(6)},
				}
			},
			outcome: change.Compliant,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Pass,
				Reasons:  []string{"staging succeeded on the head 1a2b3c4"},
				Evidence: []change.Evidence{{Kind: "check_run", Ref: "argocd/pay-staging", Detail: "success on 1a2b3c4 at 2025-03-01T10:05:00Z", URL: "https://argo/run/2"}}}},
		},
		{
			name:   "staging check run failure after an earlier success",
			policy: func(p *Policy) { p.Staging = Staging{Checks: []string{"argocd/*-staging"}} },
			facts: func(f *change.Facts) {
				f.Deployments = nil
				f.CheckRuns = []change.CheckRun{
					{Name: "argocd/pay-staging", HeadSHA: head, Status: "completed", Conclusion: "success", CompletedAt: at(3)},
					{Name: "argocd/pay-staging", HeadSHA: head, Status: "completed", Conclusion: "failure", CompletedAt: at(5)},
				}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Fail,
				Reasons: []string{"check argocd/pay-staging concluded failure on 1a2b3c4 (after an earlier success; the latest counts)"},
				Fix:     "Run the staging check on 1a2b3c4"}},
		},
		{
			name:   "staging via commit status",
			policy: func(p *Policy) { p.Staging = Staging{Checks: []string{"deploy/staging"}} },
			facts: func(f *change.Facts) {
				f.Deployments = nil
				f.Statuses = []change.Status{
					{Context: "deploy/staging", State: "pending", SHA: head, CreatedAt: at(2)},
					{Context: "deploy/staging", State: "success", SHA: head, CreatedAt: at(4), URL: "https://flux/4"},
				}
			},
			outcome: change.Compliant,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Pass,
				Reasons:  []string{"staging succeeded on the head 1a2b3c4"},
				Evidence: []change.Evidence{{Kind: "status", Ref: "deploy/staging", Detail: "success on 1a2b3c4 at 2025-03-01T10:04:00Z", URL: "https://flux/4"}}}},
		},
		{
			name:   "staging commit status failure after an earlier success",
			policy: func(p *Policy) { p.Staging = Staging{Checks: []string{"deploy/staging"}} },
			facts: func(f *change.Facts) {
				f.Deployments = nil
				f.Statuses = []change.Status{
					{Context: "deploy/staging", State: "error", SHA: head, CreatedAt: at(6)},
					{Context: "deploy/staging", State: "success", SHA: head, CreatedAt: at(4)},
				}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Fail,
				Reasons: []string{"status deploy/staging is error on 1a2b3c4 (after an earlier success; the latest counts)"},
				Fix:     "Run deploy/staging on 1a2b3c4"}},
		},
		{
			name:    "no staging at all",
			facts:   func(f *change.Facts) { f.Deployments = nil },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Fail,
				Reasons: []string{"no staging deployment or check on the head 1a2b3c4"},
				Fix:     "Deploy 1a2b3c4 to staging"}},
		},
		{
			name: "deployments gap without a success is pending",
			facts: func(f *change.Facts) {
				f.Deployments = nil
				f.Gaps = []change.Gap{{Source: "deployments", Reason: "rate limited"}}
			},
			outcome: change.Undecided,
			want: map[string]change.ControlResult{change.ControlStaging: {Control: change.ControlStaging, Result: change.Pending,
				Reasons: []string{"deployments could not be read: rate limited"},
				Fix:     "Nothing to do: changegate evaluates again when staging reports"}},
		},

		// Ticket.
		{
			name:    "ticket in a disallowed status",
			facts:   func(f *change.Facts) { f.Tickets = []change.TicketLookup{found("PAY-1", "PAY", "Story", "To Do")} },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlTicket: {Control: change.ControlTicket, Result: change.Fail,
				Reasons: []string{`PAY-1 is in status "To Do", allowed: Approved, In Progress, Done`},
				Fix:     `Move PAY-1 to "Approved", "In Progress" or "Done" in Jira`}},
		},
		{
			name:    "ticket in another project",
			policy:  func(p *Policy) { p.Ticket.Projects = []string{"PAY"} },
			facts:   func(f *change.Facts) { f.Tickets = []change.TicketLookup{found("PAY-1", "OPS", "Story", "Approved")} },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlTicket: {Control: change.ControlTicket, Result: change.Fail,
				Reasons: []string{"PAY-1 is in project OPS, allowed: PAY"},
				Fix:     "Reference an issue in project PAY"}},
		},
		{
			name:    "ticket of a disallowed type",
			policy:  func(p *Policy) { p.Ticket.IssueTypes = []string{"Change", "Story"} },
			facts:   func(f *change.Facts) { f.Tickets = []change.TicketLookup{found("PAY-1", "PAY", "Bug", "Approved")} },
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlTicket: {Control: change.ControlTicket, Result: change.Fail,
				Reasons: []string{"PAY-1 is a Bug, allowed types: Change, Story"},
				Fix:     "Reference an issue of type Change or Story"}},
		},
		{
			name: "PR with no key",
			facts: func(f *change.Facts) {
				f.PR.Title, f.PR.HeadRef, f.PR.Body = "fix rounding", "fix-rounding", "Uses SHA-256 now (CVE-2024-1234)."
				f.Tickets = nil
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlTicket: {Control: change.ControlTicket, Result: change.Fail,
				Reasons: []string{"no Jira key in the title, branch or body"},
				Fix:     "Add a Jira key such as PAY-123 to the pull request title"}},
		},
		{
			name:   "PR with only a key outside the allowed projects",
			policy: func(p *Policy) { p.Ticket.Projects = []string{"PAY"}; p.Ticket.Sources = []string{"branch"} },
			facts: func(f *change.Facts) {
				f.PR.HeadRef = "OPS-7-fix"
				f.Tickets = nil
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlTicket: {Control: change.ControlTicket, Result: change.Fail,
				Reasons: []string{"OPS-7 is not in an allowed project (PAY)"},
				Fix:     "Add a Jira key such as PAY-123 to the head branch name"}},
		},
		{
			name: "a key that does not exist",
			facts: func(f *change.Facts) {
				f.Tickets = []change.TicketLookup{{Key: "PAY-1", Result: change.LookupNotFound}}
			},
			outcome: change.NonCompliant,
			want: map[string]change.ControlResult{change.ControlTicket: {Control: change.ControlTicket, Result: change.Fail,
				Reasons: []string{"PAY-1 does not exist in Jira"},
				Fix:     "Correct the key PAY-1, or create the issue in Jira"}},
		},
		{
			name: "one good key among several is enough",
			facts: func(f *change.Facts) {
				f.PR.Body = "Also PAY-2."
				f.Tickets = []change.TicketLookup{found("PAY-1", "PAY", "Story", "Approved"), {Key: "PAY-2", Result: change.LookupNotFound}}
			},
			outcome: change.Compliant,
			want:    map[string]change.ControlResult{change.ControlTicket: ticketPass},
		},
		{
			name: "Jira down is pending, never pass",
			facts: func(f *change.Facts) {
				f.Tickets = []change.TicketLookup{{Key: "PAY-1", Result: change.LookupUnreachable, Error: "503 Service Unavailable"}}
			},
			outcome: change.Undecided,
			want: map[string]change.ControlResult{change.ControlTicket: {Control: change.ControlTicket, Result: change.Pending,
				Reasons: []string{"Jira unreachable: 503 Service Unavailable"},
				Fix:     "Nothing to do: changegate asks Jira again until it answers"}},
		},
		{
			name:    "a key not looked up yet is pending",
			facts:   func(f *change.Facts) { f.Tickets = nil },
			outcome: change.Undecided,
			want: map[string]change.ControlResult{change.ControlTicket: {Control: change.ControlTicket, Result: change.Pending,
				Reasons: []string{"PAY-1 has not been looked up in Jira yet"},
				Fix:     "Nothing to do: changegate asks Jira again until it answers"}},
		},

		// Which changes are gated.
		{
			name:   "exempt author",
			policy: func(p *Policy) { p.Exempt.Authors = []string{"dependabot[bot]"} },
			facts: func(f *change.Facts) {
				f.PR.Author = "dependabot[bot]"
				f.Commits = []change.Commit{commit(head, "dependabot[bot]", "web-flow")}
				f.Reviews = nil
			},
			outcome: change.Exempt,
			reason:  "exempt: the author dependabot[bot] is listed in exempt.authors",
		},
		{
			name:   "exempt author does not cover a person's commit",
			policy: func(p *Policy) { p.Exempt.Authors = []string{"dependabot[bot]"} },
			facts: func(f *change.Facts) {
				f.PR.Author = "dependabot[bot]"
				f.Commits = []change.Commit{commit(old, "dependabot[bot]", "web-flow"), commit(head, "mallory", "mallory")}
			},
			outcome: change.Compliant,
		},
		{
			name:    "exempt docs-only change",
			policy:  func(p *Policy) { p.Exempt.Paths = []string{"docs/**", "**/*.md"} },
			facts:   func(f *change.Facts) { f.Files = []string{"docs/guide/setup.md", "README.md"}; f.Reviews = nil },
			outcome: change.Exempt,
			reason:  "exempt: every changed file matches exempt.paths (docs/**, **/*.md)",
		},
		{
			name:   "docs-only exemption needs the complete file list",
			policy: func(p *Policy) { p.Exempt.Paths = []string{"docs/**"} },
			facts: func(f *change.Facts) {
				f.Files = []string{"docs/a.md"}
				f.Gaps = []change.Gap{{Source: "files", Reason: "more than 3000 files", Truncated: true}}
			},
			outcome: change.Compliant,
		},
		{
			name:    "not production: other base branch",
			facts:   func(f *change.Facts) { f.PR.BaseRef = "develop" },
			outcome: change.NotProduction,
			reason:  "not a production change: base branch develop is not a production branch (the default branch main is)",
		},
		{
			name:    "not production: base branch outside production.branches",
			policy:  func(p *Policy) { p.Production.Branches = []string{"main", "release/*"} },
			facts:   func(f *change.Facts) { f.PR.BaseRef = "feature/x" },
			outcome: change.NotProduction,
			reason:  "not a production change: base branch feature/x is not a production branch (main, release/*)",
		},
		{
			name:    "production: base branch matches a glob",
			policy:  func(p *Policy) { p.Production.Branches = []string{"main", "release/*"} },
			facts:   func(f *change.Facts) { f.PR.BaseRef = "release/2.1" },
			outcome: change.Compliant,
		},
		{
			name:    "not production: no file under production.paths",
			policy:  func(p *Policy) { p.Production.Paths = []string{"clusters/prod/**"} },
			facts:   func(f *change.Facts) { f.Files = []string{"clusters/staging/app.yaml"} },
			outcome: change.NotProduction,
			reason:  "not a production change: no file under production.paths (clusters/prod/**)",
		},
		{
			name:   "production.paths with a truncated file list is production",
			policy: func(p *Policy) { p.Production.Paths = []string{"clusters/prod/**"} },
			facts: func(f *change.Facts) {
				f.Files = []string{"clusters/staging/app.yaml"}
				f.Gaps = []change.Gap{{Source: "files", Reason: "more than 3000 files", Truncated: true}}
			},
			outcome: change.Compliant,
		},

		// Emergency.
		{
			name:   "emergency: ticket and one review suffice",
			policy: func(p *Policy) { p.Review.Required = 2 },
			facts: func(f *change.Facts) {
				f.PR.Labels = []string{"bug", "Emergency"}
				f.Reviews = f.Reviews[:1]
				f.Deployments = nil
				f.Memberships = nil
			},
			outcome: change.Compliant,
			emerg:   true,
			want: map[string]change.ControlResult{
				change.ControlTicket: ticketPass,
				change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Pass,
					Reasons: []string{notAuthor, "emergency change: 1 approval required instead of 2"},
					Evidence: []change.Evidence{{Kind: "review", Ref: "bob", Detail: "APPROVED by bob on 1a2b3c4 at 2025-03-01T10:10:00Z",
						URL: "https://github.com/acme/pay/pull/42#review-10"}}},
				change.ControlStaging:         {Control: change.ControlStaging, Result: change.Pass, Reasons: waived},
				change.ControlManagerApproval: {Control: change.ControlManagerApproval, Result: change.Pass, Reasons: waived},
			},
		},
		{
			name: "emergency still needs a review",
			facts: func(f *change.Facts) {
				f.PR.Labels = []string{"emergency"}
				f.Reviews = nil
			},
			outcome: change.NonCompliant,
			emerg:   true,
			want: map[string]change.ControlResult{change.ControlPeerReview: {Control: change.ControlPeerReview, Result: change.Fail,
				Reasons: []string{noneOnHead}, Fix: askReviewer}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := testPolicy()
			if tt.policy != nil {
				tt.policy(p)
			}
			f := compliantFacts()
			if tt.facts != nil {
				tt.facts(f)
			}
			got := Evaluate(p, f)
			if got.Outcome != tt.outcome || got.Reason != tt.reason || got.Emergency != tt.emerg {
				t.Errorf("Evaluate = outcome %s, reason %q, emergency %v; want %s, %q, %v\ncontrols: %+v",
					got.Outcome, got.Reason, got.Emergency, tt.outcome, tt.reason, tt.emerg, got.Controls)
			}
			if got.PolicyDigest != p.Digest() {
				t.Errorf("PolicyDigest = %q, want %q", got.PolicyDigest, p.Digest())
			}
			switch got.Outcome {
			case change.NotProduction, change.Exempt:
				if got.Controls != nil {
					t.Errorf("controls evaluated for a %s change: %+v", got.Outcome, got.Controls)
				}
				return
			}
			var order []string
			for _, c := range got.Controls {
				order = append(order, c.Control)
				if c.Result != change.Pass && c.Fix == "" {
					t.Errorf("%s is %s without a fix", c.Control, c.Result)
				}
			}
			if diff := cmp.Diff(change.Controls, order); diff != "" {
				t.Errorf("control order (-want +got):\n%s", diff)
			}
			for name, want := range tt.want {
				c, _ := got.Control(name)
				if diff := cmp.Diff(want, c); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// Evaluate reads its inputs only: the facts are left as they were.
func TestEvaluateDoesNotModifyFacts(t *testing.T) {
	t.Parallel()
	f := compliantFacts()
	f.Reviews = append(f.Reviews, review("bob", change.ReviewChangesRequested, old, 1))
	before := compliantFacts()
	before.Reviews = append(before.Reviews, review("bob", change.ReviewChangesRequested, old, 1))
	Evaluate(testPolicy(), f)
	if diff := cmp.Diff(before, f); diff != "" {
		t.Errorf("facts changed (-before +after):\n%s", diff)
	}
}

func TestProductionBranchAndEnvironment(t *testing.T) {
	t.Parallel()
	p := Defaults()
	if !p.ProductionBranch("main", "main") || p.ProductionBranch("dev", "main") || !p.ProductionBranch("dev", "") {
		t.Error("default branch rule")
	}
	p.Production.Branches = []string{"release/*"}
	if !p.ProductionBranch("release/1.2", "main") || p.ProductionBranch("main", "main") {
		t.Error("named branches")
	}
	if !p.ProductionEnvironment("Production") || p.ProductionEnvironment("staging") {
		t.Error("environments")
	}
}
