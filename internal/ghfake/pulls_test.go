package ghfake_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/ghfake"
)

func TestPullRequests(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	acme := s.AddInstallation(ghfake.Installation{Account: "acme"})
	other := s.AddInstallation(ghfake.Installation{Account: "other"})
	s.AddRepo(acme.ID, ghfake.Repo{Name: "api", DefaultBranch: "trunk"})
	s.AddRepo(other.ID, ghfake.Repo{Name: "web"})
	created := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	pr := s.AddPullRequest("acme", "api", ghfake.PullRequest{HeadSHA: "aaa", HeadRef: "feat", BaseRef: "trunk", Author: "octo", Labels: []string{"emergency"}, Draft: true, CreatedAt: created})
	if pr.Number != 1 || pr.State != "open" {
		t.Fatalf("defaults: %+v", pr)
	}
	s.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 2, HeadSHA: "bbb", HeadRef: "other"})
	s.MergePullRequest("acme", "api", 2, "mmm", "octo")
	for i := range 260 {
		s.AddCommit("acme", "api", 1, ghfake.Commit{SHA: fmt.Sprintf("c%03d", i), Author: ghfake.Person{Login: "octo"}})
	}
	for i := range 3005 {
		s.AddFile("acme", "api", 1, ghfake.File{Filename: fmt.Sprintf("f%04d", i), Additions: 1})
	}
	c := newClient(t, s, installationTransport(t, s, acme.ID))
	ctx := t.Context()

	got, _, err := c.PullRequests.Get(ctx, "acme", "api", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetCommits() != 260 || got.GetChangedFiles() != 3005 || got.GetAdditions() != 3005 || !got.GetDraft() ||
		got.GetBase().GetRepo().GetDefaultBranch() != "trunk" || got.GetHead().GetSHA() != "aaa" || got.GetUser().GetLogin() != "octo" ||
		got.Labels[0].GetName() != "emergency" || got.GetCreatedAt().Time != created || got.MergedAt != nil {
		t.Errorf("pull request = %+v", got)
	}
	commits, resp, err := c.PullRequests.ListCommits(ctx, "acme", "api", 1, &github.ListOptions{PerPage: 100, Page: 3})
	if err != nil || len(commits) != 50 || resp.NextPage != 0 || commits[49].GetSHA() != "c249" || commits[1].Parents[0].GetSHA() != "c200" {
		t.Errorf("third page of commits: %d, next %d, %v", len(commits), resp.NextPage, err)
	}
	files, resp, err := c.PullRequests.ListFiles(ctx, "acme", "api", 1, &github.ListOptions{PerPage: 100, Page: 30})
	if err != nil || len(files) != 100 || resp.NextPage != 0 || files[99].GetFilename() != "f2999" {
		t.Errorf("last page of files: %d, next %d, %v", len(files), resp.NextPage, err)
	}

	open, _, err := c.PullRequests.List(ctx, "acme", "api", &github.PullRequestListOptions{State: "open"})
	if err != nil || len(open) != 1 || open[0].GetNumber() != 1 {
		t.Errorf("open pulls = %v, %v", open, err)
	}
	all, _, err := c.PullRequests.List(ctx, "acme", "api", &github.PullRequestListOptions{State: "all", Head: "acme:other"})
	if err != nil || len(all) != 1 || all[0].GetNumber() != 2 || all[0].GetMergeCommitSHA() != "mmm" {
		t.Errorf("pulls by head = %v, %v", all, err)
	}
	if _, _, err := c.PullRequests.Get(ctx, "other", "web", 1); !isStatus(err, 404) {
		t.Errorf("another installation's repo: %v", err)
	}
	if _, _, err := c.PullRequests.Get(ctx, "acme", "api", 3); !isStatus(err, 404) {
		t.Errorf("unknown pull request: %v", err)
	}
}

