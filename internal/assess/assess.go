// Package assess is the workflow that turns an event into a published
// decision: load the policy from the base branch, gather the facts, look up
// the Jira tickets, evaluate, and publish the changegate check run. It owns
// the small interfaces it needs; adapters are wired in by cmd.
package assess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/changegate/changegate/internal/change"
	"github.com/changegate/changegate/internal/jobs"
	"github.com/changegate/changegate/internal/store"
)

// Clients hands out installation clients (ghapp.Apps).
type Clients interface {
	Installation(id int64) (*github.Client, error)
}

// Policy is what the workflow needs of an effective policy.
type Policy interface {
	// Needs says which facts the controls read.
	Needs() change.Needs
	// TicketKeys are the Jira keys the pull request names.
	TicketKeys(pr change.PullRequest) []string
	// TicketOptions say whether approvals are read from Jira, and the group.
	TicketOptions() (approvals bool, group string)
	// Evaluate is the pure decision.
	Evaluate(f *change.Facts) change.Decision
	// ProductionBranch and ProductionEnvironment say what production is,
	// for pushes and deployments.
	ProductionBranch(branch, defaultBranch string) bool
	ProductionEnvironment(env string) bool
	// StagingCheck and StagingEnvironment say what is staging evidence: a
	// check run or commit status by name ("": any), a deployment by
	// environment.
	StagingCheck(name string) bool
	StagingEnvironment(env string) bool
	// ManagerTeam says whether the team ("org/slug") approves as managers.
	ManagerTeam(team string) bool
	// Digest identifies the effective policy.
	Digest() string
	// EmergencyLabel is the label that marks an emergency change.
	EmergencyLabel() string
	// FrozenAt names the freeze window t falls in, if any: the deployment
	// gate then admits only emergencies.
	FrozenAt(t time.Time) (string, bool)
	// LiteralProductionBranches are the production branches reconciliation
	// walks: the default branch when it is production, and every branch the
	// policy names without a wildcard.
	LiteralProductionBranches(defaultBranch string) []string
	// LiteralProductionEnvironments are the production environments named
	// without wildcards, which the control watch reads.
	LiteralProductionEnvironments() []string
}

// PolicyLoader loads the effective policy for a repository at a base
// branch. An invalid policy is an error of type *InvalidPolicyError.
type PolicyLoader func(ctx context.Context, client *github.Client, repo change.Repo, baseRef string) (Policy, string, error)

// InvalidPolicyError is a policy that cannot be used: the check fails and
// quotes it.
type InvalidPolicyError struct {
	Source string
	Err    error
	// Baseline is the policy below the invalid one (the organisation's, or
	// the server default), with its source. It still says what production
	// is for pushes and deployments: an invalid file must neither widen
	// nor lose production scope. Nil when nothing below is valid.
	Baseline       Policy
	BaselineSource string
}

// Error names the file once: a parse error already starts with it.
func (e *InvalidPolicyError) Error() string {
	msg := e.Err.Error()
	if strings.HasPrefix(msg, e.Source) {
		return msg
	}
	return e.Source + ": " + msg
}
func (e *InvalidPolicyError) Unwrap() error { return e.Err }

// PullReader reads a pull request alone (ghfacts.PullRequest).
type PullReader func(ctx context.Context, client *github.Client, s change.Subject) (*change.Facts, error)

// Gatherer reads what needs asks for on top of a pull request snapshot
// (ghfacts.More).
type Gatherer func(ctx context.Context, client *github.Client, pr *change.Facts, needs change.Needs) (*change.Facts, error)

// Tickets reads Jira issues live. Nil when Jira is not configured.
type Tickets func(ctx context.Context, key string, approvals bool, group string) change.TicketLookup

// Publisher writes the check run when the decision changed.
type Publisher func(ctx context.Context, client *github.Client, s change.Subject, d change.Decision) (wrote bool, err error)

// PullsForCommit asks GitHub which pull requests contain a commit, for
// commits the index has not seen yet.
type PullsForCommit func(ctx context.Context, client *github.Client, repo change.Repo, sha string) ([]int, error)

