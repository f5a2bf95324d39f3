// Package ghfacts gathers the facts of a pull request from GitHub's REST
// API (go-github v60) into an immutable change.Facts.
//
// Only what the policy's controls need is read (Needs). Within one Gather
// no URL is fetched twice; across Gathers the client's ETag cache (ghapp)
// makes repeated reads cheap. A GitHub error aborts the Gather, to be
// retried; only GitHub's own list caps (250 commits, 3,000 files) become a
// change.Gap, because retrying cannot lift them.
package ghfacts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
)

// GitHub's caps on a pull request's lists.
const (
	MaxFiles   = 3000
	MaxCommits = 250
)

// perPage is GitHub's largest page.
const perPage = 100

// Gather reads the pull request subject names, then the lists needs asks
// for. The pull request's head SHA is authoritative: Subject.HeadSHA,
// BaseRef and HeadRef are taken from it, and checks, statuses and
// deployments are read for that SHA.
func Gather(ctx context.Context, client *github.Client, subject change.Subject, needs change.Needs) (*change.Facts, error) {
	f, err := PullRequest(ctx, client, subject)
	if err != nil {
		return nil, err
	}
	return More(ctx, client, f, needs)
}

// PullRequest reads the pull request alone: its base branch decides the
// policy, which decides what else to read.
func PullRequest(ctx context.Context, client *github.Client, subject change.Subject) (*change.Facts, error) {
	g := &gatherer{client: client, repo: subject.Repo, number: subject.Number, memo: map[string]any{}}
	f := &change.Facts{Subject: subject}
	pr, err := g.pull(ctx)
	if err != nil {
		return nil, err
	}
	f.PR = convertPull(pr)
	f.Subject.HeadSHA, f.Subject.BaseRef, f.Subject.HeadRef = f.PR.HeadSHA, f.PR.BaseRef, f.PR.HeadRef
	if f.Subject.MergeSHA == "" {
		f.Subject.MergeSHA = f.PR.MergeCommitSHA
	}
	return f, nil
}

// More reads the lists needs asks for on top of a snapshot from
// PullRequest, and returns a new snapshot; base is not changed. The lists
// that depend on nothing but the pull request are read at once; the
// promotions (which read the files) and the memberships (which read the
// approvers) after them. What the snapshot holds, its order and the first
// error do not depend on which read finished first.
func More(ctx context.Context, client *github.Client, base *change.Facts, needs change.Needs) (*change.Facts, error) {
	for _, team := range needs.ManagerTeams {
		if _, _, err := splitTeam(team); err != nil {
			return nil, err
		}
	}
	g := &gatherer{client: client, repo: base.Subject.Repo, number: base.Subject.Number, memo: map[string]any{}}
	f := &change.Facts{Subject: base.Subject, PR: base.PR}
	if err := g.lists(ctx, f, needs); err != nil {
		return nil, err
	}
	if len(needs.Promotions) > 0 {
		if err := g.promotions(ctx, f, needs); err != nil {
			return nil, err
		}
	}
	for _, team := range needs.ManagerTeams {
		for _, user := range Approvers(f.Reviews) {
			m, err := g.membership(ctx, team, user)
			if err != nil {
				return nil, err
			}
			f.Memberships = append(f.Memberships, m)
		}
	}
	return f, nil
}

