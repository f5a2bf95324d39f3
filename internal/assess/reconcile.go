package assess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/evidence"
	"github.com/changegate/changegate/internal/jobs"
)

// ReconcileStore keeps what reconciliation needs between runs.
type ReconcileStore interface {
	ReconcilePoint(ctx context.Context, repo, branch string) (sha string, at time.Time, ok bool, err error)
	SetReconcilePoint(ctx context.Context, repo, branch, sha string, at time.Time) error
	// RecordedCommits says which commits a change record covers.
	RecordedCommits(ctx context.Context, repo string, shas []string) (map[string]bool, error)
	// MarkPushed notes the commits a direct-push record covers.
	MarkPushed(ctx context.Context, repo, recordID string, shas []string) error
	// HasCheckRun says whether changegate wrote its check on a commit.
	HasCheckRun(ctx context.Context, repo, sha string) (bool, error)
}

// OpenPulls lists a branch's open pull requests (ghfacts.OpenPulls).
type OpenPulls func(ctx context.Context, client *github.Client, repo change.Repo, base string) ([]change.PullRequest, error)

// BranchCommits lists a branch's commits since a time, newest first
// (ghfacts.BranchCommits).
type BranchCommits func(ctx context.Context, client *github.Client, repo change.Repo, branch string, since, until time.Time) ([]change.Commit, error)

// ReconcileReport is what one repository's reconciliation did.
type ReconcileReport struct {
	Repo       string
	Branches   []string
	Checked    int // commits walked
	Unrecorded []string
	Rechecked  []int // open pull requests queued for evaluation
	// DefaultBranch is the repository's default branch, as resolved.
	DefaultBranch string
}

// Repositories lists the installed repositories, for the periodic run.
type Repositories func(ctx context.Context) ([]InstalledRepo, error)

// InstalledRepo is a repository and the installation that covers it.
type InstalledRepo struct {
	Installation int64
	Repo         string
}

// DefaultBranch reads a repository's default branch.
type DefaultBranch func(ctx context.Context, client *github.Client, repo change.Repo) (string, error)

// ReconcileWindow is how much earlier than the last run a reconciliation
// looks: commit dates are when commits were written, not pushed.
const ReconcileWindow = 72 * time.Hour

// BackfillJob backfills one repository; a rate limit makes it wait in the
// queue and continue where it stopped.
func (a *Assessor) BackfillJob(ctx context.Context, log *slog.Logger, j jobs.Backfill) (jobs.Apply, error) {
	rep, err := a.Backfill(ctx, log, j.Installation, j.Repo, j.Since, a.BackfillProgress)
	if err != nil {
		return nil, err
	}
	log.Info("backfilled", "branches", rep.Branches, "commits", rep.Checked, "archived", len(rep.Unrecorded))
	return nil, nil
}

// ReconcileAllJob reconciles every installed repository.
func (a *Assessor) ReconcileAllJob(ctx context.Context, log *slog.Logger, _ jobs.ReconcileAll) (jobs.Apply, error) {
	repos, err := a.InstalledRepos(ctx)
	if err != nil {
		return nil, err
	}
	var unrecorded int
	for _, r := range repos {
		rep, err := a.Reconcile(ctx, log.With("repo", r.Repo), r.Installation, r.Repo, "", time.Time{})
		if err != nil {
			return nil, fmt.Errorf("reconcile %s: %w", r.Repo, err)
		}
		unrecorded += len(rep.Unrecorded)
		if err := a.WatchControls(ctx, log.With("repo", r.Repo), r.Installation, r.Repo, rep.DefaultBranch); err != nil {
			return nil, fmt.Errorf("watch the controls of %s: %w", r.Repo, err)
		}
	}
	log.Info("reconciled every repository", "repos", len(repos), "unrecorded", unrecorded)
	return nil, nil
}

func (a *Assessor) ReconcileJob(ctx context.Context, log *slog.Logger, j jobs.Reconcile) (jobs.Apply, error) {
	rep, err := a.Reconcile(ctx, log, j.Installation, j.Repo, j.DefaultBranch, j.Since)
	if err != nil {
		return nil, err
	}
	log.Info("reconciled", "branches", rep.Branches, "commits", rep.Checked, "unrecorded", len(rep.Unrecorded))
	return nil, nil
}