// Store is the pull request index.
type Store interface {
	LastEvaluated(ctx context.Context, repo string, number int) (time.Time, bool, error)
	IndexPullRequest(ctx context.Context, tx jobs.Tx, pr IndexedPR, now time.Time) error
	OpenPullRequestsWithHead(ctx context.Context, repo, sha string) ([]IndexedPR, error)
	// OpenPullRequestsOfOwner lists the installation's open pull requests
	// in the repositories of owner.
	OpenPullRequestsOfOwner(ctx context.Context, installation int64, owner string) ([]IndexedPR, error)
	// LaterCommitJobs are the jobs for repo@sha queued after queuedAt that
	// wait or run.
	LaterCommitJobs(ctx context.Context, repo, sha string, queuedAt time.Time) ([]jobs.EvaluateSHA, error)
	OpenPullRequestsWithKey(ctx context.Context, key string) ([]IndexedPR, error)
}

// IndexedPR is a pull request as the index keeps it.
type IndexedPR = store.PullRequest

// Assessor runs evaluations.
type Assessor struct {
	Clients  Clients
	Policies PolicyLoader
	// PolicyPushed is told of every push, before it is archived: a push to
	// a policy repository may change a policy the loader caches.
	PolicyPushed func(repo change.Repo)
	Pull         PullReader
	Gather       Gatherer
	Tickets      Tickets
	Publish      Publisher
	Pulls        PullsForCommit
	Store        Store
	Now          func() time.Time
	// MaxTickets bounds the keys looked up per pull request.
	MaxTickets int
	// Archive records production changes; nil leaves them unrecorded.
	Archive     Archiver
	CommitPulls CommitPulls
	Deployments DeploymentReader
	// Answer answers deployment protection rules, Gates remembers the
	// answers, and Rules reads which Apps guard an environment.
	Answer Answerer
	Gates  GateStore
	Rules  ProtectionRules
	// AppID is this App's ID, which an environment's protection rules name.
	AppID int64
	// GroupPulls lists a merge group's pull requests, and Groups
	// remembers the groups checked.
	GroupPulls GroupPulls
	Groups     GroupStore
	// CommitMessage reads a commit's message (ghfacts.CommitMessage).
	CommitMessage func(ctx context.Context, client *github.Client, repo change.Repo, sha string) (string, error)
	// AppVersion is written into each record.
	AppVersion string
	// Reconciles and BranchCommits serve reconciliation.
	Reconciles     ReconcileStore
	BranchCommits  BranchCommits
	InstalledRepos Repositories
	DefaultBranch  DefaultBranch
	OpenPulls      OpenPulls
	// Controls and RequiredChecks serve the watch on changegate's own
	// enforcement.
	Controls       ControlStore
	RequiredChecks RequiredChecks
	// Bypass reads who may merge past a ruleset; nil does not look.
	Bypass Bypass
	// ClassicChecks reads classic branch protection's required checks,
	// which needs administration: read; nil reads only the rules.
	ClassicChecks ClassicChecks
	// BackfillPeriod is how far back a branch is backfilled the first time
	// it is reconciled (DefaultBackfillPeriod when 0).
	BackfillPeriod time.Duration
	// ReconcileGrace is how old a commit must be for reconciliation to
	// judge it, since its webhook may still be on the way; 0: none.
	ReconcileGrace time.Duration
	// WriteBack queues a note to a Jira ticket of an archived change
	// (jira.write_back); nil writes nothing back.
	WriteBack func(ctx context.Context, j jobs.JiraWriteBack) error
	// BackfillProgress is told of each commit a backfill job walks.
	BackfillProgress func(branch string, done, total int)
	// Recheck schedules an evaluation for when a decision will change by
	// itself (a promotion's soak ends); nil schedules nothing.
	Recheck func(ctx context.Context, j jobs.EvaluatePR, at time.Time) error
	// Serial serialises the evaluations of a pull request across the
	// processes sharing the store; nil when this process holds it alone.
	Serial Serializer

	locks keyedMutex
}

// Serializer holds a lock on a key among the processes sharing the store
// (a PostgreSQL advisory lock), until unlock is called.
type Serializer interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// ErrJiraUnreachable makes the job retry after the pending check was
// published.
var ErrJiraUnreachable = errors.New("jira unreachable")

func (a *Assessor) EvaluatePRJob(ctx context.Context, log *slog.Logger, j jobs.EvaluatePR) (jobs.Apply, error) {
	repo, err := change.ParseRepo(j.Repo)
	if err != nil {
		return nil, err
	}
	return a.evaluateAll(ctx, log, []target{{repo: repo, number: j.Number, installation: j.Installation, named: true, delivery: j.DeliveryID}}, j.QueuedAt)
}