// lists reads, concurrently, the lists that depend only on the pull
// request, each into its own slot, and then fills f from the slots in a
// fixed order.
func (g *gatherer) lists(ctx context.Context, f *change.Facts, needs change.Needs) error {
	head := f.PR.HeadSHA
	envs := dedupe(needs.StagingEnvironments)
	var (
		files            []string
		listedFiles      int
		commits          []change.Commit
		reviews          []change.Review
		runs             []change.CheckRun
		statuses         []change.Status
		deps             = make([][]change.Deployment, len(envs))
		filesErr, cmtErr error
		revErr, runErr   error
		stErr            error
		depErr           = make([]error, len(envs))
	)
	var wg sync.WaitGroup
	read := func(want bool, fn func()) {
		if want {
			wg.Go(fn)
		}
	}
	read(needs.Files, func() { files, listedFiles, filesErr = g.files(ctx) })
	read(needs.Commits, func() { commits, cmtErr = g.commits(ctx) })
	// Memberships are read for approvers, so they need the reviews.
	read(needs.Reviews || len(needs.ManagerTeams) > 0, func() { reviews, revErr = g.reviews(ctx) })
	read(needs.CheckRuns, func() { runs, runErr = g.checkRuns(ctx, head) })
	read(needs.Statuses, func() { statuses, stErr = g.statuses(ctx, head) })
	for i, env := range envs {
		read(true, func() { deps[i], depErr[i] = g.deployments(ctx, head, env) })
	}
	wg.Wait()
	if err := firstError(append([]error{filesErr, cmtErr, revErr, runErr, stErr}, depErr...)); err != nil {
		return err
	}
	f.Files, f.Commits, f.Reviews, f.CheckRuns, f.Statuses = files, commits, reviews, runs, statuses
	if needs.Files {
		if gap, ok := truncated("files", listedFiles, f.PR.ChangedFiles, MaxFiles); ok {
			f.Gaps = append(f.Gaps, gap)
		}
	}
	if needs.Commits {
		if gap, ok := truncated("commits", len(f.Commits), f.PR.CommitCount, MaxCommits); ok {
			f.Gaps = append(f.Gaps, gap)
		}
	}
	for _, d := range deps {
		f.Deployments = append(f.Deployments, d...)
	}
	return nil
}

// firstError is the first error in errs, in their order.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// truncated says whether a list stopped short of the count the pull request
// reports, or at GitHub's cap, where it cannot be known to be complete.
func truncated(source string, got, total, limit int) (change.Gap, bool) {
	if got < total || got >= limit {
		return change.Gap{
			Source:    source,
			Truncated: true,
			Reason:    fmt.Sprintf("GitHub lists at most %d %s; the pull request has %d and %d were listed", limit, source, total, got),
		}, true
	}
	return change.Gap{}, false
}

// Approvers are the users whose latest review that approves or objects is
// an approval, in the order of their first review. Comments neither give
// nor withdraw approval; a dismissal withdraws it.
func Approvers(reviews []change.Review) []string {
	latest := map[string]change.Review{}
	var order []string
	for _, r := range reviews {
		switch r.State {
		case change.ReviewApproved, change.ReviewChangesRequested, change.ReviewDismissed:
		default:
			continue
		}
		k := strings.ToLower(r.User)
		prev, seen := latest[k]
		if !seen {
			order = append(order, k)
		}
		// Reviews are listed in submission order; a tie keeps list order.
		if !seen || !r.SubmittedAt.Before(prev.SubmittedAt) {
			latest[k] = r
		}
	}
	var out []string
	for _, k := range order {
		if r := latest[k]; r.State == change.ReviewApproved {
			out = append(out, r.User)
		}
	}
	return out
}

// gatherer holds one Gather's memo: results by request, so no URL is
// fetched twice however often the facts refer to it.
type gatherer struct {
	client *github.Client
	repo   change.Repo
	number int
	mu     sync.Mutex // guards memo: lists are read concurrently
	memo   map[string]any
}

// memoised returns the result of fetch for key, calling it once per
// Gather. GitHub paths are case-insensitive, and so are keys.
func memoised[T any](g *gatherer, key string, fetch func() (T, error)) (T, error) {
	key = strings.ToLower(key)
	g.mu.Lock()
	v, ok := g.memo[key]
	g.mu.Unlock()
	if ok {
		return v.(T), nil
	}
	got, err := fetch()
	if err != nil {
		return got, err
	}
	g.mu.Lock()
	g.memo[key] = got
	g.mu.Unlock()
	return got, nil
}

