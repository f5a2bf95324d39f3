package ghfacts_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/ghapp"
	"github.com/changegate/changegate/internal/ghfacts"
	"github.com/changegate/changegate/internal/ghfake"
)

const (
	owner, name = "acme", "api"
	head        = "1111111111111111111111111111111111111111"
	old         = "0000000000000000000000000000000000000000"
)

var (
	repo = change.Repo{Owner: owner, Name: name}
	t0   = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

type env struct {
	gh     *ghfake.Server
	client *github.Client
	inst   int64
}

// setup starts a fake GitHub with acme/api installed and pull request #7
// open at head, and returns an installation client built as changegate
// builds them.
func setup(t *testing.T) env {
	t.Helper()
	gh := ghfake.New(t)
	in := gh.AddInstallation(ghfake.Installation{Account: owner})
	gh.AddRepo(in.ID, ghfake.Repo{Name: name, Private: true})
	gh.AddPullRequest(owner, name, ghfake.PullRequest{
		Number: 7, Title: "PAY-12 rotate keys", Body: "Rotates keys.", Author: "octo",
		BaseRef: "main", BaseSHA: old, HeadRef: "rotate", HeadSHA: head,
		Labels: []string{"security"}, CreatedAt: t0,
	})
	apps, err := ghapp.New(ghapp.Config{AppID: gh.AppID(), PrivateKey: gh.PrivateKeyPEM(), BaseURL: gh.URL()}, ghapp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := apps.Installation(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	return env{gh: gh, client: c, inst: in.ID}
}

func (e env) subject() change.Subject {
	return change.Subject{Installation: e.inst, Repo: repo, Number: 7}
}

func (e env) gather(t *testing.T, needs change.Needs) *change.Facts {
	t.Helper()
	f, err := ghfacts.Gather(t.Context(), e.client, e.subject(), needs)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// githubCalls counts the REST calls a gather made, leaving out the token.
func githubCalls(gh *ghfake.Server) int {
	n := 0
	for _, c := range gh.Calls() {
		if c.Route != "/app/installations/{installation_id}/access_tokens" {
			n++
		}
	}
	return n
}

var allNeeds = change.Needs{
	Files: true, Commits: true, Reviews: true, CheckRuns: true, Statuses: true,
	StagingEnvironments: []string{"staging"},
	ManagerTeams:        []string{"acme/managers"},
}

func TestGatherFull(t *testing.T) {
	t.Parallel()
	e := setup(t)
	gh := e.gh
	api := strings.TrimSuffix(gh.URL(), "/")

	gh.AddFile(owner, name, 7, ghfake.File{Filename: "clusters/prod/app.yaml"})
	gh.AddFile(owner, name, 7, ghfake.File{Filename: "docs/new.md", Status: "renamed", PreviousFilename: "clusters/prod/old.md"})
	gh.AddCommit(owner, name, 7, ghfake.Commit{
		SHA: old, Message: "Start\n\nCo-authored-by: Ada <12345+ada@users.noreply.github.com>\nco-authored-by: Grace <grace@example.com>",
		Author:    ghfake.Person{Name: "Octo", Email: "octo@example.com", Login: "octo"},
		Committer: ghfake.Person{Name: "GitHub", Email: "noreply@github.com", Login: "web-flow"},
		Date:      at(1),
	})
	gh.AddCommit(owner, name, 7, ghfake.Commit{
		SHA: head, Message: "Finish", Date: at(2),
		Author: ghfake.Person{Name: "Unlinked", Email: "99+unlinked@users.noreply.github.com"},
	})
	alice := gh.AddReview(owner, name, 7, ghfake.Review{User: "alice", State: "APPROVED", CommitID: head, SubmittedAt: at(10)})
	bob := gh.AddReview(owner, name, 7, ghfake.Review{User: "bob", State: "APPROVED", CommitID: old, SubmittedAt: at(11)})
	carol := gh.AddReview(owner, name, 7, ghfake.Review{User: "carol", State: "APPROVED", CommitID: head, SubmittedAt: at(12)})
	gh.DismissReview(carol.ID)
	gh.SetTeamMember(owner, "managers", "alice", "active")
	gh.SetTeamMember(owner, "managers", "bob", "pending")

	gh.AddStatus(owner, name, ghfake.Status{SHA: head, Context: "ci", State: "pending", CreatedAt: at(3)})
	gh.AddStatus(owner, name, ghfake.Status{SHA: head, Context: "ci", State: "success", TargetURL: "https://ci.example/1", CreatedAt: at(4)})
	gh.AddStatus(owner, name, ghfake.Status{SHA: old, Context: "ci", State: "failure", CreatedAt: at(2)})
	gh.AddCheckRun(owner, name, ghfake.CheckRun{Name: "flux/staging", HeadSHA: head, Conclusion: "success", AppSlug: "flux", CompletedAt: at(5)})
	gh.AddCheckRun(owner, name, ghfake.CheckRun{Name: "flux/staging", HeadSHA: old, Conclusion: "failure", AppSlug: "flux", CompletedAt: at(2)})
	dep := gh.AddDeployment(owner, name, ghfake.Deployment{SHA: head, Ref: "rotate", Environment: "staging", Creator: "argocd[bot]", CreatedAt: at(6)})
	gh.AddDeploymentStatus(owner, name, dep.ID, ghfake.DeploymentStatus{State: "in_progress", CreatedAt: at(6)})
	gh.AddDeploymentStatus(owner, name, dep.ID, ghfake.DeploymentStatus{State: "success", LogURL: "https://argo.example/7", CreatedAt: at(7)})
	gh.AddDeployment(owner, name, ghfake.Deployment{SHA: old, Environment: "staging", CreatedAt: at(2)})
	gh.AddDeployment(owner, name, ghfake.Deployment{SHA: head, Environment: "qa", CreatedAt: at(6)})

	got := e.gather(t, allNeeds)
	reviewURL := func(id int64) string {
		return fmt.Sprintf("https://github.com/acme/api/pull/7#pullrequestreview-%d", id)
	}
	want := &change.Facts{
		Subject: change.Subject{Installation: e.inst, Repo: repo, Number: 7, BaseRef: "main", HeadRef: "rotate", HeadSHA: head},
		PR: change.PullRequest{
			Number: 7, URL: "https://github.com/acme/api/pull/7", Title: "PAY-12 rotate keys", Body: "Rotates keys.",
			Author: "octo", State: "open", BaseRef: "main", HeadRef: "rotate", HeadSHA: head, BaseSHA: old,
			DefaultBranch: "main", ChangedFiles: 2, CommitCount: 2, Labels: []string{"security"}, CreatedAt: t0,
		},
		Files: []string{"clusters/prod/app.yaml", "docs/new.md", "clusters/prod/old.md"},
		Commits: []change.Commit{
			{
				SHA:       old,
				Author:    change.Person{Name: "Octo", Email: "octo@example.com", Login: "octo"},
				Committer: change.Person{Name: "GitHub", Email: "noreply@github.com", Login: "web-flow"},
				CoAuthors: []change.Person{
					{Name: "Ada", Email: "12345+ada@users.noreply.github.com", Login: "ada"},
					{Name: "Grace", Email: "grace@example.com"},
				},
			},
			{
				SHA:       head,
				Author:    change.Person{Name: "Unlinked", Email: "99+unlinked@users.noreply.github.com", Login: "unlinked"},
				Committer: change.Person{Name: "Unlinked", Email: "99+unlinked@users.noreply.github.com", Login: "unlinked"},
			},
		},
		Reviews: []change.Review{
			{ID: alice.ID, User: "alice", State: "APPROVED", CommitID: head, SubmittedAt: at(10), URL: reviewURL(alice.ID)},
			{ID: bob.ID, User: "bob", State: "APPROVED", CommitID: old, SubmittedAt: at(11), URL: reviewURL(bob.ID)},
			{ID: carol.ID, User: "carol", State: "DISMISSED", CommitID: head, SubmittedAt: at(12), URL: reviewURL(carol.ID)},
		},
		CheckRuns: []change.CheckRun{
			{Name: "flux/staging", HeadSHA: head, Status: "completed", Conclusion: "success", App: "flux", CompletedAt: at(5)},
		},
		Statuses: []change.Status{
			{Context: "ci", State: "success", SHA: head, CreatedAt: at(4), URL: "https://ci.example/1"},
			{Context: "ci", State: "pending", SHA: head, CreatedAt: at(3)},
		},
		Deployments: []change.Deployment{{
			ID: dep.ID, Environment: "staging", SHA: head, Ref: "rotate", Creator: "argocd[bot]", CreatedAt: at(6),
			URL: fmt.Sprintf("%s/repos/acme/api/deployments/%d", api, dep.ID),
			Statuses: []change.DeploymentStatus{
				{State: "success", CreatedAt: at(7), URL: "https://argo.example/7"},
				{State: "in_progress", CreatedAt: at(6)},
			},
		}},
		Memberships: []change.Membership{
			{Team: "acme/managers", User: "alice", Active: true},
			{Team: "acme/managers", User: "bob", Active: false},
		},
	}
	// The check run's link is the check-run endpoints' business.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(change.CheckRun{}, "URL")); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}

	// pull, files, commits, reviews, check runs, statuses, deployments,
	// one deployment's statuses, and the managers' member list (once for
	// both approvers).
	if n := githubCalls(gh); n != 9 {
		t.Errorf("a full gather made %d calls, want 9: %+v", n, gh.Calls())
	}
}

func TestNeedsLimitCalls(t *testing.T) {
	t.Parallel()
	routes := map[string]string{
		"pull":        "/repos/{owner}/{repo}/pulls/{pull_number}",
		"files":       "/repos/{owner}/{repo}/pulls/{pull_number}/files",
		"commits":     "/repos/{owner}/{repo}/pulls/{pull_number}/commits",
		"reviews":     "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
		"checks":      "/repos/{owner}/{repo}/commits/{ref}/check-runs",
		"statuses":    "/repos/{owner}/{repo}/commits/{ref}/statuses",
		"deployments": "/repos/{owner}/{repo}/deployments",
		"teams":       "/orgs/{org}/teams/{team_slug}/members",
	}
	tests := []struct {
		name  string
		needs change.Needs
		want  map[string]int
	}{
		{"nothing: the pull request only", change.Needs{}, map[string]int{"pull": 1}},
		{"files", change.Needs{Files: true}, map[string]int{"pull": 1, "files": 1}},
		{"commits and reviews", change.Needs{Commits: true, Reviews: true}, map[string]int{"pull": 1, "commits": 1, "reviews": 1}},
		{"staging evidence", change.Needs{CheckRuns: true, Statuses: true, StagingEnvironments: []string{"staging", "preprod", "staging"}},
			map[string]int{"pull": 1, "checks": 1, "statuses": 1, "deployments": 2}},
		{"managers read the reviews", change.Needs{ManagerTeams: []string{"acme/managers"}},
			map[string]int{"pull": 1, "reviews": 1, "teams": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			e.gh.AddReview(owner, name, 7, ghfake.Review{User: "alice"})
			e.gather(t, tt.needs)
			got := map[string]int{}
			for k, route := range routes {
				if n := e.gh.CountCalls("GET", route); n > 0 {
					got[k] = n
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if n := githubCalls(e.gh); n != sum(tt.want) {
				t.Errorf("%d calls in all, want %d", n, sum(tt.want))
			}
		})
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestPagination(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for i := range 230 {
		e.gh.AddFile(owner, name, 7, ghfake.File{Filename: fmt.Sprintf("f%03d", i)})
	}
	for i := range 120 {
		e.gh.AddReview(owner, name, 7, ghfake.Review{User: fmt.Sprintf("u%03d", i), State: "COMMENTED"})
	}
	f := e.gather(t, change.Needs{Files: true, Reviews: true})
	if len(f.Files) != 230 || f.Files[229] != "f229" || len(f.Reviews) != 120 || f.Reviews[119].User != "u119" {
		t.Errorf("got %d files, %d reviews", len(f.Files), len(f.Reviews))
	}
	if len(f.Gaps) != 0 {
		t.Errorf("gaps = %+v", f.Gaps)
	}
	files := e.gh.CountCalls("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files")
	reviews := e.gh.CountCalls("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
	if files != 3 || reviews != 2 {
		t.Errorf("pages: files %d, reviews %d; want 3 and 2 at 100 a page", files, reviews)
	}
}

func TestTruncation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		files, commits int
		wantFiles      int
		wantCommits    int
		want           []change.Gap
	}{
		{"under the caps", 20, 20, 20, 20, nil},
		{"commits over 250", 0, 260, 0, 250, []change.Gap{{Source: "commits", Truncated: true}}},
		{"exactly 250 commits", 0, 250, 0, 250, []change.Gap{{Source: "commits", Truncated: true}}},
		{"files over 3,000", 3001, 1, 3000, 1, []change.Gap{{Source: "files", Truncated: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t)
			for i := range tt.files {
				e.gh.AddFile(owner, name, 7, ghfake.File{Filename: fmt.Sprintf("f%04d", i)})
			}
			for i := range tt.commits {
				e.gh.AddCommit(owner, name, 7, ghfake.Commit{SHA: fmt.Sprintf("%040x", i+1), Author: ghfake.Person{Name: "a", Email: "a@example.com"}})
			}
			f := e.gather(t, change.Needs{Files: true, Commits: true})
			if len(f.Files) != tt.wantFiles || len(f.Commits) != tt.wantCommits {
				t.Errorf("got %d files, %d commits; want %d, %d", len(f.Files), len(f.Commits), tt.wantFiles, tt.wantCommits)
			}
			if diff := cmp.Diff(tt.want, f.Gaps, cmpopts.IgnoreFields(change.Gap{}, "Reason")); diff != "" {
				t.Errorf("gaps (-want +got):\n%s", diff)
			}
			for _, g := range f.Gaps {
				if !strings.Contains(g.Reason, fmt.Sprint(max(tt.files, tt.commits))) {
					t.Errorf("reason %q does not give the real count", g.Reason)
				}
			}
		})
	}
}

func TestMemberships(t *testing.T) {
	t.Parallel()
	e := setup(t)
	gh := e.gh
	for _, r := range []ghfake.Review{
		{User: "alice", State: "APPROVED"},                    // active member
		{User: "bob", State: "APPROVED"},                      // invited, pending
		{User: "carol", State: "APPROVED"},                    // not a member: 404
		{User: "dave", State: "APPROVED", SubmittedAt: at(1)}, // then asked for changes
		{User: "dave", State: "CHANGES_REQUESTED", SubmittedAt: at(2)},
		{User: "erin", State: "COMMENTED"},                        // never approved
		{User: "alice", State: "COMMENTED", SubmittedAt: at(100)}, // a comment keeps the approval
	} {
		gh.AddReview(owner, name, 7, r)
	}
	gh.SetTeamMember(owner, "managers", "alice", "active")
	gh.SetTeamMember(owner, "managers", "bob", "pending")
	gh.SetTeamMember(owner, "managers", "dave", "active")
	gh.SetTeamMember(owner, "leads", "carol", "active")
	gh.SetTeamMember("other", "managers", "carol", "active") // another org's team

	f := e.gather(t, change.Needs{ManagerTeams: []string{"acme/managers", "other/managers"}})
	want := []change.Membership{
		{Team: "acme/managers", User: "alice", Active: true},
		{Team: "acme/managers", User: "bob"},
		{Team: "acme/managers", User: "carol"},
		{Team: "other/managers", User: "alice"},
		{Team: "other/managers", User: "bob"},
		{Team: "other/managers", User: "carol"}, // the installation cannot see other orgs' teams
	}
	if diff := cmp.Diff(want, f.Memberships); diff != "" {
		t.Errorf("memberships (-want +got):\n%s", diff)
	}
}

func TestMemo(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.gh.AddReview(owner, name, 7, ghfake.Review{User: "alice"})
	e.gh.AddReview(owner, name, 7, ghfake.Review{User: "bob"})
	e.gh.SetTeamMember(owner, "managers", "alice", "active")

	// The same team named twice, as a repo and an org policy might: its
	// member list is read once, for both approvers.
	f := e.gather(t, change.Needs{ManagerTeams: []string{"acme/managers", "ACME/Managers"}, StagingEnvironments: []string{"staging", "staging"}})
	if n := e.gh.CountCalls("GET", "/orgs/{org}/teams/{team_slug}/members"); n != 1 {
		t.Errorf("member list calls = %d, want 1", n)
	}
	if n := e.gh.CountCalls("GET", "/repos/{owner}/{repo}/deployments"); n != 1 {
		t.Errorf("deployment calls = %d, want 1", n)
	}
	want := []change.Membership{
		{Team: "acme/managers", User: "alice", Active: true},
		{Team: "acme/managers", User: "bob"},
		{Team: "ACME/Managers", User: "alice", Active: true},
		{Team: "ACME/Managers", User: "bob"},
	}
	if diff := cmp.Diff(want, f.Memberships); diff != "" {
		t.Errorf("memberships (-want +got):\n%s", diff)
	}

	// A second Gather is a new evaluation: it asks again (the ETag cache
	// makes that a 304).
	e.gather(t, change.Needs{ManagerTeams: []string{"acme/managers"}})
	if n := e.gh.CountCalls("GET", "/orgs/{org}/teams/{team_slug}/members"); n != 2 {
		t.Errorf("member list calls after a second gather = %d, want 2", n)
	}
}

func TestHeadIsAuthoritative(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const pushed = "2222222222222222222222222222222222222222"
	e.gh.AddDeployment(owner, name, ghfake.Deployment{SHA: head, Environment: "staging"})
	e.gh.SetHead(owner, name, 7, pushed)
	dep := e.gh.AddDeployment(owner, name, ghfake.Deployment{SHA: pushed, Environment: "staging"})
	e.gh.AddStatus(owner, name, ghfake.Status{SHA: head, Context: "ci", State: "success"})

	s := e.subject()
	s.HeadSHA = head // what the webhook said before the push
	f, err := ghfacts.Gather(t.Context(), e.client, s, change.Needs{Statuses: true, StagingEnvironments: []string{"staging"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Subject.HeadSHA != pushed || f.PR.HeadSHA != pushed {
		t.Errorf("head = %s / %s, want %s", f.Subject.HeadSHA, f.PR.HeadSHA, pushed)
	}
	if len(f.Deployments) != 1 || f.Deployments[0].ID != dep.ID {
		t.Errorf("deployments = %+v, want only the pushed head's", f.Deployments)
	}
	if len(f.Statuses) != 0 {
		t.Errorf("statuses = %+v, want none for the new head", f.Statuses)
	}
}

func TestMerged(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const merge = "3333333333333333333333333333333333333333"
	e.gh.MergePullRequest(owner, name, 7, merge, "octo")
	f := e.gather(t, change.Needs{})
	if !f.PR.Merged || f.PR.State != "closed" || f.PR.MergeCommitSHA != merge || f.PR.MergedBy != "octo" || f.PR.MergedAt.IsZero() || f.Subject.MergeSHA != merge {
		t.Errorf("merged PR = %+v, subject %+v", f.PR, f.Subject)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// Three: a read is tried three times in passing.
	e.gh.FailNext(ghfake.MatchRoute("GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews"), 3, http.StatusBadGateway, nil, `{"message":"Server Error"}`)
	_, err := ghfacts.Gather(t.Context(), e.client, e.subject(), change.Needs{Reviews: true})
	if err == nil || !strings.Contains(err.Error(), "list reviews acme/api#7") {
		t.Fatalf("err = %v, want a wrapped reviews error", err)
	}
	if _, retry := ghapp.RetryDelay(err, time.Now()); !retry {
		t.Errorf("RetryDelay(%v): not retryable", err)
	}
	// The next attempt succeeds.
	e.gather(t, change.Needs{Reviews: true})

	s := e.subject()
	s.Number = 99
	_, err = ghfacts.Gather(t.Context(), e.client, s, change.Needs{})
	if !ghapp.IsNotFound(err) {
		t.Errorf("unknown pull request: err = %v, want 404", err)
	}
	var er *github.ErrorResponse
	if !errors.As(err, &er) {
		t.Errorf("err %T does not wrap *github.ErrorResponse", err)
	}
	if _, err := ghfacts.Gather(t.Context(), e.client, e.subject(), change.Needs{ManagerTeams: []string{"managers"}}); err == nil {
		t.Error("a team without its org: no error")
	}
}

func TestFetchFile(t *testing.T) {
	t.Parallel()
	e := setup(t)
	in := e.gh.AddRepo(e.inst, ghfake.Repo{Name: ".github"})
	policy := []byte("version: 1\nreview:\n  required: 2\n" + strings.Repeat("# padding past one base64 line\n", 5))
	e.gh.SetContent(owner, name, "main", ".github/changegate.yml", policy)
	e.gh.SetContent(owner, in.Name, "main", "changegate.yml", []byte("version: 1\n"))

	tests := []struct {
		name      string
		repo      change.Repo
		path, ref string
		want      []byte
		found     bool
	}{
		{"repo policy on the base branch", repo, ".github/changegate.yml", "main", policy, true},
		{"default branch when no ref", repo, ".github/changegate.yml", "", policy, true},
		{"absent on another ref", repo, ".github/changegate.yml", "rotate", nil, false},
		{"absent path", repo, "changegate.yml", "main", nil, false},
		{"org policy", change.Repo{Owner: owner, Name: ".github"}, "changegate.yml", "main", []byte("version: 1\n"), true},
		{"org without a .github repo", change.Repo{Owner: "other", Name: ".github"}, "changegate.yml", "main", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, found, err := ghfacts.FetchFile(t.Context(), e.client, tt.repo, tt.path, tt.ref)
			if err != nil || found != tt.found {
				t.Fatalf("FetchFile = found %v, err %v; want found %v", found, err, tt.found)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("error", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		e.gh.FailNext(ghfake.MatchRoute("GET /repos/{owner}/{repo}/contents/{path}"), 1, http.StatusInternalServerError, nil, `{"message":"boom"}`)
		if _, _, err := ghfacts.FetchFile(t.Context(), e.client, repo, ".github/changegate.yml", "main"); err == nil {
			t.Error("500: no error")
		}
	})
}

func TestPullsForCommit(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const shared, merge = "4444444444444444444444444444444444444444", "5555555555555555555555555555555555555555"
	e.gh.AddCommit(owner, name, 7, ghfake.Commit{SHA: shared})
	e.gh.AddPullRequest(owner, name, ghfake.PullRequest{Number: 8, HeadSHA: "6666666666666666666666666666666666666666"})
	e.gh.AddCommit(owner, name, 8, ghfake.Commit{SHA: shared})
	e.gh.MergePullRequest(owner, name, 8, merge, "octo")
	e.gh.AddPullRequest(owner, name, ghfake.PullRequest{Number: 9, HeadSHA: "7777777777777777777777777777777777777777"})

	tests := []struct {
		sha  string
		want []int
	}{
		{shared, []int{7, 8}},
		{head, []int{7}},
		{merge, []int{8}},
		{"8888888888888888888888888888888888888888", []int{}},
	}
	for _, tt := range tests {
		got, err := ghfacts.PullsForCommit(t.Context(), e.client, repo, tt.sha)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("PullsForCommit(%s) (-want +got):\n%s", tt.sha[:7], diff)
		}
	}
}