func (a *Assessor) EvaluateSHAJob(ctx context.Context, log *slog.Logger, j jobs.EvaluateSHA) (jobs.Apply, error) {
	repo, err := change.ParseRepo(j.Repo)
	if err != nil {
		return nil, err
	}
	prs, err := a.Store.OpenPullRequestsWithHead(ctx, j.Repo, j.SHA)
	if err != nil {
		return nil, err
	}
	indexed := len(prs) > 0
	if prs, err = a.triggeredBy(ctx, log, j, repo, prs); err != nil {
		return nil, err
	}
	var targets []target
	for _, p := range prs {
		targets = append(targets, target{repo: repo, number: p.Number, installation: p.InstallationID})
	}
	if !indexed && a.Pulls != nil {
		// A commit the index has not seen: its pull request may not have
		// been evaluated yet (events arrive in any order).
		client, err := a.Clients.Installation(j.Installation)
		if err != nil {
			return nil, err
		}
		numbers, err := a.Pulls(ctx, client, repo, j.SHA)
		if err != nil {
			return nil, fmt.Errorf("pull requests of %s@%s: %w", j.Repo, short(j.SHA), err)
		}
		for _, n := range numbers {
			targets = append(targets, target{repo: repo, number: n, installation: j.Installation})
		}
	}
	if len(targets) == 0 {
		log.Debug("no open pull request to evaluate for this commit")
	}
	return a.evaluateAll(ctx, log, targets, j.QueuedAt)
}

// triggeredBy keeps the pull requests for which this job is the one to
// evaluate them.
//
//   - What completed on their head must be able to change a decision: a
//     check run, commit status or workflow run their policy names in
//     staging.checks, any check suite when it names some, a deployment to a
//     staging environment. A push that moves 25 heads with 32 check runs
//     each costs the evaluations their staging checks call for, not one per
//     check.
//   - No later job for the same commit that counts for the pull request may
//     be waiting or running: that one reads fresher facts, so the most
//     recent event wins, however long the jobs wait (a rate limit, a burst).
//
// Each policy is read from the pull request's base branch through the ETag
// cache; a policy that cannot be read counts everything, so that the check
// says why.
func (a *Assessor) triggeredBy(ctx context.Context, log *slog.Logger, j jobs.EvaluateSHA, repo change.Repo, prs []IndexedPR) ([]IndexedPR, error) {
	if len(prs) == 0 {
		return prs, nil
	}
	later, err := a.Store.LaterCommitJobs(ctx, j.Repo, j.SHA, j.QueuedAt)
	if err != nil {
		return nil, err
	}
	var out []IndexedPR
	for _, p := range prs {
		counts, known, err := a.countsFor(ctx, j.Installation, repo, p)
		if err != nil {
			return nil, err
		}
		switch {
		case !counts(j):
			log.Debug("not staging evidence under the policy: not evaluated", "pr", p.Number, "trigger", j.Trigger, "name", j.Name, "environment", j.Environment)
		case known && slices.ContainsFunc(later, counts):
			log.Debug("a later job for this commit evaluates it: not evaluated", "pr", p.Number)
		default:
			out = append(out, p)
		}
	}
	return out, nil
}

// countsFor returns whether a job for a commit can change the pull
// request's decision under its policy. When the policy cannot be read
// (known is false), every job counts, so that this one evaluates and its
// check says why; but no job steps aside for a later one, which may find
// the policy readable and not count.
func (a *Assessor) countsFor(ctx context.Context, installation int64, repo change.Repo, p IndexedPR) (counts func(jobs.EvaluateSHA) bool, known bool, err error) {
	everything := func(jobs.EvaluateSHA) bool { return true }
	if a.Policies == nil {
		return everything, true, nil
	}
	client, err := a.Clients.Installation(installation)
	if err != nil {
		return nil, false, err
	}
	pol, _, err := a.Policies(ctx, client, repo, p.BaseRef)
	if err != nil {
		return everything, false, nil
	}
	return func(j jobs.EvaluateSHA) bool { return stagingTrigger(pol, j) }, true, nil
}

// stagingTrigger says whether what completed is staging evidence under pol.
func stagingTrigger(pol Policy, j jobs.EvaluateSHA) bool {
	switch j.Trigger {
	case jobs.TriggerCheckRun, jobs.TriggerStatus, jobs.TriggerWorkflowRun:
		return pol.StagingCheck(j.Name)
	case jobs.TriggerCheckSuite:
		return pol.StagingCheck("")
	case jobs.TriggerDeployment:
		return pol.StagingEnvironment(j.Environment)
	}
	return true
}