// listAll follows a list's pages.
func listAll[T any](list func(opts github.ListOptions) ([]T, *github.Response, error)) ([]T, error) {
	opts := github.ListOptions{PerPage: perPage}
	var all []T
	for {
		page, resp, err := list(opts)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if resp == nil || resp.NextPage == 0 {
			return all, nil
		}
		opts.Page = resp.NextPage
	}
}

func (g *gatherer) pull(ctx context.Context) (*github.PullRequest, error) {
	pr, _, err := g.client.PullRequests.Get(ctx, g.repo.Owner, g.repo.Name, g.number)
	if err != nil {
		return nil, fmt.Errorf("get pull request %s#%d: %w", g.repo, g.number, err)
	}
	return pr, nil
}

// files lists the changed paths and how many files GitHub listed; a rename
// contributes both names, because moving a file out of a production path
// changes production too.
func (g *gatherer) files(ctx context.Context) ([]string, int, error) {
	files, err := listAll(func(o github.ListOptions) ([]*github.CommitFile, *github.Response, error) {
		return g.client.PullRequests.ListFiles(ctx, g.repo.Owner, g.repo.Name, g.number, &o)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list files %s#%d: %w", g.repo, g.number, err)
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, f.GetFilename())
		if p := f.GetPreviousFilename(); p != "" {
			out = append(out, p)
		}
	}
	return out, len(files), nil
}

func (g *gatherer) commits(ctx context.Context) ([]change.Commit, error) {
	commits, err := listAll(func(o github.ListOptions) ([]*github.RepositoryCommit, *github.Response, error) {
		return g.client.PullRequests.ListCommits(ctx, g.repo.Owner, g.repo.Name, g.number, &o)
	})
	if err != nil {
		return nil, fmt.Errorf("list commits %s#%d: %w", g.repo, g.number, err)
	}
	out := make([]change.Commit, 0, len(commits))
	for _, c := range commits {
		out = append(out, change.Commit{
			SHA:       c.GetSHA(),
			Author:    person(c.GetCommit().GetAuthor(), c.GetAuthor()),
			Committer: person(c.GetCommit().GetCommitter(), c.GetCommitter()),
			CoAuthors: CoAuthors(c.GetCommit().GetMessage()),
		})
	}
	return out, nil
}

// person is a commit's git identity, with the account GitHub linked it to
// or, failing that, the one its noreply email names.
func person(a *github.CommitAuthor, u *github.User) change.Person {
	p := change.Person{Name: a.GetName(), Email: a.GetEmail(), Login: u.GetLogin()}
	if p.Login == "" {
		p.Login = LoginFromEmail(p.Email)
	}
	return p
}

func (g *gatherer) reviews(ctx context.Context) ([]change.Review, error) {
	reviews, err := listAll(func(o github.ListOptions) ([]*github.PullRequestReview, *github.Response, error) {
		return g.client.PullRequests.ListReviews(ctx, g.repo.Owner, g.repo.Name, g.number, &o)
	})
	if err != nil {
		return nil, fmt.Errorf("list reviews %s#%d: %w", g.repo, g.number, err)
	}
	out := make([]change.Review, 0, len(reviews))
	for _, r := range reviews {
		out = append(out, change.Review{
			ID:          r.GetID(),
			User:        r.GetUser().GetLogin(),
			State:       r.GetState(),
			CommitID:    r.GetCommitID(),
			SubmittedAt: r.GetSubmittedAt().Time,
			URL:         r.GetHTMLURL(),
		})
	}
	return out, nil
}