// Reconcile walks each production branch of a repository from its last
// reconciled commit (or since, the first time) and archives every commit no
// change record covers: a merged pull request with no record is archived
// now, marked unrecorded; any other commit is an unrecorded direct push. A
// second run finds them recorded and adds nothing.
func (a *Assessor) Reconcile(ctx context.Context, log *slog.Logger, installation int64, repoName, defaultBranch string, since time.Time) (ReconcileReport, error) {
	rep := ReconcileReport{Repo: repoName}
	t, branches, def, err := a.walkScopeOf(ctx, log, installation, repoName, defaultBranch)
	rep.DefaultBranch = def
	if err != nil || t.client == nil {
		return rep, err
	}
	rep.Branches = branches
	for _, b := range branches {
		if err := a.reconcileBranch(ctx, log, t, b, since, &rep); err != nil {
			return rep, err
		}
		if err := a.recheckOpenPulls(ctx, log, t, b, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// Backfill archives, on each production branch, the changes since `since`
// that no record covers, from what GitHub and Jira say now: merged pull
// requests as merges, other commits as direct pushes, each record marked
// backfilled. It can be stopped at any point and run again: what it
// archived is covered, so it continues where it stopped. progress, when
// not nil, is told of each commit walked.
func (a *Assessor) Backfill(ctx context.Context, log *slog.Logger, installation int64, repoName string, since time.Time, progress func(branch string, done, total int)) (ReconcileReport, error) {
	rep := ReconcileReport{Repo: repoName}
	t, branches, err := a.walkScope(ctx, log, installation, repoName, "")
	if err != nil || t.client == nil {
		return rep, err
	}
	rep.Branches = branches
	for _, b := range branches {
		w := walk{branch: b, since: since, backfill: true, progress: progress}
		if err := a.walkBranch(ctx, log, t, w, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// recheckOpenPulls queues an evaluation of each open pull request into
// the branch whose head has no changegate check: events were missed.
func (a *Assessor) recheckOpenPulls(ctx context.Context, log *slog.Logger, t archiveScope, branch string, rep *ReconcileReport) error {
	if a.OpenPulls == nil || a.Recheck == nil {
		return nil
	}
	prs, err := a.OpenPulls(ctx, t.client, t.repo, branch)
	if err != nil {
		return fmt.Errorf("open pull requests of %s@%s: %w", t.repo, branch, err)
	}
	for _, pr := range prs {
		ok, err := a.Reconciles.HasCheckRun(ctx, t.repo.String(), pr.HeadSHA)
		if err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		// One job per pull request and minute, however often runs come.
		now := a.Now().UTC().Truncate(time.Minute)
		j := jobs.EvaluatePR{Installation: t.installation, Repo: t.repo.String(), Number: pr.Number, Reason: "reconcile", QueuedAt: now}
		if err := a.Recheck(ctx, j, now); err != nil {
			return err
		}
		rep.Rechecked = append(rep.Rechecked, pr.Number)
		log.Info("open pull request has no check on its head: evaluating it", "pr", pr.Number, "sha", short(pr.HeadSHA))
	}
	return nil
}

// walkScope is a repository's archive scope and its production branches.
func (a *Assessor) walkScope(ctx context.Context, log *slog.Logger, installation int64, repoName, defaultBranch string) (archiveScope, []string, error) {
	t, branches, _, err := a.walkScopeOf(ctx, log, installation, repoName, defaultBranch)
	return t, branches, err
}

// walkScopeOf is walkScope, with the default branch it resolved.
func (a *Assessor) walkScopeOf(ctx context.Context, log *slog.Logger, installation int64, repoName, defaultBranch string) (archiveScope, []string, string, error) {
	if defaultBranch == "" {
		repo, err := change.ParseRepo(repoName)
		if err != nil {
			return archiveScope{}, nil, "", err
		}
		client, err := a.Clients.Installation(installation)
		if err != nil {
			return archiveScope{}, nil, "", err
		}
		if defaultBranch, err = a.DefaultBranch(ctx, client, repo); err != nil {
			return archiveScope{}, nil, "", fmt.Errorf("default branch of %s: %w", repoName, err)
		}
	}
	t, err := a.archiveTarget(ctx, log, installation, repoName, defaultBranch)
	if err != nil || t.client == nil {
		return t, nil, defaultBranch, err
	}
	branches := []string{defaultBranch}
	if t.pol != nil {
		branches = t.pol.LiteralProductionBranches(defaultBranch)
	}
	return t, branches, defaultBranch, nil
}

// walk is one pass over a branch's commits.
type walk struct {
	branch string
	since  time.Time
	point  string // walk back to this commit
	// keepPoint moves the branch's reconcile point to the newest commit.
	keepPoint bool
	backfill  bool // records are backfilled; no reconcile point is kept
	progress  func(branch string, done, total int)
}

// reconcileBranch walks a branch from its reconcile point. A branch never
// reconciled is first backfilled over BackfillPeriod (or since, when
// given): what happened before changegate watched it is backfill, not an
// exception.
func (a *Assessor) reconcileBranch(ctx context.Context, log *slog.Logger, t archiveScope, branch string, since time.Time, rep *ReconcileReport) error {
	point, at, ok, err := a.Reconciles.ReconcilePoint(ctx, t.repo.String(), branch)
	if err != nil {
		return err
	}
	w := walk{branch: branch, since: since, point: point, keepPoint: true}
	switch {
	case !ok && since.IsZero():
		w.backfill, w.since = true, a.Now().Add(-a.backfillPeriod())
	case since.IsZero():
		// Back to the point; commit dates are the author's, so allow for
		// commits dated well before they were pushed.
		w.since = at.Add(-ReconcileWindow)
	}
	return a.walkBranch(ctx, log, t, w, rep)
}

func (a *Assessor) backfillPeriod() time.Duration {
	if a.BackfillPeriod > 0 {
		return a.BackfillPeriod
	}
	return DefaultBackfillPeriod
}

// DefaultBackfillPeriod is how far back a repository is backfilled when
// changegate first sees it.
const DefaultBackfillPeriod = 30 * 24 * time.Hour

// walkBranch archives the commits of one walk that no record covers, and
// moves the reconcile point to the newest.
func (a *Assessor) walkBranch(ctx context.Context, log *slog.Logger, t archiveScope, w walk, rep *ReconcileReport) error {
	branch := w.branch
	// Commits younger than the grace may still have their webhook on the
	// way: the next walk takes them.
	var until time.Time
	if a.ReconcileGrace > 0 {
		until = a.Now().Add(-a.ReconcileGrace)
	}
	commits, err := a.BranchCommits(ctx, t.client, t.repo, branch, w.since, until)
	if noHistory(err) {
		// The branch does not exist (yet), or the repository is empty.
		log.Info("no history to walk", "branch", branch, "reason", err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("commits of %s@%s: %w", t.repo, branch, err)
	}
	if w.point != "" {
		if i := slices.IndexFunc(commits, func(c change.Commit) bool { return c.SHA == w.point }); i >= 0 {
			commits = commits[:i]
		}
	}
	if len(commits) == 0 {
		if w.keepPoint {
			// Nothing yet: later runs reconcile from here.
			return a.Reconciles.SetReconcilePoint(ctx, t.repo.String(), branch, w.point, a.Now())
		}
		return nil
	}
	shas := make([]string, len(commits))
	for i, c := range commits {
		shas[i] = c.SHA
	}
	recorded, err := a.Reconciles.RecordedCommits(ctx, t.repo.String(), shas)
	if err != nil {
		return err
	}
	rep.Checked += len(commits)
	done := 0
	for _, c := range slices.Backward(commits) { // oldest first
		done++
		if w.progress != nil {
			w.progress(branch, done, len(commits))
		}
		if recorded[c.SHA] {
			continue
		}
		found, err := a.reconcileCommit(ctx, log, t, w, c)
		if err != nil {
			return err
		}
		if found {
			rep.Unrecorded = append(rep.Unrecorded, c.SHA)
		}
		if done%50 == 0 {
			log.Info("walking "+branch, "done", done, "commits", len(commits), "archived", len(rep.Unrecorded))
		}
	}
	if !w.keepPoint {
		return nil // changegate backfill: reconciliation keeps its own point
	}
	return a.Reconciles.SetReconcilePoint(ctx, t.repo.String(), branch, commits[0].SHA, a.Now())
}

// reconcileCommit archives one commit no record covers. It returns whether
// it was unrecorded (a commit of a merged pull request whose merge is
// recorded is covered).
func (a *Assessor) reconcileCommit(ctx context.Context, log *slog.Logger, t archiveScope, w walk, c change.Commit) (bool, error) {
	branch := w.branch
	prs, err := a.CommitPulls(ctx, t.client, t.repo, c.SHA)
	if err != nil {
		return false, err
	}
	for _, pr := range prs {
		if !pr.Merged || pr.BaseRef != branch {
			continue
		}
		if pr.MergeCommitSHA != "" {
			done, err := a.Reconciles.RecordedCommits(ctx, t.repo.String(), []string{pr.MergeCommitSHA})
			if err != nil {
				return false, err
			}
			if done[pr.MergeCommitSHA] {
				return false, nil
			}
		}
		subject := change.Subject{Installation: t.installation, Repo: t.repo, Number: pr.Number}
		head, err := a.Pull(ctx, t.client, subject)
		if err != nil {
			return false, err
		}
		if w.backfill {
			return true, a.archiveMergeAs(ctx, log, t.client, head, "", "", true)
		}
		return true, a.archiveMergeFound(ctx, log, t.client, head, "reconciliation of "+branch)
	}
	r := a.unrecordedPush(t, branch, c)
	if w.backfill {
		r.Backfilled = true
		r.Exception.Kind = evidence.ExceptionDirectPush
		r.Exception.Reason = fmt.Sprintf("commit %s (author %s, committer %s) is on %s outside a merged pull request: found by backfill",
			short(c.SHA), who(c.Author), who(c.Committer), branch)
		r.Decision.Reason = r.Exception.Reason
	}
	return true, a.append(ctx, log, r)
}

// unrecordedPush is the record of a commit that reached a production
// branch outside any merged pull request, with no webhook seen for it.
func (a *Assessor) unrecordedPush(t archiveScope, branch string, c change.Commit) *evidence.Record {
	now := a.Now().UTC()
	reason := fmt.Sprintf("commit %s (author %s, committer %s) is on %s outside a merged pull request, and no webhook brought it: found by reconciliation at %s",
		short(c.SHA), who(c.Author), who(c.Committer), branch, now.Format(time.RFC3339))
	return &evidence.Record{
		Schema: evidence.Schema, Repo: t.repo, ChangeType: evidence.DirectPush,
		Subject: evidence.Subject{BaseRef: branch, HeadSHA: c.SHA},
		Facts: change.Facts{Subject: change.Subject{Installation: t.installation, Repo: t.repo, BaseRef: branch, HeadSHA: c.SHA},
			Commits: []change.Commit{c}, AsOf: now},
		Decision:   change.Decision{Outcome: change.NonCompliant, Reason: reason},
		ObservedAt: now,
		AppVersion: a.AppVersion,
		Exception:  &evidence.Exception{Kind: evidence.ExceptionUnrecorded, Reason: reason, OpenedAt: now},
		Policy:     t.policy(),
	}
}

func who(p change.Person) string {
	switch {
	case p.Login != "":
		return p.Login
	case p.Email != "":
		return p.Name + " <" + p.Email + ">"
	}
	return "unknown"
}

// noHistory says GitHub has no commits to list: 404 for a branch that does
// not exist, 409 for an empty repository.
func noHistory(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil &&
		(er.Response.StatusCode == http.StatusNotFound || er.Response.StatusCode == http.StatusConflict)
}