func (a *Assessor) JiraIssueJob(ctx context.Context, log *slog.Logger, j jobs.JiraIssue) (jobs.Apply, error) {
	prs, err := a.Store.OpenPullRequestsWithKey(ctx, j.Key)
	if err != nil {
		return nil, err
	}
	var targets []target
	for _, p := range prs {
		repo, err := change.ParseRepo(p.Repo)
		if err != nil {
			return nil, err
		}
		targets = append(targets, target{repo: repo, number: p.Number, installation: p.InstallationID})
	}
	if len(targets) == 0 {
		log.Debug("no open pull request names this key")
	}
	return a.evaluateAll(ctx, log, targets, j.QueuedAt)
}

// TeamChangedJob re-evaluates the organization's open pull requests whose
// policy names the team as approving managers. Member lists are read
// through the ETag cache, which revalidates them at every evaluation, so
// nothing cached needs dropping: the evaluations read the change.
func (a *Assessor) TeamChangedJob(ctx context.Context, log *slog.Logger, j jobs.TeamChanged) (jobs.Apply, error) {
	prs, err := a.Store.OpenPullRequestsOfOwner(ctx, j.Installation, j.Org)
	if err != nil {
		return nil, err
	}
	team := j.Org + "/" + j.Team
	var targets []target
	for _, p := range prs {
		repo, err := change.ParseRepo(p.Repo)
		if err != nil {
			return nil, err
		}
		names, err := a.namesTeam(ctx, j.Installation, repo, p.BaseRef, team)
		if err != nil {
			return nil, err
		}
		if names {
			targets = append(targets, target{repo: repo, number: p.Number, installation: p.InstallationID})
		}
	}
	log.Info("team changed", "open_pull_requests", len(prs), "to_evaluate", len(targets))
	return a.evaluateAll(ctx, log, targets, j.QueuedAt)
}

// namesTeam says whether the policy of base in repo names team as
// approving managers. A policy that cannot be read counts as naming it,
// so that the evaluation says why.
func (a *Assessor) namesTeam(ctx context.Context, installation int64, repo change.Repo, base, team string) (bool, error) {
	if a.Policies == nil {
		return true, nil
	}
	client, err := a.Clients.Installation(installation)
	if err != nil {
		return false, err
	}
	pol, _, err := a.Policies(ctx, client, repo, base)
	return err != nil || pol.ManagerTeam(team), nil
}

type target struct {
	repo         change.Repo
	number       int
	installation int64
	named        bool   // the job itself names the pull request
	delivery     string // the delivery that asked, for the evidence
}