func (g *gatherer) checkRuns(ctx context.Context, sha string) ([]change.CheckRun, error) {
	opts := &github.ListCheckRunsOptions{ListOptions: github.ListOptions{PerPage: perPage}}
	var out []change.CheckRun
	for {
		res, resp, err := g.client.Checks.ListCheckRunsForRef(ctx, g.repo.Owner, g.repo.Name, sha, opts)
		if err != nil {
			return nil, fmt.Errorf("list check runs %s@%s: %w", g.repo, sha, err)
		}
		for _, cr := range res.CheckRuns {
			out = append(out, change.CheckRun{
				Name:        cr.GetName(),
				HeadSHA:     cr.GetHeadSHA(),
				Status:      cr.GetStatus(),
				Conclusion:  cr.GetConclusion(),
				App:         cr.GetApp().GetSlug(),
				CompletedAt: cr.GetCompletedAt().Time,
				URL:         cmp.Or(cr.GetHTMLURL(), cr.GetDetailsURL()),
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// statuses keeps every status, newest first as GitHub lists them; the
// policy takes the latest per context.
func (g *gatherer) statuses(ctx context.Context, sha string) ([]change.Status, error) {
	sts, err := listAll(func(o github.ListOptions) ([]*github.RepoStatus, *github.Response, error) {
		return g.client.Repositories.ListStatuses(ctx, g.repo.Owner, g.repo.Name, sha, &o)
	})
	if err != nil {
		return nil, fmt.Errorf("list statuses %s@%s: %w", g.repo, sha, err)
	}
	out := make([]change.Status, 0, len(sts))
	for _, s := range sts {
		out = append(out, change.Status{
			Context:   s.GetContext(),
			State:     s.GetState(),
			SHA:       sha,
			CreatedAt: s.GetCreatedAt().Time,
			URL:       s.GetTargetURL(),
		})
	}
	return out, nil
}

// deployments of sha to env, each with its statuses newest first.
func (g *gatherer) deployments(ctx context.Context, sha, env string) ([]change.Deployment, error) {
	key := fmt.Sprintf("repos/%s/deployments?sha=%s&environment=%s", g.repo, sha, env)
	return memoised(g, key, func() ([]change.Deployment, error) {
		deps, err := listAll(func(o github.ListOptions) ([]*github.Deployment, *github.Response, error) {
			return g.client.Repositories.ListDeployments(ctx, g.repo.Owner, g.repo.Name,
				&github.DeploymentsListOptions{SHA: sha, Environment: env, ListOptions: o})
		})
		if err != nil {
			return nil, fmt.Errorf("list deployments %s@%s to %s: %w", g.repo, sha, env, err)
		}
		var out []change.Deployment
		for _, d := range deps {
			if d.GetSHA() != sha { // GitHub filtered already; never trust another SHA's run
				continue
			}
			sts, err := g.deploymentStatuses(ctx, d.GetID())
			if err != nil {
				return nil, err
			}
			out = append(out, change.Deployment{
				ID:          d.GetID(),
				Environment: d.GetEnvironment(),
				SHA:         d.GetSHA(),
				Ref:         d.GetRef(),
				Creator:     d.GetCreator().GetLogin(),
				CreatedAt:   d.GetCreatedAt().Time,
				URL:         d.GetURL(),
				Statuses:    sts,
			})
		}
		return out, nil
	})
}

func (g *gatherer) deploymentStatuses(ctx context.Context, id int64) ([]change.DeploymentStatus, error) {
	key := fmt.Sprintf("repos/%s/deployments/%d/statuses", g.repo, id)
	return memoised(g, key, func() ([]change.DeploymentStatus, error) {
		sts, err := listAll(func(o github.ListOptions) ([]*github.DeploymentStatus, *github.Response, error) {
			return g.client.Repositories.ListDeploymentStatuses(ctx, g.repo.Owner, g.repo.Name, id, &o)
		})
		if err != nil {
			return nil, fmt.Errorf("list statuses of deployment %d in %s: %w", id, g.repo, err)
		}
		out := make([]change.DeploymentStatus, 0, len(sts))
		for _, s := range sts {
			out = append(out, change.DeploymentStatus{
				State:     s.GetState(),
				CreatedAt: s.GetCreatedAt().Time,
				URL:       cmp.Or(s.GetLogURL(), s.GetTargetURL(), s.GetEnvironmentURL()),
			})
		}
		return out, nil
	})
}

// membership reads whether user is an active member of team ("org/slug").
// The team's member list is read once per evaluation, whoever asks, and
// through the ETag cache it costs no rate limit while the team is
// unchanged: one lookup per participant was a counted 404 each for every
// non-member. Pending invitations are not members.
func (g *gatherer) membership(ctx context.Context, team, user string) (change.Membership, error) {
	members, err := g.teamMembers(ctx, team)
	return change.Membership{Team: team, User: user, Active: members[strings.ToLower(user)]}, err
}

// teamMembers lists a team's members by lowercase login.
func (g *gatherer) teamMembers(ctx context.Context, team string) (map[string]bool, error) {
	org, slug, err := splitTeam(team)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("orgs/%s/teams/%s/members", org, slug)
	return memoised(g, key, func() (map[string]bool, error) {
		users, err := listAll(func(o github.ListOptions) ([]*github.User, *github.Response, error) {
			return g.client.Teams.ListTeamMembersBySlug(ctx, org, slug, &github.TeamListTeamMembersOptions{ListOptions: o})
		})
		switch {
		case isNotFound(err):
			// The team does not exist, or the App may not see it: nobody
			// is a member.
			return map[string]bool{}, nil
		case err != nil:
			return nil, fmt.Errorf("list members of %s: %w", team, err)
		}
		out := make(map[string]bool, len(users))
		for _, u := range users {
			out[strings.ToLower(u.GetLogin())] = true
		}
		return out, nil
	})
}

func splitTeam(team string) (org, slug string, err error) {
	org, slug, ok := strings.Cut(team, "/")
	if !ok || org == "" || slug == "" || strings.Contains(slug, "/") {
		return "", "", fmt.Errorf("manager team %q: want org/slug", team)
	}
	return org, slug, nil
}

func convertPull(pr *github.PullRequest) change.PullRequest {
	out := change.PullRequest{
		Number:        pr.GetNumber(),
		URL:           pr.GetHTMLURL(),
		Title:         pr.GetTitle(),
		Body:          pr.GetBody(),
		Author:        pr.GetUser().GetLogin(),
		State:         pr.GetState(),
		Draft:         pr.GetDraft(),
		Merged:        pr.GetMerged(),
		BaseRef:       pr.GetBase().GetRef(),
		HeadRef:       pr.GetHead().GetRef(),
		HeadSHA:       pr.GetHead().GetSHA(),
		BaseSHA:       pr.GetBase().GetSHA(),
		DefaultBranch: pr.GetBase().GetRepo().GetDefaultBranch(),
		ChangedFiles:  pr.GetChangedFiles(),
		CommitCount:   pr.GetCommits(),
		CreatedAt:     pr.GetCreatedAt().Time,
		MergedAt:      pr.GetMergedAt().Time,
		MergedBy:      pr.GetMergedBy().GetLogin(),
	}
	// An open pull request's merge_commit_sha is GitHub's test merge, not
	// a commit on the base branch.
	if out.Merged {
		out.MergeCommitSHA = pr.GetMergeCommitSHA()
	}
	for _, l := range pr.Labels {
		out.Labels = append(out.Labels, l.GetName())
	}
	for _, a := range pr.Assignees {
		out.Assignees = append(out.Assignees, a.GetLogin())
	}
	return out
}

// FetchFile reads a file on ref through the contents API. A file that does
// not exist (404) is found=false with a nil error.
func FetchFile(ctx context.Context, client *github.Client, repo change.Repo, path, ref string) (data []byte, found bool, err error) {
	fc, dir, _, err := client.Repositories.GetContents(ctx, repo.Owner, repo.Name, path, &github.RepositoryContentGetOptions{Ref: ref})
	switch {
	case isNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("get %s@%s in %s: %w", path, ref, repo, err)
	case fc == nil || dir != nil:
		return nil, false, fmt.Errorf("get %s@%s in %s: %w", path, ref, repo, errNotFile)
	}
	s, err := fc.GetContent()
	if err != nil {
		return nil, false, fmt.Errorf("decode %s@%s in %s: %w", path, ref, repo, err)
	}
	return []byte(s), true, nil
}

var errNotFile = errors.New("not a file")

// PullsForCommit lists the numbers of the open and closed pull requests
// that contain a commit.
func PullsForCommit(ctx context.Context, client *github.Client, repo change.Repo, sha string) ([]int, error) {
	prs, err := listAll(func(o github.ListOptions) ([]*github.PullRequest, *github.Response, error) {
		return client.PullRequests.ListPullRequestsWithCommit(ctx, repo.Owner, repo.Name, sha, &o)
	})
	if err != nil {
		return nil, fmt.Errorf("list pull requests of %s@%s: %w", repo, sha, err)
	}
	out := make([]int, 0, len(prs))
	for _, pr := range prs {
		if !slices.Contains(out, pr.GetNumber()) {
			out = append(out, pr.GetNumber())
		}
	}
	return out, nil
}

func dedupe(ss []string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// isNotFound reports whether GitHub answered 404.
func isNotFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}

// PullRequestsForCommit lists the pull requests that contain a commit, with
// whether and where they were merged (the list endpoint reports merged_at,
// not merged).
func PullRequestsForCommit(ctx context.Context, client *github.Client, repo change.Repo, sha string) ([]change.PullRequest, error) {
	prs, err := listAll(func(o github.ListOptions) ([]*github.PullRequest, *github.Response, error) {
		return client.PullRequests.ListPullRequestsWithCommit(ctx, repo.Owner, repo.Name, sha, &o)
	})
	if err != nil {
		return nil, fmt.Errorf("list pull requests of %s@%s: %w", repo, sha, err)
	}
	out := make([]change.PullRequest, 0, len(prs))
	for _, pr := range prs {
		c := convertPull(pr)
		c.Merged = pr.MergedAt != nil
		if c.Merged {
			c.MergeCommitSHA = pr.GetMergeCommitSHA()
		}
		out = append(out, c)
	}
	return out, nil
}

// Deployments lists the deployments of sha to env, with their statuses.
func Deployments(ctx context.Context, client *github.Client, repo change.Repo, sha, env string) ([]change.Deployment, error) {
	g := &gatherer{client: client, repo: repo, memo: map[string]any{}}
	return g.deployments(ctx, sha, env)
}

// ProtectionRuleApps lists the Apps whose custom deployment protection
// rules are enabled on an environment. An environment GitHub does not know
// has none.
func ProtectionRuleApps(ctx context.Context, client *github.Client, repo change.Repo, environment string) ([]int64, error) {
	list, _, err := client.Repositories.GetAllDeploymentProtectionRules(ctx, repo.Owner, repo.Name, url.PathEscape(environment))
	var gerr *github.ErrorResponse
	if errors.As(err, &gerr) && gerr.Response != nil && gerr.Response.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list protection rules of %s environment %s: %w", repo, environment, err)
	}
	var apps []int64
	for _, r := range list.ProtectionRules {
		if r.GetEnabled() && r.App != nil {
			apps = append(apps, r.App.GetID())
		}
	}
	return apps, nil
}

// maxGroupCommits bounds the commits of a merge group read for the pull
// requests in it; GitHub's groups hold at most 100 entries.
const maxGroupCommits = 250

// mergeGroupPR finds the pull request a merge queue commit was made for:
// "Merge pull request #N from …" for the merge method, "Title (#N)" on the
// first line for squash and rebase.
var mergeGroupPR = regexp.MustCompile(`^Merge pull request #(\d+) |\(#(\d+)\)\s*$`)

// queueRef is the head ref of a merge group entry: the pull request that
// entry adds is pr-N.
var queueRef = regexp.MustCompile(`^refs/heads/gh-readonly-queue/.+/pr-(\d+)-[0-9a-f]{40}$`)

// MergeGroupPulls lists the pull requests of a merge group, oldest first:
// those the group's commits were made for (base...head), and the one its
// head ref names.
func MergeGroupPulls(ctx context.Context, client *github.Client, repo change.Repo, baseSHA, headSHA, headRef string) ([]int, error) {
	var out []int
	add := func(s string) {
		if n, err := strconv.Atoi(s); err == nil && n > 0 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	comparison, _, err := client.Repositories.CompareCommits(ctx, repo.Owner, repo.Name, baseSHA, headSHA, &github.ListOptions{PerPage: maxGroupCommits})
	if err != nil {
		return nil, fmt.Errorf("compare %s %s...%s: %w", repo, baseSHA, headSHA, err)
	}
	for _, c := range comparison.Commits {
		first, _, _ := strings.Cut(c.GetCommit().GetMessage(), "\n")
		if m := mergeGroupPR.FindStringSubmatch(first); m != nil {
			add(m[1] + m[2])
		}
	}
	if m := queueRef.FindStringSubmatch(headRef); m != nil {
		add(m[1])
	}
	return out, nil
}

// CommitMessage is a commit's message; empty when GitHub does not know
// the commit.
func CommitMessage(ctx context.Context, client *github.Client, repo change.Repo, sha string) (string, error) {
	c, _, err := client.Repositories.GetCommit(ctx, repo.Owner, repo.Name, sha, nil)
	var gerr *github.ErrorResponse
	if errors.As(err, &gerr) && gerr.Response != nil &&
		(gerr.Response.StatusCode == http.StatusNotFound || gerr.Response.StatusCode == http.StatusUnprocessableEntity) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read commit %s@%s: %w", repo, sha, err)
	}
	return c.GetCommit().GetMessage(), nil
}

// BranchCommits lists a branch's commits dated from since to until, newest
// first, with their authors and committers.
func BranchCommits(ctx context.Context, client *github.Client, repo change.Repo, branch string, since, until time.Time) ([]change.Commit, error) {
	commits, err := listAll(func(o github.ListOptions) ([]*github.RepositoryCommit, *github.Response, error) {
		return client.Repositories.ListCommits(ctx, repo.Owner, repo.Name, &github.CommitsListOptions{SHA: branch, Since: since, Until: until, ListOptions: o})
	})
	if err != nil {
		return nil, err
	}
	out := make([]change.Commit, 0, len(commits))
	for _, c := range commits {
		out = append(out, change.Commit{SHA: c.GetSHA(),
			Author:    person(c.GetCommit().GetAuthor(), c.GetAuthor()),
			Committer: person(c.GetCommit().GetCommitter(), c.GetCommitter())})
	}
	return out, nil
}

// DefaultBranch reads a repository's default branch.
func DefaultBranch(ctx context.Context, client *github.Client, repo change.Repo) (string, error) {
	r, _, err := client.Repositories.Get(ctx, repo.Owner, repo.Name)
	if err != nil {
		return "", err
	}
	return r.GetDefaultBranch(), nil
}

// OpenPulls lists the open pull requests into a base branch.
func OpenPulls(ctx context.Context, client *github.Client, repo change.Repo, base string) ([]change.PullRequest, error) {
	prs, err := listAll(func(o github.ListOptions) ([]*github.PullRequest, *github.Response, error) {
		return client.PullRequests.List(ctx, repo.Owner, repo.Name, &github.PullRequestListOptions{State: "open", Base: base, ListOptions: o})
	})
	if err != nil {
		return nil, err
	}
	out := make([]change.PullRequest, 0, len(prs))
	for _, pr := range prs {
		out = append(out, convertPull(pr))
	}
	return out, nil
}

// RequiredChecks lists the status checks the rules in force on a branch
// require, each with its ruleset (GET /repos/{o}/{r}/rules/branches/{b},
// which metadata read allows). go-github's RepositoryRule drops the
// ruleset id, so the rules are decoded here.
func RequiredChecks(ctx context.Context, client *github.Client, repo change.Repo, branch string) ([]change.RequiredCheck, error) {
	req, err := client.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/rules/branches/%s", repo.Owner, repo.Name, url.PathEscape(branch)), nil)
	if err != nil {
		return nil, err
	}
	var rules []struct {
		Type       string          `json:"type"`
		RulesetID  int64           `json:"ruleset_id"`
		Parameters json.RawMessage `json:"parameters"`
	}
	if _, err := client.Do(ctx, req, &rules); err != nil {
		return nil, err
	}
	var out []change.RequiredCheck
	for _, r := range rules {
		if r.Type != "required_status_checks" || len(r.Parameters) == 0 {
			continue
		}
		var p struct {
			Checks []change.RequiredCheck `json:"required_status_checks"`
		}
		if err := json.Unmarshal(r.Parameters, &p); err != nil {
			return nil, fmt.Errorf("rules of %s@%s: %w", repo, branch, err)
		}
		for _, c := range p.Checks {
			c.RulesetID = r.RulesetID
			out = append(out, c)
		}
	}
	return out, nil
}

// RulesetBypass lists who may merge past a ruleset, one line per actor
// (GET /repos/{o}/{r}/rulesets/{id}, which includes the organization's
// rulesets that apply). GitHub shows the list only to callers with write
// access to the ruleset; visible is false when it is not shown.
func RulesetBypass(ctx context.Context, client *github.Client, repo change.Repo, rulesetID int64) ([]string, bool, error) {
	rs, _, err := client.Repositories.GetRuleset(ctx, repo.Owner, repo.Name, rulesetID, true)
	if err != nil {
		return nil, false, err
	}
	if rs.BypassActors == nil {
		return nil, false, nil
	}
	out := make([]string, 0, len(rs.BypassActors))
	for _, a := range rs.BypassActors {
		out = append(out, bypassActor(a))
	}
	return out, true, nil
}

// bypassActor names an actor of a bypass list, and when it may bypass.
func bypassActor(a *github.BypassActor) string {
	who := a.GetActorType()
	if a.ActorID != nil && who != "OrganizationAdmin" && who != "DeployKey" {
		who = fmt.Sprintf("%s %d", who, a.GetActorID())
	}
	mode := a.GetBypassMode()
	if mode == "" {
		mode = "always"
	}
	return who + " (" + mode + ")"
}

// ErrCannotSee is ClassicRequiredChecks' error when the App may not read
// classic branch protection (it needs administration: read).
var ErrCannotSee = errors.New("classic branch protection cannot be read: the App needs administration: read")

// ClassicRequiredChecks lists the status checks classic branch protection
// requires on a branch (none when the branch is not protected), and who
// may merge without them: administrators, unless it includes them.
func ClassicRequiredChecks(ctx context.Context, client *github.Client, repo change.Repo, branch string) ([]change.RequiredCheck, []string, error) {
	p, resp, err := client.Repositories.GetBranchProtection(ctx, repo.Owner, repo.Name, branch)
	switch {
	case errors.Is(err, github.ErrBranchNotProtected):
		return nil, nil, nil
	case resp != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound):
		return nil, nil, ErrCannotSee
	case err != nil:
		return nil, nil, err
	}
	var out []change.RequiredCheck
	if rc := p.GetRequiredStatusChecks(); rc != nil && rc.Checks != nil {
		for _, c := range *rc.Checks {
			out = append(out, change.RequiredCheck{Context: c.Context, IntegrationID: c.GetAppID()})
		}
	}
	var bypass []string
	if ea := p.GetEnforceAdmins(); ea == nil || !ea.Enabled {
		bypass = append(bypass, "repository administrators (the protection does not include administrators)")
	}
	return out, bypass, nil
}