func TestReviewsStatusesDeployments(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	in := s.AddInstallation(ghfake.Installation{Account: "acme"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	s.AddPullRequest("acme", "api", ghfake.PullRequest{Number: 4, HeadSHA: "aaa"})
	r1 := s.AddReview("acme", "api", 4, ghfake.Review{User: "alice"})
	s.SetHead("acme", "api", 4, "bbb")
	s.AddReview("acme", "api", 4, ghfake.Review{User: "bob", State: "CHANGES_REQUESTED"})
	s.DismissReview(r1.ID)
	c := newClient(t, s, installationTransport(t, s, in.ID))
	ctx := t.Context()

	reviews, _, err := c.PullRequests.ListReviews(ctx, "acme", "api", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	type rv struct{ User, State, Commit string }
	var gotReviews []rv
	for _, r := range reviews {
		gotReviews = append(gotReviews, rv{r.GetUser().GetLogin(), r.GetState(), r.GetCommitID()})
	}
	if diff := cmp.Diff([]rv{{"alice", "DISMISSED", "aaa"}, {"bob", "CHANGES_REQUESTED", "bbb"}}, gotReviews); diff != "" {
		t.Errorf("reviews (-want +got):\n%s", diff)
	}

	for i, st := range []string{"pending", "failure", "success"} {
		s.AddStatus("acme", "api", ghfake.Status{SHA: "bbb", Context: "ci", State: st, CreatedAt: time.Unix(int64(1e9+i), 0)})
	}
	sts, _, err := c.Repositories.ListStatuses(ctx, "acme", "api", "bbb", nil)
	if err != nil || len(sts) != 3 || sts[0].GetState() != "success" || sts[2].GetState() != "pending" {
		t.Errorf("statuses = %v, %v; want 3 newest first", sts, err)
	}
	if sts, _, _ := c.Repositories.ListStatuses(ctx, "acme", "api", "ccc", nil); sts == nil || len(sts) != 0 {
		t.Errorf("statuses of an unknown commit = %v, want []", sts)
	}

	d1 := s.AddDeployment("acme", "api", ghfake.Deployment{SHA: "bbb", Environment: "staging"})
	s.AddDeployment("acme", "api", ghfake.Deployment{SHA: "bbb", Environment: "production"})
	s.AddDeployment("acme", "api", ghfake.Deployment{SHA: "aaa", Environment: "staging"})
	s.AddDeploymentStatus("acme", "api", d1.ID, ghfake.DeploymentStatus{State: "in_progress"})
	s.AddDeploymentStatus("acme", "api", d1.ID, ghfake.DeploymentStatus{State: "success"})
	deps, _, err := c.Repositories.ListDeployments(ctx, "acme", "api", &github.DeploymentsListOptions{SHA: "bbb", Environment: "staging"})
	if err != nil || len(deps) != 1 || deps[0].GetID() != d1.ID || deps[0].GetRef() != "bbb" || deps[0].GetCreator().GetLogin() != "octocat" {
		t.Errorf("deployments = %v, %v", deps, err)
	}
	dsts, _, err := c.Repositories.ListDeploymentStatuses(ctx, "acme", "api", d1.ID, nil)
	if err != nil || len(dsts) != 2 || dsts[0].GetState() != "success" {
		t.Errorf("deployment statuses = %v, %v; want newest first", dsts, err)
	}
	if _, _, err := c.Repositories.ListDeploymentStatuses(ctx, "acme", "api", 1, nil); !isStatus(err, 404) {
		t.Errorf("unknown deployment: %v", err)
	}
}

func TestContentsAndTeams(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	in := s.AddInstallation(ghfake.Installation{Account: "acme"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	s.SetContent("acme", "api", "main", ".github/changegate.yml", []byte("hello\n"))
	s.SetTeamMember("acme", "managers", "alice", "active")
	s.SetTeamMember("acme", "managers", "bob", "pending")
	tok, err := installationTransport(t, s, in.ID).Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	status, _, body := do(t, "GET", s.URL()+"repos/acme/api/contents/.github/changegate.yml?ref=main", tokenAuth(tok))
	var file struct{ Type, Encoding, Content, SHA, Path string }
	if err := json.Unmarshal([]byte(body), &file); err != nil || status != 200 {
		t.Fatalf("contents: %d %s", status, body)
	}
	// The git blob SHA of "hello\n", as `git hash-object` gives it.
	want := struct{ Type, Encoding, Content, SHA, Path string }{"file", "base64", "aGVsbG8K\n", "ce013625030ba8dba906f756967f9e9ca394464a", ".github/changegate.yml"}
	if diff := cmp.Diff(want, file); diff != "" {
		t.Errorf("contents (-want +got):\n%s", diff)
	}
	for _, u := range []string{"repos/acme/api/contents/.github/changegate.yml?ref=feature", "repos/acme/api/contents/nope.yml"} {
		if status, _, _ := do(t, "GET", s.URL()+u, tokenAuth(tok)); status != 404 {
			t.Errorf("%s: status %d, want 404", u, status)
		}
	}

	c := newClient(t, s, installationTransport(t, s, in.ID))
	for user, want := range map[string]string{"alice": "active", "bob": "pending"} {
		m, _, err := c.Teams.GetTeamMembershipBySlug(t.Context(), "acme", "managers", user)
		if err != nil || m.GetState() != want || m.GetRole() != "member" {
			t.Errorf("%s: membership %v, %v; want %s", user, m, err, want)
		}
	}
	s.SetTeamMember("acme", "managers", "bob", "")
	for _, tt := range []struct{ org, user string }{{"acme", "bob"}, {"acme", "carol"}, {"other", "alice"}} {
		if _, _, err := c.Teams.GetTeamMembershipBySlug(t.Context(), tt.org, "managers", tt.user); !isStatus(err, 404) {
			t.Errorf("%s in %s/managers: %v, want 404", tt.user, tt.org, err)
		}
	}
	if status, _, _ := do(t, "GET", s.URL()+"orgs/acme/teams/managers/memberships/alice", ""); status != 401 {
		t.Errorf("membership without a token: %d, want 401", status)
	}
}

func TestCommitPulls(t *testing.T) {
	t.Parallel()
	s := ghfake.New(t)
	in := s.AddInstallation(ghfake.Installation{Account: "acme"})
	s.AddRepo(in.ID, ghfake.Repo{Name: "api"})
	s.AddPullRequest("acme", "api", ghfake.PullRequest{HeadSHA: "aaa"})
	s.AddCommit("acme", "api", 1, ghfake.Commit{SHA: "c1"})
	s.AddPullRequest("acme", "api", ghfake.PullRequest{HeadSHA: "bbb"})
	s.AddCommit("acme", "api", 2, ghfake.Commit{SHA: "c1"})
	c := newClient(t, s, installationTransport(t, s, in.ID))
	prs, _, err := c.PullRequests.ListPullRequestsWithCommit(t.Context(), "acme", "api", "c1", nil)
	if err != nil || len(prs) != 2 || prs[0].GetNumber() != 1 || prs[1].GetNumber() != 2 {
		t.Errorf("pulls of c1 = %v, %v", prs, err)
	}
}