// evaluateAll evaluates each target and returns one Apply that indexes them
// all. A target that fails makes the job fail (and retry) after the others
// were published.
func (a *Assessor) evaluateAll(ctx context.Context, log *slog.Logger, targets []target, queuedAt time.Time) (jobs.Apply, error) {
	var indexed []IndexedPR
	var errs []error
	for _, t := range targets {
		tlog := log
		if !t.named {
			// Fanned out from a commit or a Jira key: name the pull request.
			tlog = log.With("pr", t.number)
		}
		pr, err := a.evaluate(ctx, tlog, t, queuedAt)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s#%d: %w", t.repo, t.number, err))
		}
		if pr != nil {
			indexed = append(indexed, *pr)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return func(ctx context.Context, tx jobs.Tx) error {
		for _, pr := range indexed {
			if err := a.Store.IndexPullRequest(ctx, tx, pr, a.Now()); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// serialise holds key against other evaluations in this process and,
// when the store is shared, across replicas too: one evaluation of a pull
// request at a time, so that none publishes facts older than another's.
func (a *Assessor) serialise(ctx context.Context, key string) (unlock func(), err error) {
	local := a.locks.lock(key)
	if a.Serial == nil {
		return local, nil
	}
	release, err := a.Serial.Lock(ctx, key)
	if err != nil {
		local()
		return nil, fmt.Errorf("serialise the evaluation of %s: %w", key, err)
	}
	return func() { release(); local() }, nil
}

// evaluate runs one evaluation of one pull request, serialised with any
// other evaluation of it. It returns the index entry to record, nil when
// the evaluation was skipped because a fresher one already ran.
func (a *Assessor) evaluate(ctx context.Context, log *slog.Logger, t target, queuedAt time.Time) (*IndexedPR, error) {
	unlock, err := a.serialise(ctx, fmt.Sprintf("%s#%d", t.repo, t.number))
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Coalescing: an evaluation that started after this job was queued
	// read facts at least as fresh as the ones this job was queued for.
	last, ok, err := a.Store.LastEvaluated(ctx, t.repo.String(), t.number)
	if err != nil {
		return nil, err
	}
	if ok && last.After(queuedAt) {
		log.Debug("evaluation skipped: a later one already read fresher facts")
		return nil, nil
	}
	started := a.Now()
	client, err := a.Clients.Installation(t.installation)
	if err != nil {
		return nil, err
	}
	subject := change.Subject{Installation: t.installation, Repo: t.repo, Number: t.number}
	// The pull request first: its base branch decides the policy, and the
	// policy decides which other facts are needed.
	head, err := a.Pull(ctx, client, subject)
	if err != nil {
		return nil, err
	}
	subject = head.Subject
	entry := &IndexedPR{Repo: t.repo.String(), Number: t.number, InstallationID: t.installation,
		HeadSHA: head.PR.HeadSHA, BaseRef: head.PR.BaseRef, State: head.PR.State, EvaluatedAt: started}
	if head.PR.State != "open" {
		if !head.PR.Merged || a.Archive == nil {
			return entry, nil
		}
		return entry, a.archiveMerge(ctx, log, client, head, t.delivery)
	}
	facts, d, keys, _, err := a.decide(ctx, client, head)
	entry.Keys = keys
	if err != nil {
		return nil, err
	}
	wrote, err := a.Publish(ctx, client, facts.Subject, d)
	if err != nil {
		return nil, err
	}
	log.Info("evaluated", "sha", facts.Subject.HeadSHA, "outcome", d.Outcome, "check_written", wrote)
	if err := a.scheduleRecheck(ctx, t, d); err != nil {
		return nil, err
	}
	if d.Outcome == change.InvalidPolicy {
		log.Warn("invalid policy", "error", d.Reason)
	}
	for _, l := range facts.Tickets {
		if l.Result == change.LookupUnreachable && a.Tickets != nil {
			// The check says pending; try again until Jira answers.
			return nil, fmt.Errorf("%w: %s: %s", ErrJiraUnreachable, l.Key, l.Error)
		}
	}
	return entry, nil
}

// decide loads the policy from the base branch, gathers what it needs,
// looks up the tickets and evaluates. An invalid policy is a decision, not
// an error.
func (a *Assessor) decide(ctx context.Context, client *github.Client, head *change.Facts) (*change.Facts, change.Decision, []string, Policy, error) {
	pol, source, err := a.Policies(ctx, client, head.Subject.Repo, head.PR.BaseRef)
	var invalid *InvalidPolicyError
	if errors.As(err, &invalid) {
		return head, change.Decision{Outcome: change.InvalidPolicy, Reason: invalid.Error(), PolicySource: invalid.Source}, nil, nil, nil
	}
	if err != nil {
		return nil, change.Decision{}, nil, nil, err
	}
	facts, err := a.Gather(ctx, client, head, pol.Needs())
	if err != nil {
		return nil, change.Decision{}, nil, nil, err
	}
	facts.AsOf = a.Now()
	keys := pol.TicketKeys(facts.PR)
	facts.Tickets = a.lookupTickets(ctx, pol, keys)
	d := pol.Evaluate(facts)
	d.PolicySource = source
	return facts, d, keys, pol, nil
}

// scheduleRecheck queues an evaluation for when the decision changes by
// itself. The job is queued as of that time, so coalescing never drops it
// for an evaluation that ran before.
func (a *Assessor) scheduleRecheck(ctx context.Context, t target, d change.Decision) error {
	if a.Recheck == nil || d.RecheckAt.IsZero() {
		return nil
	}
	j := jobs.EvaluatePR{Installation: t.installation, Repo: t.repo.String(), Number: t.number, Reason: "recheck", QueuedAt: d.RecheckAt.UTC()}
	return a.Recheck(ctx, j, d.RecheckAt)
}

func (a *Assessor) lookupTickets(ctx context.Context, pol Policy, keys []string) []change.TicketLookup {
	limit := a.MaxTickets
	if limit <= 0 {
		limit = 5
	}
	keys = keys[:min(len(keys), limit)]
	approvals, group := pol.TicketOptions()
	out := make([]change.TicketLookup, 0, len(keys))
	for _, k := range keys {
		if a.Tickets == nil {
			out = append(out, change.TicketLookup{Key: k, Result: change.LookupUnreachable,
				Error: "Jira is not configured on the changegate server (CHANGEGATE_JIRA_URL)"})
			continue
		}
		out = append(out, a.Tickets(ctx, k, approvals, group))
	}
	return out
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// keyedMutex serialises work per key. Entries are removed when unused.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
